"""Kills inside windows microseconds wide, which random kills (`test_crash.py`) seldom hit:
each test leaves the folders and the ledger exactly as a SIGKILL inside its window leaves
them, then restarts the daemon, which must finish the job once.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from nemowatch.outbox import temp_path
from tests.e2e import crash_scenario
from tests.e2e.harness import Daemon, drop, files, ledger_jobs, rule, wait_for, write_config
from tests.media import Clips, write_random_bytes

pytestmark = pytest.mark.e2e


@pytest.fixture
def finished(tmp_path: Path, clips: Clips) -> Iterator[Finished]:
    """One file processed to the end by a daemon that was then stopped."""
    config = write_config(tmp_path, [rule(tmp_path, outputs="{stem}.mp4")])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "first.log").start()
    try:
        drop(inbox / "clip.mp4", clips.basic)
        wait_for(lambda: files(inbox / "done", "clip.mp4"), what="the source archived")
    finally:
        assert daemon.stop() == 0
    (job,) = ledger_jobs(tmp_path / "state")
    yield Finished(tmp_path, config, inbox, outbox, job)


class Finished:
    """A finished job, and ways to put it back into a window a kill could have left."""

    def __init__(
        self, root: Path, config: Path, inbox: Path, outbox: Path, job: dict[str, Any]
    ) -> None:
        self.root, self.config, self.inbox, self.outbox, self.job = root, config, inbox, outbox, job
        self.output = outbox / "clip.mp4"
        (self.archived,) = files(inbox / "done", "clip.mp4")
        self.claimed = Path(job["claimed"])

    def rewind(self, **columns: object) -> None:
        """Set ledger columns of the job (None clears them), as the kill left them."""
        assignments = ", ".join(f"{column} = ?" for column in columns)
        with sqlite3.connect(self.root / "state" / "ledger.sqlite3") as db:
            db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*columns.values(), self.job["id"])
            )

    def restart(self) -> None:
        """Run a daemon until the job is done and its source disposed again, then stop it."""
        daemon = Daemon(self.config, self.root / "restarted.log").start()
        try:
            wait_for(
                lambda: all(job["disposed"] for job in ledger_jobs(self.root / "state")),
                what="the job finished again",
            )
        finally:
            assert daemon.stop() == 0

    def problems(self) -> list[str]:
        return crash_scenario.inspect(self.root, {"clip.mp4": "clips"}, rules=("clips",))


def test_a_kill_between_publishing_and_recording_it_publishes_no_second_copy(
    finished: Finished,
) -> None:
    # publish had linked the verified result to its final name; the hidden name, the
    # render in the work folder and the ledger (verifying) were as they were before it
    render = Path(json.loads(finished.job["render"])["data"]["path"])
    render.parent.mkdir(parents=True, exist_ok=True)
    os.link(finished.output, render)
    os.link(
        finished.output, temp_path(finished.outbox, PurePosixPath("clip.mp4"), finished.job["id"])
    )
    finished.archived.rename(finished.claimed)
    finished.rewind(state="verifying", output=None, disposed=None, finished_at=None)
    finished.restart()
    assert not finished.problems()
    assert [path.name for path in files(finished.outbox)] == ["clip.mp4"]


def test_a_kill_in_the_middle_of_archiving_the_source_archives_it_once(
    finished: Finished,
) -> None:
    # the move to done/ is a link then an unlink: killed in between, it is in both places
    os.link(finished.archived, finished.claimed)
    finished.rewind(disposed=None)
    finished.restart()
    assert not finished.problems()
    assert not finished.claimed.exists()


def test_a_kill_after_archiving_the_source_records_where_it_went(finished: Finished) -> None:
    finished.rewind(disposed=None)  # moved, but the ledger was never told
    finished.restart()
    assert not finished.problems()
    (job,) = ledger_jobs(finished.root / "state")
    assert job["disposed"] == str(finished.archived)


def test_a_kill_before_a_failed_files_report_is_written_still_leaves_one(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    inbox = tmp_path / "inbox" / "clips"
    daemon = Daemon(config, tmp_path / "first.log").start()
    try:
        write_random_bytes(inbox / "bad.mp4", size=50_000)
        wait_for(lambda: files(inbox / "failed", "*.error.json"), what="the error report")
    finally:
        assert daemon.stop() == 0
    # the source was moved to failed/; the kill came before its report was written
    (inbox / "failed" / "bad.mp4.error.json").unlink()
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite3") as db:
        db.execute("UPDATE jobs SET disposed = NULL")
    restarted = Daemon(config, tmp_path / "restarted.log").start()
    try:
        wait_for(
            lambda: all(job["disposed"] for job in ledger_jobs(tmp_path / "state")),
            what="the job disposed again",
        )
    finally:
        assert restarted.stop() == 0
    assert sorted(path.name for path in files(inbox / "failed")) == [
        "bad.mp4",
        "bad.mp4.error.json",
    ]
    report = json.loads((inbox / "failed" / "bad.mp4.error.json").read_text())
    assert report["file"] == str(inbox / "failed" / "bad.mp4") and report["error"]
    assert not crash_scenario.inspect(tmp_path, {"bad.mp4": "clips"}, rules=("clips",))
