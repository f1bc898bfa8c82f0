"""Operator commands against a running daemon: they talk to it through the ledger."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Daemon,
    drop,
    files,
    ledger_states,
    nemowatch,
    rule,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.e2e


def test_a_paused_daemon_keeps_files_in_the_inbox_until_resume(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        paused = nemowatch(config, "pause")
        assert paused.returncode == 0, paused.stderr
        wait_for(lambda: daemon.saw("daemon.paused"), what="daemon.paused")
        drop(inbox / "clip.mp4", clips.basic)
        drop(inbox / "notes.rtf", b"no rule takes this")
        # still watching: the file no rule matches is noticed during the pause
        wait_for(lambda: daemon.saw("file.no_rule"), what="file.no_rule while paused")
        # a negative can only be shown by waiting: four settle windows and a periodic scan
        time.sleep(2.5)
        assert (inbox / "clip.mp4").exists()
        assert ledger_states(tmp_path / "state") == {}
        assert daemon.running
        resumed = nemowatch(config, "resume")
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: daemon.saw("daemon.resumed"), what="daemon.resumed")
        wait_for(lambda: files(outbox, "*.mp4"), what="the clip edited after resume")
        # the output is in place a moment before the ledger records the job done
        wait_for(lambda: list(ledger_states(tmp_path / "state").values()) == ["done"], what="done")
        assert not (inbox / "clip.mp4").exists()
    finally:
        assert daemon.stop() == 0


def test_retry_failed_hands_a_failed_file_back_to_the_running_daemon_at_once(
    tmp_path: Path,
) -> None:
    # no periodic scan during the test: the second job can only come from the retry
    config = write_config(tmp_path, [rule(tmp_path)], scan_interval=300)
    inbox = tmp_path / "inbox" / "clips"
    state = tmp_path / "state"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        data = os.urandom(50_000)
        drop(inbox / "random.mp4", data)
        wait_for(lambda: files(inbox / "failed", "*.error.json"), what="the first failure")
        (first,) = ledger_states(state)

        listed = nemowatch(config, "jobs", "--state", "failed")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith(f"{first}  failed") and "random.mp4" in listed.stdout

        retried = nemowatch(config, "retry", "--failed")
        assert retried.returncode == 0, retried.stderr
        assert f"requeued {first}: " in retried.stdout

        def second_failure() -> bool:
            states = ledger_states(state)
            return (
                len(states) == 2
                and set(states.values()) == {"failed"}
                and bool(daemon.saw("source.disposed", job_id=next(iter(set(states) - {first}))))
            )

        wait_for(second_failure, what="the retried file taken again and failed again")
        assert [path.name for path in files(inbox / "failed")] == [
            "random.mp4",
            "random.mp4.error.json",
        ]
        assert (inbox / "failed" / "random.mp4").read_bytes() == data  # nothing lost
        assert not files(inbox / "processing") and not (inbox / "random.mp4").exists()

        again = nemowatch(config, "jobs", "--state", "failed")
        lines = again.stdout.splitlines()
        assert len(lines) == 2
        assert lines[1].startswith(f"{first}  failed") and "[retried]" in lines[1]
        assert daemon.running
    finally:
        assert daemon.stop() == 0


def test_a_pause_given_while_the_daemon_is_stopped_holds_from_its_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    paused = nemowatch(config, "pause")
    assert paused.returncode == 0, paused.stderr
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        wait_for(lambda: daemon.saw("daemon.paused"), what="daemon.paused at start")
        status = nemowatch(config, "status")
        assert status.stdout.startswith("paused since "), status.stdout
        assert nemowatch(config, "resume").returncode == 0
        wait_for(lambda: daemon.saw("daemon.resumed"), what="daemon.resumed")
    finally:
        assert daemon.stop() == 0
