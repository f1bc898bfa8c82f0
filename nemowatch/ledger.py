"""The job ledger: SQLite (WAL) in the state directory.

One row per job, keyed by a job id, with its content fingerprint, the engine's ids (session,
uploaded media, render), and one history row per state change. The ledger is what makes a
restarted daemon resume instead of repeat, and what `status` reads while the daemon runs.

It is also how the operator commands talk to a running daemon: `pause`, `resume` and
`retry` write the `control` table, then `ring` the state directory's doorbell, which the
daemon watches: it reads the table (`Ledger.control`) when rung, and at each scan.

Opening runs `PRAGMA quick_check` (damaged: LedgerDamaged, not a traceback later); `lost()`
says when the path no longer holds the opened file. Only the daemon and `process` create a
ledger, never where one is expected (`ledgerfile`); `salvage` rebuilds a damaged one.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nemowatch import ledgerfile
from nemowatch.errors import LedgerError
from nemowatch.jobs import (
    ALLOWED,
    FINISHED,
    RUNNING,
    Batch,
    IllegalTransition,
    JobRecord,
    JobState,
    Revision,
)
from nemowatch.ledgerfile import ledger_path

# defined elsewhere, imported from here too
__all__ = [
    "ALLOWED",
    "FINISHED",
    "RUNNING",
    "Batch",
    "IllegalTransition",
    "JobRecord",
    "JobState",
    "LedgerError",
    "ledger_path",
]


# Columns a caller may set with `transition` or `update`, and whether they hold JSON.
_FIELDS: dict[str, bool] = {
    "claimed": False,
    "fingerprint": False,
    "size": False,
    "attempts": False,
    "retryable": False,
    "session": True,
    "media": True,
    "edits_done": False,
    "edit_sent": False,
    "edit_token": False,
    "draft": True,
    "render": True,
    "output": False,
    "error": False,
    "error_kind": False,
    "warnings": True,
    "disposed": False,
    "timings": True,
    "in_flight": False,
    "sidecars": True,
    "published": True,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    engine TEXT NOT NULL,
    source TEXT NOT NULL,            -- where the file was dropped
    source_size INTEGER,
    source_mtime_ns INTEGER,
    source_inode INTEGER,
    claimed TEXT,                    -- where the file is while the job runs
    fingerprint TEXT,                -- SHA-256 of the content
    size INTEGER,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retryable INTEGER,
    session TEXT,                    -- JSON: the engine's session
    media TEXT,                      -- JSON: the uploaded source
    edits_done INTEGER NOT NULL DEFAULT 0,
    edit_sent INTEGER,               -- the instruction sent and not yet confirmed
    edit_token TEXT,                 -- the engine's edit checkpoint read before sending it
    draft TEXT,                      -- JSON: the planned timeline
    render TEXT,                     -- JSON: the submitted render
    output TEXT,                     -- the published file
    error TEXT,
    warnings TEXT,                   -- JSON list of strings
    disposed TEXT,                   -- where the source went after the job (or "deleted")
    timings TEXT,                    -- JSON: seconds per step
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    retried_at REAL,                 -- when an operator sent a failed job's source back
    stage TEXT,                      -- what a running job is doing now ("rendering")
    percent REAL,                    -- how far that stage is (0-100), when known
    progress_at REAL                 -- when stage/percent were last written
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs(fingerprint);
CREATE INDEX IF NOT EXISTS jobs_source ON jobs(source);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    from_state TEXT,
    to_state TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS transitions_job ON transitions(job_id);
CREATE TABLE IF NOT EXISTS control (  -- operator requests to a running daemon
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# Columns added after the first release of the schema, for `_migrate`.
_ADDED_COLUMNS = {
    "edit_sent": "INTEGER",
    "edit_token": "TEXT",
    "retried_at": "REAL",
    "stage": "TEXT",
    "percent": "REAL",
    "progress_at": "REAL",
    # crashes as evidence against a job (`nemowatch.crashes`): the `checkpoint` its running
    # run began at; the crashes in a row it was running for there; whether alone in one
    "in_flight": "TEXT",
    "crashes": "INTEGER NOT NULL DEFAULT 0",
    "crashed_alone": "INTEGER NOT NULL DEFAULT 0",
    # JSON list of {"source", "claimed"}: the sidecars (clip.txt, clip.yaml) taken with it
    "sidecars": "TEXT",
    # several outputs per rule: JSON [[output name, published file, or null when `skip`
    # kept an existing one], ...] in the order published; a restarted job makes the others
    "published": "TEXT",
    # JSON (jobs.Batch): the folder a job came in, when it was dropped as one (issue 13)
    "batch": "TEXT",
    # JSON (jobs.Revision): the finished job a revision file revises (issue 13)
    "revision": "TEXT",
    # what kind of error failed the job ("media", "engine", "transient", ...: errors.kind)
    "error_kind": "TEXT",
}

# Keys of the control table (values are text).
_PAUSED = "paused"  # "1" while an operator has paused new work
_PAUSED_AT = "paused_at"  # epoch seconds of the pause
_SCAN_REQUESTED = "scan_requested"  # epoch seconds of the latest rescan request


@dataclass(frozen=True)
class NewJob:
    """A job to write (`Ledger.create_all`)."""

    job_id: str
    rule: str
    engine: str
    source: Path
    claimed: Path | None
    source_size: int | None = None
    source_mtime_ns: int | None = None
    source_inode: int | None = None
    state: JobState = JobState.CLAIMED
    sidecars: list[dict[str, str]] | None = None
    batch: Batch | None = None
    revision: Revision | None = None


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


def new_job_id() -> str:
    """A short unique id, safe in file names."""
    return uuid.uuid4().hex[:12]


class JobQueries:
    """The ledger's read-only questions about jobs: one SELECT each, outside any transaction.

    `Ledger` opens the database and adds every write; `status`, `jobs`, recovery and intake
    ask these.
    """

    path: Path
    _db: sqlite3.Connection

    def get(self, job_id: str) -> JobRecord:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no job {job_id} in the ledger {self.path}")
        return JobRecord.from_row(row)

    def exists(self, job_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None

    def find(self, job_id_prefix: str) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE id LIKE ? ORDER BY created_at", (job_id_prefix + "%",)
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        """Jobs a previous run left mid-way, oldest first."""
        placeholders = ", ".join("?" for _ in FINISHED)
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE state NOT IN ({placeholders}) ORDER BY created_at",
            tuple(state.value for state in FINISHED),
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def undisposed(self) -> list[JobRecord]:
        """Finished jobs whose source has not yet been archived, kept, deleted, quarantined
        or given back."""
        placeholders = ", ".join("?" for _ in FINISHED)
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE state IN ({placeholders}) AND disposed IS NULL"
            " AND claimed IS NOT NULL ORDER BY created_at",
            tuple(state.value for state in FINISHED),
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def done_with_fingerprint(self, fingerprint: str, rule: str) -> JobRecord | None:
        """The earliest finished job of `rule` that produced an output from the same bytes."""
        row = self._db.execute(
            "SELECT * FROM jobs WHERE fingerprint = ? AND rule = ? AND state = ?"
            " ORDER BY created_at LIMIT 1",
            (fingerprint, rule, JobState.DONE.value),
        ).fetchone()
        return JobRecord.from_row(row) if row else None

    def unfinished_with_fingerprint(self, fingerprint: str, rule: str) -> list[JobRecord]:
        """The unfinished jobs of `rule` made from the same bytes, oldest first."""
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE fingerprint = ? AND rule = ? AND state NOT IN"
            f" ({', '.join('?' for _ in FINISHED)}) ORDER BY created_at, id",
            (fingerprint, rule, *(state.value for state in FINISHED)),
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def knows_source(self, source: Path, size: int, mtime_ns: int, inode: int) -> bool:
        """Whether this exact file (same path, size, mtime, inode) was already taken.

        A source kept in place after its job (`after: keep`) must not be taken again; a
        file that is touched or replaced gets a new mtime or inode and is new work. A job
        an operator retried no longer counts: its file, moved back unchanged, is work again.
        """
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE source = ? AND source_size = ? AND source_mtime_ns = ?"
            " AND source_inode = ? AND retried_at IS NULL LIMIT 1",
            (str(source), size, mtime_ns, inode),
        ).fetchone()
        return row is not None

    def batch_jobs(self, batch_id: str) -> list[JobRecord]:
        """The jobs of one batch (a folder), oldest first."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE json_extract(batch, '$.id') = ? ORDER BY created_at, id",
            (batch_id,),
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def revisions_of(self, job_id: str) -> list[JobRecord]:
        """The revisions of a chain's first job, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE json_extract(revision, '$.of') = ? ORDER BY created_at, id",
            (job_id,),
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def knows_batch(self, folder: Path, identity: tuple[int, int, int]) -> bool:
        """Whether a batch was taken from `folder` as it is now (kept in place after it)."""
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE json_extract(batch, '$.folder') = ?"
            " AND json_extract(batch, '$.identity') = ? AND retried_at IS NULL LIMIT 1",
            (str(folder), json.dumps(list(identity), separators=(",", ":"))),
        ).fetchone()
        return row is not None

    def claimed_paths(self) -> set[Path]:
        """Every file the jobs claimed: their sources and their sidecars."""
        rows = self._db.execute(
            "SELECT claimed, sidecars FROM jobs WHERE claimed IS NOT NULL"
        ).fetchall()
        paths = {Path(row["claimed"]) for row in rows}
        for row in self._db.execute("SELECT batch FROM jobs WHERE batch IS NOT NULL"):
            paths.add(Path(json.loads(row["batch"])["claimed"]))  # the folder, in processing/
        for row in rows:
            for sidecar in json.loads(row["sidecars"] or "[]"):
                paths.add(Path(sidecar["claimed"]))
        return paths

    def jobs(
        self,
        state: JobState | Collection[JobState] | None = None,
        limit: int | None = 50,
        *,
        rule: str | None = None,
        retried: bool | None = None,
    ) -> list[JobRecord]:
        """Jobs newest first, in `state` (one or several), of `rule`; `limit` None: all."""
        conditions: list[str] = []
        values: list[Any] = []
        if state is not None:
            states = [state] if isinstance(state, JobState) else list(state)
            conditions.append(f"state IN ({', '.join('?' for _ in states)})")
            values += [item.value for item in states]
        if rule is not None:
            conditions.append("rule = ?")
            values.append(rule)
        if retried is not None:
            conditions.append("retried_at IS NOT NULL" if retried else "retried_at IS NULL")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._db.execute(
            f"SELECT * FROM jobs{where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (*values, -1 if limit is None else limit),  # LIMIT -1: no limit
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def counts(self) -> dict[JobState, int]:
        rows = self._db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        return {JobState(row["state"]): row["n"] for row in rows}

    def history(self, job_id: str) -> list[tuple[str | None, str, float, str | None]]:
        rows = self._db.execute(
            "SELECT from_state, to_state, at, detail FROM transitions WHERE job_id = ? ORDER BY id",
            (job_id,),
        ).fetchall()
        return [(row["from_state"], row["to_state"], row["at"], row["detail"]) for row in rows]

    def control_values(self, prefix: str) -> dict[str, str]:
        """The control table's entries whose key starts with `prefix` (see rulepause.py)."""
        rows = self._db.execute("SELECT key, value FROM control WHERE key LIKE ? || '%'", (prefix,))
        return {row["key"]: row["value"] for row in rows if row["key"].startswith(prefix)}


class Ledger(JobQueries):
    """The SQLite job store. Every method is one transaction; the reads are `JobQueries`."""

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, create: bool = True
    ) -> None:
        """Open the ledger at `path`, creating it (and its folder) unless `create` is False;
        LedgerDamaged when `PRAGMA quick_check` finds it damaged (`ledgerfile`)."""
        self.path = path
        self._clock = clock
        self._db = ledgerfile.connect(path, create=create)
        try:
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._identity = ledgerfile.identity(path)
        except (OSError, sqlite3.Error) as exc:
            self._db.close()
            raise ledgerfile.opening_error(path, exc) from exc

    def _migrate(self) -> None:
        """Add the columns a ledger written by an older nemowatch lacks."""
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")

    @classmethod
    def in_state_dir(cls, state_dir: Path, **kwargs: Any) -> Ledger:
        """The ledger of `state_dir`, created (with the folder) if there is none yet, unless
        one is expected there (`ledger_expected`): LedgerLost then."""
        path = ledger_path(state_dir)
        if not path.exists() and ledgerfile.ledger_expected(state_dir):
            raise ledgerfile.lost_error(state_dir)
        return cls(path, **kwargs)

    @classmethod
    def open_existing(cls, state_dir: Path, **kwargs: Any) -> Ledger:
        """The ledger of `state_dir`, for commands that only look (`status`, `jobs`).

        Never creates the folder or an empty ledger: LedgerError naming the state
        directory when there is none yet.
        """
        path = ledger_path(state_dir)
        if not path.is_file() and ledgerfile.ledger_expected(state_dir):
            raise ledgerfile.lost_error(state_dir)
        if not path.is_file():
            what = "does not exist" if not state_dir.exists() else "has no job ledger yet"
            raise LedgerError(
                f"the state directory {state_dir} {what}",
                hint="no job has run with this config yet (`nemowatch run` starts the "
                "daemon); if jobs did run, check `state_dir` in the config",
            )
        return cls(path, create=False, **kwargs)

    def lost(self) -> str | None:
        """Why `path` no longer holds the opened file ("deleted", ...), or None while it does:
        writes to a lost ledger go to a file nobody sees."""
        return ledgerfile.identity_lost(self.path, self._identity)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the job ledger {self.path}: {exc}") from exc

    def create(
        self,
        *,
        job_id: str,
        rule: str,
        engine: str,
        source: Path,
        claimed: Path | None,
        source_size: int | None = None,
        source_mtime_ns: int | None = None,
        source_inode: int | None = None,
        state: JobState = JobState.CLAIMED,
        sidecars: list[dict[str, str]] | None = None,
        batch: Batch | None = None,
        revision: Revision | None = None,
    ) -> JobRecord:
        """A new job; `sidecars`: {"source", "claimed"} of each sidecar taken with it;
        `batch`: the folder it came in."""
        fields = {name: value for name, value in locals().items() if name != "self"}
        return self.create_all([NewJob(**fields)])[0]

    def create_all(self, new: Sequence[NewJob]) -> list[JobRecord]:
        """Several new jobs in one write (a batch's: all of them, or none)."""
        now = self._clock()
        with self._transaction() as db:
            for job in new:
                db.execute(
                    "INSERT INTO jobs (id, rule, engine, source, source_size, source_mtime_ns,"
                    " source_inode, claimed, state, created_at, updated_at, sidecars, batch,"
                    " revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.job_id,
                        job.rule,
                        job.engine,
                        str(job.source),
                        job.source_size,
                        job.source_mtime_ns,
                        job.source_inode,
                        str(job.claimed) if job.claimed else None,
                        job.state.value,
                        now,
                        now,
                        json.dumps(job.sidecars) if job.sidecars else None,
                        json.dumps(job.batch.as_json()) if job.batch else None,
                        json.dumps(job.revision.as_json()) if job.revision else None,
                    ),
                )
                db.execute(
                    "INSERT INTO transitions (job_id, from_state, to_state, at)"
                    " VALUES (?, ?, ?, ?)",
                    (job.job_id, JobState.DETECTED.value, job.state.value, now),
                )
        return [self.get(job.job_id) for job in new]

    def transition(
        self, job_id: str, state: JobState, *, detail: str | None = None, **fields: Any
    ) -> JobRecord:
        """Move a job to `state`, setting `fields` in the same write, and record the change."""
        now = self._clock()
        assignments, values = self._assignments(fields)
        assignments += ["state = ?", "updated_at = ?"]
        values += [state.value, now]
        if state in FINISHED:
            assignments += ["finished_at = ?", "stage = NULL", "percent = NULL"]
            values.append(now)
        with self._transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise LedgerError(f"no job {job_id} in the ledger {self.path}")
            current = JobState(row["state"])
            if state not in ALLOWED.get(current, frozenset()):
                raise IllegalTransition(
                    f"job {job_id} cannot go from {current.value} to {state.value}"
                    " (a bug in nemowatch: please report it)"
                )
            db.execute(f"UPDATE jobs SET {', '.join(assignments)} WHERE id = ?", (*values, job_id))
            db.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (job_id, row["state"], state.value, now, detail),
            )
        return self.get(job_id)

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        """Checkpoint `fields` without changing the state."""
        assignments, values = self._assignments(fields)
        assignments.append("updated_at = ?")
        values.append(self._clock())
        with self._transaction() as db:
            db.execute(f"UPDATE jobs SET {', '.join(assignments)} WHERE id = ?", (*values, job_id))
        return self.get(job_id)

    @staticmethod
    def _assignments(fields: dict[str, Any]) -> tuple[list[str], list[Any]]:
        assignments: list[str] = []
        values: list[Any] = []
        for name, value in fields.items():
            if name not in _FIELDS:
                raise ValueError(f"unknown ledger field {name!r}")
            if _FIELDS[name] and value is not None:
                value = json.dumps(value, sort_keys=True)
            elif isinstance(value, Path):
                value = str(value)
            assignments.append(f"{name} = ?")
            values.append(value)
        return assignments, values

    def progress(self, job_id: str, stage: str | None, percent: float | None) -> None:
        """Record what a running job is doing (no transition, no history: written often)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET stage = ?, percent = ?, progress_at = ? WHERE id = ?",
                (stage, None if percent is None else round(percent, 1), self._clock(), job_id),
            )

    def discard(self, job_id: str) -> None:
        """Forget a job recorded for a claim that did not happen (the file was gone or
        changed): it never started, so there is nothing to keep. Started jobs are kept."""
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM jobs WHERE id = ? AND state = ?", (job_id, JobState.CLAIMED.value)
            ).rowcount
            if deleted:
                db.execute("DELETE FROM transitions WHERE job_id = ?", (job_id,))

    def mark_retried(self, job_id: str) -> JobRecord:
        """Record that an operator sent a failed job's source back to its inbox.

        Only a failed job not yet retried can be marked; the check and the write are one
        transaction, so two `retry` commands cannot both take the same job.
        """
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT state, retried_at FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise LedgerError(f"no job {job_id} in the ledger {self.path}")
            if row["state"] != JobState.FAILED.value or row["retried_at"] is not None:
                what = "already retried" if row["retried_at"] is not None else row["state"]
                raise LedgerError(f"job {job_id} is {what}; only a failed job can be retried")
            db.execute(
                "UPDATE jobs SET retried_at = ?, updated_at = ? WHERE id = ?",
                (now, now, job_id),
            )
        return self.get(job_id)

    def count_crash(self) -> list[JobRecord]:
        """The jobs a crash left running (marked `in_flight`), each charged with it: one
        more crash in a row, or the first of a new row if its run got past the checkpoint
        it began at; `crashed_alone` if it was the only one. Marks cleared; one write."""
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM jobs WHERE in_flight IS NOT NULL").fetchall()
            for row in rows:
                job = JobRecord.from_row(row)
                again = row["in_flight"] == job.checkpoint  # crashed where it did last time
                alone = (again and job.crashed_alone) or len(rows) == 1
                db.execute(
                    "UPDATE jobs SET crashes = ?, crashed_alone = ?, in_flight = NULL WHERE id = ?",
                    (job.crashes + 1 if again else 1, alone, job.id),
                )
        return [self.get(row["id"]) for row in rows]

    # -- control: operator requests to a running daemon --------------------------------

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

    def set_paused(self, paused: bool) -> Control:
        """Pause or resume new work. Pausing again keeps the time of the first pause."""
        with self._transaction() as db:
            current = db.execute("SELECT value FROM control WHERE key = ?", (_PAUSED,)).fetchone()
            already = current is not None and current["value"] == "1"
            if paused != already:
                self._set(db, _PAUSED, "1" if paused else "0")
                self._set(db, _PAUSED_AT, repr(self._clock()) if paused else "")
        ring(self.path.parent)
        return self.control()

    def request_scan(self) -> None:
        """Ask a running daemon to rescan its inboxes now (it is woken by `ring`)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT value FROM control WHERE key = ?", (_SCAN_REQUESTED,)
            ).fetchone()
            previous = float(row["value"]) if row else 0.0
            # strictly increasing, so a request is never mistaken for one already served
            self._set(db, _SCAN_REQUESTED, repr(max(self._clock(), previous + 0.001)))
        ring(self.path.parent)

    def set_control(self, key: str, value: str | None) -> None:
        """Write one control entry (None: remove it), then ring a running daemon."""
        with self._transaction() as db:
            if value is None:
                db.execute("DELETE FROM control WHERE key = ?", (key,))
            else:
                self._set(db, key, value)
        ring(self.path.parent)

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO control (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
