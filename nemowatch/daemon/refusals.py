"""What intake does with a file or folder it will never make a job of (a sidecar with no
video, a folder that is no batch, a revision of nothing): moved to failed/ beside an
error.json saying why and what to do, and logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from nemowatch import outbox
from nemowatch.config import AfterFailure, Rule
from nemowatch.errors import NemowatchError

log = structlog.get_logger("nemowatch.daemon")


def refuse(
    path: Path, rule: Rule, report: dict[str, Any], *, kind: str, event: str, **fields: Any
) -> None:
    """`path` to `rule`'s failed/ beside `report`, logged as `event` (or as
    `<kind>.not_reported` when even that fails: it is then left where it is)."""
    try:
        where, error_json = outbox.dispose_failure(
            path, source=path, inbox=rule.inbox, after=AfterFailure.QUARANTINE, report=report
        )
    except (NemowatchError, OSError) as error:
        log.error(f"{kind}.not_reported", path=str(path), error=str(error))
        return
    log.warning(event, path=str(path), to=where, report=str(error_json), **fields)
