"""The daemon's pid file and its lock, with real processes: a daemon that is killed leaves
its pid behind, and `check` must not believe it."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nemowatch import liveness
from nemowatch.liveness import Liveness, StateDirBusy

HOLDER = """
import sys, time
from pathlib import Path
from nemowatch import liveness
liveness.hold(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(60)
"""


def start_holder(state_dir: Path) -> subprocess.Popen[str]:
    """Another process that holds the state directory, as a running daemon does."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state_dir)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "holding\n"
    return process


def test_a_running_holder_is_seen_with_its_pid_and_a_killed_one_is_not(tmp_path: Path) -> None:
    holder = start_holder(tmp_path)
    try:
        assert liveness.check(tmp_path) == Liveness(running=True, pid=holder.pid)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    # the killed process's pid is still written there, but nobody holds the lock
    assert (tmp_path / "daemon.pid").read_text() == f"{holder.pid}\n"
    assert liveness.check(tmp_path) == Liveness(running=False, pid=None)


def test_a_second_daemon_on_the_same_state_dir_is_refused_naming_the_first(
    tmp_path: Path,
) -> None:
    holder = start_holder(tmp_path)
    waits: list[float] = []
    try:
        with pytest.raises(StateDirBusy) as refused:
            liveness.hold(tmp_path, patience=0.2, sleep=waits.append)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    assert f"another nemowatch (pid {holder.pid}) is running on the state directory" in str(
        refused.value
    )
    assert refused.value.hint == "stop it first, or give this config its own state_dir"
    assert len(waits) == 3  # tried four times over the patience, then gave up
    lock = liveness.hold(tmp_path, patience=0)  # its lock went with it
    lock.release()


def test_a_daemon_starting_while_status_looks_waits_for_it(tmp_path: Path) -> None:
    first = liveness.hold(tmp_path, pid=12345)
    first.release()
    looking = os.open(tmp_path / "daemon.pid", os.O_RDONLY)
    fcntl.flock(looking, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what `check` holds for an instant

    def status_done(seconds: float) -> None:
        os.close(looking)

    lock = liveness.hold(tmp_path, sleep=status_done)
    try:
        assert liveness.check(tmp_path) == Liveness(running=True, pid=os.getpid())
    finally:
        lock.release()


def test_stopping_empties_the_pid_file_and_keeps_it(tmp_path: Path) -> None:
    lock = liveness.hold(tmp_path, pid=4321)
    assert (tmp_path / "daemon.pid").read_text() == "4321\n"
    lock.release()
    lock.release()  # a second release does nothing
    assert (tmp_path / "daemon.pid").read_text() == ""
    assert liveness.check(tmp_path) == Liveness(running=False, pid=None)


def test_checking_a_missing_state_dir_creates_nothing(tmp_path: Path) -> None:
    assert liveness.check(tmp_path / "state") == Liveness(running=False, pid=None)
    assert not (tmp_path / "state").exists()
