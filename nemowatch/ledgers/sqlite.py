"""The ledger on SQLite (WAL), in the state directory: one machine's, the default.

`SqliteStore` is what `ledger.Ledger` writes through: `execute` (rows by name) and
`transaction` (BEGIN IMMEDIATE: one writer at a time). Opening checks the file
(`ledgerfile.connect`), creates the tables and adds the columns an older release lacks.
`lost()` says when the path no longer holds the opened file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from nemowatch import ledgerfile
from nemowatch.errors import LedgerError

T = TypeVar("T")

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
    # the fleet (issue 17, ledgers/postgres.py has them from the start): the node whose job
    # it is, and how many times another node adopted it; one machine writes its own name
    "node": "TEXT",
    "lease_gen": "INTEGER NOT NULL DEFAULT 0",
}


class SqliteStore:
    """The ledger's database file at `path` (created, with its folder, if `create`)."""

    shared = False
    lock_rows = ""  # BEGIN IMMEDIATE already holds the whole file for the writer
    returning = ""  # a read after a write is local; RETURNING needs SQLite 3.35+

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.where = str(path)
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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement, in a transaction of its own (BEGIN IMMEDIATE: errors reported as
        every write's are)."""
        with self.transaction() as db:
            return db.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
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

    def patiently(self, work: Callable[[], T]) -> T:
        return work()  # a local file is there or not: nothing to wait for

    def lost(self) -> str | None:
        """Why `path` no longer holds the opened file ("deleted", ...), or None."""
        return ledgerfile.identity_lost(self.path, self._identity)

    def close(self) -> None:
        self._db.close()
