"""The ledger's file: where it is, whether one is expected there, whether it is sound, and
what stands in the way of opening it (the LedgerErrors of errors.py, each with its exit
status). Used by `ledger.Ledger` when opening, and by `salvage` (`nemowatch ledger`).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from nemowatch.errors import (
    LedgerDamaged,
    LedgerError,
    LedgerIOError,
    LedgerLost,
    StateDirMissing,
    StateDirUnwritable,
)


def ledger_path(state_dir: Path) -> Path:
    """Where the ledger of a state directory is."""
    return state_dir / "ledger.sqlite3"


PID_FILE = "daemon.pid"  # in state_dir, written by each daemon at start (`liveness.hold`)


def ledger_expected(state_dir: Path) -> bool:
    """Whether a daemon ran on `state_dir` (its pid file is there, emptied but never removed)
    or a ledger was there (its -wal is left): then a missing ledger was lost, and a new
    empty one would forget every job."""
    wal = ledger_path(state_dir).with_name("ledger.sqlite3-wal")
    return (state_dir / PID_FILE).exists() or wal.exists()


def integrity_problems(db: sqlite3.Connection, limit: int = 20) -> list[str]:
    """What `PRAGMA quick_check` finds wrong (at most `limit` lines); [] when all is well."""
    rows = db.execute(f"PRAGMA quick_check({limit})").fetchall()
    lines = [str(row[0]) for row in rows]
    return [] if lines == ["ok"] else lines


def damaged_error(path: Path, problems: list[str]) -> LedgerDamaged:
    """The error naming a damaged ledger and the way out."""
    shown = "; ".join(problems[:3])
    if len(problems) > 3:
        shown += f" (and {len(problems) - 3} more)"
    return LedgerDamaged(
        f"the job ledger {path} is damaged: {shown}",
        hint="`nemowatch ledger check` reports what is wrong; `nemowatch ledger recover` "
        "(with the daemon stopped) moves the damaged file aside and rebuilds the ledger "
        "from what can still be read and from the folders; nothing is deleted",
    )


def opening_error(path: Path, exc: OSError | sqlite3.Error) -> LedgerError:
    """The LedgerError for a failure to open `path`, by what a person does about it."""
    message = f"cannot open the job ledger {path}: {exc}"
    # "file is not a database", "database disk image is malformed"; an OperationalError
    # (locked, cannot open, read-only) is a DatabaseError too, but the file may be sound
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return damaged_error(path, [str(exc)])
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return damaged_error(path, [str(exc)])
    if primary in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) or getattr(exc, "errno", None) in (
        errno.ENOSPC,
        errno.EIO,
        errno.EDQUOT,
    ):
        return LedgerIOError(message, hint="free some space on its disk, or check the disk")
    if isinstance(exc, (FileNotFoundError, NotADirectoryError, FileExistsError)):
        return StateDirMissing(
            f"cannot open the job ledger {path}: its folder cannot be made: {exc.strerror or exc}",
            hint="state_dir, or a folder above it, is a link to nothing or a file: a disk "
            "that is not mounted? mount it, or fix state_dir in the config",
        )
    return StateDirUnwritable(
        message,
        hint="check that state_dir exists and is writable by the user running nemowatch",
    )


def lost_error(state_dir: Path) -> LedgerLost:
    return LedgerLost(
        f"the job ledger {ledger_path(state_dir)} is missing, but a daemon ran on this "
        "state directory: it was deleted or moved",
        hint="put it back if you can; else `nemowatch ledger recover` rebuilds one from the "
        "folders (claimed files in processing/ become jobs again); a new empty ledger "
        "would forget every job",
    )


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection to the ledger at `path` (WAL, rows by name), checked by `PRAGMA
    quick_check`; creating the file and its folder if `create`. Raises the LedgerError
    for what stands in the way (`opening_error`), LedgerDamaged for a damaged file."""
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        else:
            # mode=rw: a missing file is an error here, never a new empty ledger
            uri = f"{path.absolute().as_uri()}?mode=rw"
            db = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise opening_error(path, exc) from exc
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        problems = integrity_problems(db)
    except sqlite3.Error as exc:
        db.close()
        raise opening_error(path, exc) from exc
    if problems:
        db.close()
        raise damaged_error(path, problems)
    return db


def identity(path: Path) -> tuple[int, int]:
    """(device, inode) of the file at `path`: what stays the same while it is the same file."""
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino)


def identity_lost(path: Path, opened: tuple[int, int]) -> str | None:
    """Why `path` no longer holds the file whose `identity` was `opened` ("deleted",
    "replaced by another file"), or None while it does (or when that cannot be told)."""
    try:
        now = identity(path)
    except (FileNotFoundError, NotADirectoryError):
        return "deleted"
    except OSError:
        return None  # cannot tell (permissions changed?): writing will say
    return None if now == opened else "replaced by another file"
