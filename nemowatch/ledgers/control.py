"""The control table: what operators ask of a running daemon (`pause`, `resume`, `scan`,
pausing one rule), written by the CLI and the web page, read by the daemon.

Each write rings the state directory's doorbell, which the daemon watches (inotify); it
also reads the table at each scan, which is how a daemon of a fleet hears a request made on
another machine (docs/fleet.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from nemowatch.ledgers.store import Executor, Store, patient

# Keys of the control table (values are text).
_PAUSED = "paused"  # "1" while an operator has paused new work
_PAUSED_AT = "paused_at"  # epoch seconds of the pause
_SCAN_REQUESTED = "scan_requested"  # epoch seconds of the latest rescan request


@dataclass(frozen=True)
class Control:
    """What operators asked of the daemon (written by the CLI, read by the daemon)."""

    paused: bool  # an operator ran `nemowatch pause`: start no new jobs
    paused_at: float | None  # epoch seconds, while paused
    scan_requested: float  # epoch seconds of the latest request for a rescan (0.0 if never)


def bell_folder(state_dir: Path) -> Path:
    """Where operator commands ring a running daemon after writing the ledger: it watches
    this folder (inotify) instead of polling the ledger."""
    return state_dir / "bell"


def ring(state_dir: Path) -> None:
    """Wake a daemon on this state directory (best effort: it also looks at each scan)."""
    bell = bell_folder(state_dir)
    with contextlib.suppress(OSError):
        bell.mkdir(parents=True, exist_ok=True)
        (bell / "rung").write_text(f"{time.time()}\n", encoding="utf-8")


class ControlTable:
    """The control table's reads and writes (a part of `ledger.Ledger`)."""

    state_dir: Path
    _db: Store
    _clock: Callable[[], float]

    def _transaction(self) -> AbstractContextManager[Executor]:
        raise NotImplementedError

    def control(self) -> Control:
        """The operator's current requests (one small read; the daemon polls it)."""
        values = {
            row["key"]: row["value"] for row in self._db.execute("SELECT key, value FROM control")
        }
        paused = values.get(_PAUSED) == "1"
        paused_at = values.get(_PAUSED_AT)
        return Control(
            paused=paused,
            paused_at=float(paused_at) if paused and paused_at else None,
            scan_requested=float(values.get(_SCAN_REQUESTED) or 0.0),
        )

    @patient
    def set_paused(self, paused: bool) -> Control:
        """Pause or resume new work. Pausing again keeps the time of the first pause."""
        with self._transaction() as db:
            current = db.execute("SELECT value FROM control WHERE key = ?", (_PAUSED,)).fetchone()
            already = current is not None and current["value"] == "1"
            if paused != already:
                self._set(db, _PAUSED, "1" if paused else "0")
                self._set(db, _PAUSED_AT, repr(self._clock()) if paused else "")
        ring(self.state_dir)
        return self.control()

    @patient
    def request_scan(self) -> None:
        """Ask a running daemon to rescan its inboxes now (it is woken by `ring`)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT value FROM control WHERE key = ?", (_SCAN_REQUESTED,)
            ).fetchone()
            previous = float(row["value"]) if row else 0.0
            # strictly increasing, so a request is never mistaken for one already served
            self._set(db, _SCAN_REQUESTED, repr(max(self._clock(), previous + 0.001)))
        ring(self.state_dir)

    @patient
    def set_control(self, key: str, value: str | None) -> None:
        """Write one control entry (None: remove it), then ring a running daemon."""
        with self._transaction() as db:
            if value is None:
                db.execute("DELETE FROM control WHERE key = ?", (key,))
            else:
                self._set(db, key, value)
        ring(self.state_dir)

    @staticmethod
    def _set(db: Executor, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO control (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
