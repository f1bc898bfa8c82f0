"""Ledgers for tests: as earlier releases wrote them (migration tests), jobs walked to a
state the way the pipeline walks them (the ledger refuses a jump), and damaged ones."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nemowatch.ledger import ALLOWED, JobRecord, JobState, Ledger
from nemowatch.ledgers.postgres import PgStore
from tests.pg import PgServer

# The way forward, one allowed step at a time.
_FORWARD = (
    JobState.CLAIMED,
    JobState.UPLOADING,
    JobState.EDITING,
    JobState.EXPORTING,
    JobState.DOWNLOADING,
    JobState.VERIFYING,
    JobState.DONE,
)


def walk_to(ledger: Ledger, job_id: str, state: JobState, **fields: Any) -> JobRecord:
    """Move a job forward to `state` by allowed steps, setting `fields` with the last one
    (FAILED and SKIPPED are reached from where the job is, as the pipeline does)."""
    record = ledger.get(job_id)
    if state in ALLOWED[record.state]:
        return ledger.transition(job_id, state, **fields)
    for step in _FORWARD[_FORWARD.index(record.state) + 1 :]:
        if step is state:
            return ledger.transition(job_id, state, **fields)
        ledger.transition(job_id, step)
    raise ValueError(f"{state.value} is not forward of {record.state.value}")


# The jobs table of the first release: no edit checkpoint, no retried_at, no control table.
FIRST_RELEASE_JOBS = (
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, rule TEXT NOT NULL, engine TEXT NOT NULL,"
    " source TEXT NOT NULL, source_size INTEGER, source_mtime_ns INTEGER,"
    " source_inode INTEGER, claimed TEXT, fingerprint TEXT, size INTEGER,"
    " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, retryable INTEGER,"
    " session TEXT, media TEXT, edits_done INTEGER NOT NULL DEFAULT 0, draft TEXT,"
    " render TEXT, output TEXT, error TEXT, warnings TEXT, disposed TEXT, timings TEXT,"
    " created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL)"
)


def garble(path: Path, table: str) -> None:
    """Write garbage over the root page of `table` in the closed ledger at `path`: what a
    torn write or a bad disk leaves ("database disk image is malformed")."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
    db.close()
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(bytes((index * 37 + 11) % 256 for index in range(page_size)))


# The backends the ledger's own tests run against: one suite, both stores (issue 17).
BACKENDS = ("sqlite", "postgresql")


def backend_ledger(
    request: pytest.FixtureRequest, state_dir: Path, *, node: str | None = None
) -> tuple[Ledger, Callable[[], Ledger]]:
    """A new empty ledger of the backend `request.param` names, and how to open it again
    (another connection to the same store, as a restarted daemon or a command would)."""
    if request.param == "sqlite":
        return Ledger.in_state_dir(state_dir, node=node), lambda: Ledger.in_state_dir(
            state_dir, node=node
        )
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.database()

    def reopen() -> Ledger:
        return Ledger.shared(PgStore(url), state_dir, node=node)

    return reopen(), reopen
