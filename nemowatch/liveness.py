"""Whether a daemon runs on a state directory: `state_dir/daemon.pid`, locked while it runs.

The daemon writes its pid into the file and holds an exclusive `flock` on it until it
stops. The kernel drops the lock when the process ends, however it ends, so a pid file
left behind by a killed daemon reads as "not running": the pid is believed only while the
file is locked. A second daemon on the same state directory would resume the same jobs:
it is refused (`StateDirBusy`), naming the first one's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nemowatch.errors import StateDirUnwritable
from nemowatch.ledger import LedgerError
from nemowatch.ledgerfile import PID_FILE

# How long a starting daemon waits for the lock: `status` holds it for an instant
# while it looks, and must not make a daemon starting at that moment give up.
_PATIENCE = 2.0
_RETRY = 0.05


class StateDirBusy(LedgerError):
    """Another daemon runs on this state directory (and so on its ledger)."""


@dataclass(frozen=True)
class Liveness:
    """What `status` says about the daemon of a state directory."""

    running: bool
    pid: int | None  # the running daemon's pid (None when not running, or unreadable)


class DaemonLock:
    """The lock a running daemon holds on `state_dir/daemon.pid`; `release` when stopping."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Empty the pid file and let the lock go (the file stays: see `hold`)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
        os.close(descriptor)  # closing drops the flock


def pid_path(state_dir: Path) -> Path:
    return state_dir / PID_FILE


def hold(
    state_dir: Path,
    *,
    pid: int | None = None,
    patience: float = _PATIENCE,
    sleep: Callable[[float], None] = time.sleep,
) -> DaemonLock:
    """Lock `state_dir/daemon.pid` and write our pid in it, for as long as the daemon runs.

    The file is never removed, only emptied: removing it would let a daemon starting at
    that moment lock a file nobody else can see. Raises StateDirBusy when another daemon
    holds it, LedgerError when the file cannot be written.
    """
    path = pid_path(state_dir)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StateDirUnwritable(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that state_dir is writable by the user running nemowatch",
        ) from exc
    attempts = max(1, round(patience / _RETRY))
    for attempt in range(attempts):
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt < attempts - 1:
                sleep(_RETRY)
    else:
        other = _read_pid(descriptor)
        os.close(descriptor)
        who = f"pid {other}" if other is not None else "another process"
        raise StateDirBusy(
            f"another nemowatch ({who}) is running on the state directory {state_dir}",
            hint="stop it first, or give this config its own state_dir",
        )
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{pid if pid is not None else os.getpid()}\n".encode(), 0)
    return DaemonLock(path, descriptor)


def check(state_dir: Path) -> Liveness:
    """Whether a daemon holds `state_dir`'s pid file, and its pid. Creates nothing."""
    try:
        descriptor = os.open(pid_path(state_dir), os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return Liveness(running=False, pid=None)
    except OSError as exc:
        raise LedgerError(
            f"cannot read {pid_path(state_dir)}: {exc.strerror or exc}",
            hint="run the command as the user the daemon runs as (or one in its group)",
        ) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Liveness(running=True, pid=_read_pid(descriptor))
        return Liveness(running=False, pid=None)  # a stale file: nobody holds it
    finally:
        os.close(descriptor)  # and with it the shared lock, if taken


def _read_pid(descriptor: int) -> int | None:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
