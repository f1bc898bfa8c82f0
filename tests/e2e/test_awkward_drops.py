"""The daemon as a subprocess, with drops that used to go wrong: a copy that pauses longer
than the settle time, and a name so long that the claim's prefix took it past 255 bytes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nemowatch.files import NAME_MAX
from nemowatch.outbox import failure_report_name
from nemowatch.probe import probe
from tests.e2e.harness import (
    Daemon,
    drop,
    files,
    ledger_jobs,
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


def test_a_copy_paused_for_three_settle_times_ends_as_one_output_not_failed(
    tmp_path: Path, clips
) -> None:
    daemon, inbox, outbox = start(tmp_path)
    try:
        data = clips.basic.read_bytes()
        target = inbox / "paused.mp4"
        with target.open("wb") as handle:  # written in place, as a slow copy writes
            handle.write(data[: len(data) // 2])
            handle.flush()
            paused = time.monotonic()
            # it settles and is claimed half-written (no index yet: not a readable video)
            wait_for(lambda: not target.exists(), timeout=4 * SETTLE, interval=0.02)
            time.sleep(max(0.0, paused + 3 * SETTLE - time.monotonic()))
            handle.write(data[len(data) // 2 :])  # the copy resumes, into the claimed file
        outputs = wait_for(lambda: files(outbox, "*.mp4"), what="an output")
        wait_for(lambda: files(inbox / "done"), what="the source archived")
        jobs = ledger_jobs(tmp_path / "state")
        assert sorted(job["state"] for job in jobs) == ["done", "returned"]
        assert [path.name for path in outputs] == ["paused.mp4"]
        assert abs(probe(outputs[0]).duration - probe(clips.basic).duration) < 0.2
        assert [path.read_bytes() == data for path in files(inbox / "done")] == [True]
        assert files(inbox / "failed") == []
        assert daemon.saw("intake.unclaimed")
    finally:
        assert daemon.stop() == 0


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
