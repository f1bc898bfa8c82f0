"""The daemon as a subprocess, with drops that used to go wrong: a name so long that the
claim's prefix took it past 255 bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.files import NAME_MAX
from nemowatch.outbox import failure_report_name
from tests.e2e.harness import (
    Daemon,
    drop,
    files,
    rule,
    wait_for,
    write_config,
)
from tests.media import write_random_bytes
from tests.unit.test_file_names import long_name

pytestmark = pytest.mark.e2e

SETTLE = 0.5


def start(tmp_path: Path) -> tuple[Daemon, Path, Path]:
    config = write_config(tmp_path, [rule(tmp_path, settle_seconds=SETTLE)])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    return daemon, tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"


def test_a_250_byte_name_is_processed_and_archived_or_failed_under_its_name(
    tmp_path: Path, clips
) -> None:
    daemon, inbox, outbox = start(tmp_path)
    try:
        good, bad = long_name(250), long_name(250, suffix=".mov")
        drop(inbox / good, clips.basic)
        drop(inbox / bad, write_random_bytes(tmp_path / "garbage.bin", 4096))
        outputs = wait_for(lambda: files(outbox, "*.mp4"), what="an output")
        archived = wait_for(lambda: files(inbox / "done"), what="the source archived")
        assert [path.name for path in archived] == [good]
        wait_for(lambda: len(files(inbox / "failed")) == 2, what="its report")
        assert sorted(path.name for path in files(inbox / "failed")) == sorted(
            [bad, failure_report_name(bad)]
        )
        assert len(outputs) == 1 and len(outputs[0].name.encode()) <= NAME_MAX
        assert good.startswith(outputs[0].name.removesuffix("….mp4"))
        assert list(inbox.glob("*.mp4")) == [] and files(inbox / "processing") == []
    finally:
        assert daemon.stop() == 0
