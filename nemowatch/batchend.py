"""The end of a batch of `batch: each` (a folder dropped as one, a job per file): its
folder goes as a unit, once the last of its jobs has ended.

- Every job done (or skipped as a duplicate): the folder goes where the rule's
  `after.success` says: archived to `done/<date>/<folder>/`, put back where it was dropped
  (`keep`), or deleted.
- Some failed: their files (and their sidecars) go to `failed/<folder>/`, each beside its
  `<name>.error.json`; the rest of the folder goes as above.
- Every job failed: the whole folder goes to `failed/<folder>/`, the reports inside.

Idempotent: a run stopped half-way does what is left at the next start (recovery calls
`Disposal.dispose` for each ended job whose source has no place recorded yet).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from nemowatch import outbox
from nemowatch.config import Rule
from nemowatch.files import free_name, move_no_replace
from nemowatch.jobs import JobRecord, JobState
from nemowatch.ledger import Ledger

log = structlog.get_logger("nemowatch.pipeline")

_OK = (JobState.DONE, JobState.SKIPPED)


def end_of_batch(
    ledger: Ledger,
    record: JobRecord,
    rule: Rule,
    *,
    when: datetime,
    error_report: Callable[[JobRecord], dict[str, Any]],
) -> JobRecord:
    """Dispose of `record`'s batch folder when every job of it has ended; until then
    nothing (the job's `disposed` stays empty, for the last one to fill)."""
    batch = record.batch
    assert batch is not None
    members = ledger.batch_jobs(batch.id)
    if not all(member.finished for member in members):
        return record
    failed = [member for member in members if member.state not in _OK]
    places: dict[str, str] = {}
    where = "missing"
    if os.path.lexists(batch.claimed):
        if len(failed) == len(members):
            home = move_no_replace(batch.claimed, rule.inbox / "failed", batch.folder.name)
            for member in failed:
                _report(home, member, error_report(member))
            where = str(home)
        else:
            if failed:
                _quarantine(rule, batch.folder.name, batch.claimed, failed, error_report, places)
            where = outbox.dispose_success(
                batch.claimed,
                source=batch.folder,
                inbox=rule.inbox,
                after=rule.after.success,
                when=when,
            )
    for member in members:
        if member.disposed is None:
            place = places.get(member.id) or (
                where if where in ("missing", "deleted") else str(Path(where) / member.source.name)
            )
            ledger.update(member.id, disposed=place)
    log.info(
        "batch.disposed",
        folder=str(batch.folder),
        to=where,
        done=len(members) - len(failed),
        failed=len(failed),
    )
    return ledger.get(record.id)


def _quarantine(
    rule: Rule,
    name: str,
    claimed: Path,
    failed: list[JobRecord],
    error_report: Callable[[JobRecord], dict[str, Any]],
    places: dict[str, str],
) -> None:
    """The failed jobs' files (with their sidecars) to `failed/<folder>/`, each beside its
    report; a folder of that name there already (an earlier batch's) is not mixed into."""
    quarantine = rule.inbox / "failed"
    quarantine.mkdir(parents=True, exist_ok=True)
    home = quarantine / free_name(quarantine, name)
    for member in failed:
        assert member.claimed is not None
        if not os.path.lexists(member.claimed):
            continue  # moved by a run stopped half-way: recorded as missing
        moved = move_no_replace(member.claimed, home, member.source.name)
        for sidecar in member.sidecars:
            side = Path(sidecar["claimed"])
            if os.path.lexists(side):
                move_no_replace(side, home, side.name)
        _report(home, member, error_report(member))
        places[member.id] = str(moved)


def _report(home: Path, member: JobRecord, report: dict[str, Any]) -> None:
    """`<name>.error.json` beside the failed file, in the batch's folder in failed/."""
    file = home / member.source.name
    report = {
        **report,
        "file": str(file),
        "batch": str(member.batch.folder) if member.batch else None,
        "how_to_retry": "fix the cause, then move the file (or the whole folder) back into"
        " the inbox; a folder is a batch again",
        "retry_with": f"nemowatch retry {member.id}",
    }
    outbox.write_json_atomic(home / outbox.failure_report_name(member.source.name), report)
