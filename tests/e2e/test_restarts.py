"""Restarts are not the file's fault: a graceful stop never costs a job anything, and only
a file that really crashes the daemon ends in failed/, with a hint, after running alone
(see `nemowatch.crashes`; `test_kills.py` has the SIGKILLs). Helpers for both files.

A failure prints the seed: `CRASH_SEED=<seed> pytest tests/e2e/test_restarts.py` repeats
the same schedule of stops.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nemowatch.pipeline import TEST_CRASH_ON
from tests.e2e import crash_scenario
from tests.e2e.crash_scenario import seed
from tests.e2e.harness import (
    Daemon,
    drop_at_once,
    files,
    ledger_jobs,
    processes_mentioning,
    rule,
    wait_for,
    write_config,
)
from tests.fakes.nemo_server import FakeNemo
from tests.media import Clips

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def ten_files(folder: Path, clips: Clips) -> dict[Path, Path]:
    """Ten distinct tiny clips, by where they are dropped."""
    inbox = folder / "inbox" / "clips"
    return {inbox / f"clip{index:02d}.mp4": path for index, path in enumerate(clips.distinct(10))}


def finish(config: Path, folder: Path, names: list[str]) -> Daemon:
    """One more daemon, until every file is in done/ or failed/; stopped."""
    inbox = folder / "inbox" / "clips"
    last = Daemon(config, folder / "daemon-last.log").start()
    try:
        wait_for(
            lambda: all(
                files(inbox / "done", name) or (inbox / "failed" / name).exists() for name in names
            ),
            timeout=90,
            interval=0.2,
            what="every file in done/ or failed/",
        )
    finally:
        assert last.stop(timeout=60) == 0
    return last


def every_file_once(folder: Path, names: list[str], fake: FakeNemo | None = None) -> list[str]:
    """The crash scenario's checks for `names` (other files may be in failed/), and none
    of them failed."""
    problems = crash_scenario.inspect(
        folder, dict.fromkeys(names, "clips"), fake=fake, rules=("clips",)
    )
    jobs = ledger_jobs(folder / "state")
    failed = [job for job in jobs if job["state"] == "failed" and Path(job["source"]).name in names]
    problems += [f"{job['source']} failed: {job['error']}" for job in failed]
    return problems


# The long clip's tiny frames read at 5 times real time: a render of 3 s, whatever the load
SLOW = 5


def test_ten_files_survive_six_sigterm_restarts_that_interrupt_their_jobs(
    tmp_path: Path, clips: Clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    paced_ffmpeg(SLOW)
    chosen = seed()
    choose = random.Random(chosen)
    # no grace period: a stop interrupts the running jobs, as it does jobs longer than it
    config = write_config(tmp_path, [rule(tmp_path, outputs="{stem}.mp4")], grace_period=0)
    dropped = ten_files(tmp_path, clips)
    long = next(iter(dropped))
    dropped[long] = clips.long_tiny  # it renders for a while: each stop comes while it does
    drop_at_once(dropped)
    for number in range(1, 7):
        daemon = Daemon(config, tmp_path / f"daemon-{number:02d}.log").start()
        wait_for(
            lambda: daemon.saw("job.progress", source=str(long), stage="rendering"),  # noqa: B023
            what="the long one rendering",
        )
        time.sleep(choose.uniform(0.0, 0.5))
        assert daemon.stop() == 0
        assert daemon.saw("job.interrupted", source=str(long))
    names = [path.name for path in dropped]
    finish(config, tmp_path, names)
    assert every_file_once(tmp_path, names) == [], f"seed {chosen}"
    for log in logs(tmp_path):
        assert not Daemon(config, log).saw("job.crash_counted"), "a stop is not a crash"


def test_a_file_that_crashes_the_daemon_fails_with_a_hint_after_running_alone(
    tmp_path: Path, clips: Clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    paced_ffmpeg(SLOW)
    config = write_config(tmp_path, [rule(tmp_path, outputs="{stem}.mp4")], max_attempts=2)
    inbox = tmp_path / "inbox" / "clips"
    # the crash comes as its render starts; the other one is rendering then, every time
    drop_at_once({inbox / "crash.mp4": clips.basic, inbox / "bystander.mp4": clips.long_tiny})
    later = {inbox / path.name: path for path in clips.distinct(2)}  # with the 2nd daemon
    names = ["crash.mp4", "bystander.mp4", *(path.name for path in later)]
    daemons: list[Daemon] = []
    for number in range(1, 7):
        daemon = Daemon(
            config, tmp_path / f"daemon-{number:02d}.log", env={TEST_CRASH_ON: "crash.mp4"}
        ).spawn()
        daemons.append(daemon)
        if number == 2:
            drop_at_once(later)
        wait_for(
            lambda: (
                not daemon.running  # noqa: B023 (called here, in the loop)
                or (
                    all(files(inbox / "done", name) for name in names[1:])
                    and (inbox / "failed" / "crash.mp4").exists()
                )
            ),
            timeout=90,
            what="a crash, or every file in done/ or failed/",
        )
        if daemon.running:
            assert daemon.stop() == 0
            break
        assert daemon.process is not None and daemon.process.returncode < 0  # SIGABRT
        wait_for(lambda: not processes_mentioning(str(tmp_path)), what="its FFmpeg gone")
    else:
        pytest.fail("the daemon kept crashing")
    (job,) = [job for job in ledger_jobs(tmp_path / "state") if job["source"].endswith("crash.mp4")]
    isolated = [event for daemon in daemons for event in daemon.saw("job.isolating")]
    assert job["id"] in {event["job_id"] for event in isolated}, "it ran alone first"
    report = json.loads((inbox / "failed" / "crash.mp4.error.json").read_text())
    assert "crashed the daemon" in report["error"]
    assert "nemowatch process" in report["hint"]
    assert every_file_once(tmp_path, names[1:]) == []


def logs(folder: Path) -> list[Path]:
    return sorted(folder.glob("daemon-*.log"))
