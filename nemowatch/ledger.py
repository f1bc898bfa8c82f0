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

import json
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
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
from nemowatch.ledgers.control import Control, ControlTable, bell_folder, ring
from nemowatch.ledgers.fleet import Leases
from nemowatch.ledgers.sqlite import SqliteStore
from nemowatch.ledgers.store import Executor, Store, patient

# defined elsewhere, imported from here too
__all__ = [
    "ALLOWED",
    "FINISHED",
    "RUNNING",
    "Batch",
    "Control",
    "IllegalTransition",
    "JobRecord",
    "JobState",
    "LedgerError",
    "bell_folder",
    "ledger_path",
    "ring",
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


def new_job_id() -> str:
    """A short unique id, safe in file names."""
    return uuid.uuid4().hex[:12]


class JobQueries:
    """The ledger's read-only questions about jobs: one SELECT each, outside any transaction.

    `Ledger` opens the database and adds every write; `status`, `jobs`, recovery and intake
    ask these.
    """

    path: Path
    where: str
    node: str | None
    _db: Store

    def get(self, job_id: str) -> JobRecord:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no job {job_id} in the ledger {self.where}")
        return JobRecord.from_row(row)

    def exists(self, job_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None

    def find(self, job_id_prefix: str) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE id LIKE ? ORDER BY created_at", (job_id_prefix + "%",)
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def _mine(self) -> tuple[str, tuple[str, ...]]:
        """The condition (and its value) for this node's jobs; none on one machine."""
        if self._db.shared and self.node is not None:
            return " AND node = ?", (self.node,)
        return "", ()

    def mine(self, job_id: str) -> bool:
        """Whether the job is in the ledger and this node's (on one machine: `exists`)."""
        mine, node = self._mine()
        row = self._db.execute(f"SELECT 1 FROM jobs WHERE id = ?{mine}", (job_id, *node))
        return row.fetchone() is not None

    def unfinished(self) -> list[JobRecord]:
        """Jobs a previous run left mid-way, oldest first (this node's, in a fleet)."""
        placeholders = ", ".join("?" for _ in FINISHED)
        mine, node = self._mine()
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE state NOT IN ({placeholders}){mine} ORDER BY created_at",
            (*(state.value for state in FINISHED), *node),
        ).fetchall()
        return [JobRecord.from_row(row) for row in rows]

    def undisposed(self) -> list[JobRecord]:
        """Finished jobs whose source has not yet been archived, kept, deleted, quarantined
        or given back."""
        placeholders = ", ".join("?" for _ in FINISHED)
        mine, node = self._mine()
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE state IN ({placeholders}) AND disposed IS NULL"
            f" AND claimed IS NOT NULL{mine} ORDER BY created_at",
            (*(state.value for state in FINISHED), *node),
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
        """The unfinished jobs of `rule` made from the same bytes, oldest first; in a fleet,
        this node's (a job waits for them to end, which only its own node can tell it)."""
        mine, node = self._mine()
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE fingerprint = ? AND rule = ? AND state NOT IN"
            f" ({', '.join('?' for _ in FINISHED)}){mine} ORDER BY created_at, id",
            (fingerprint, rule, *(state.value for state in FINISHED), *node),
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
        rows = self._db.execute(
            "SELECT batch FROM jobs WHERE json_extract(batch, '$.folder') = ?"
            " AND retried_at IS NULL",
            (str(folder),),
        )
        return any(json.loads(row["batch"]).get("identity") == list(identity) for row in rows)

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
        if limit is not None:
            values.append(limit)
        rows = self._db.execute(
            f"SELECT * FROM jobs{where} ORDER BY created_at DESC, rowid DESC"
            + (" LIMIT ?" if limit is not None else ""),
            values,
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


class Ledger(JobQueries, ControlTable, Leases):
    """The job store. Every method is one transaction; the reads are `JobQueries`.

    On SQLite (`Ledger(path)`, one machine) or PostgreSQL (`Ledger.shared`, a fleet: see
    `ledgers`). Shared, it is one node's view: recovery's questions (`unfinished`,
    `undisposed`, `count_crash`, `mine`) are about this node's jobs, and a write to a job
    another node adopted raises LeaseLost (`fence`).
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        create: bool = True,
        node: str | None = None,
    ) -> None:
        """Open the SQLite ledger at `path`, creating it (and its folder) unless `create` is
        False; LedgerDamaged when `PRAGMA quick_check` finds it damaged (`ledgerfile`)."""
        store = SqliteStore(path, create=create)
        self._open(store, path.parent, clock=clock, node=node)
        self.path = path
        self._lost = store.lost

    def _open(
        self, store: Store, state_dir: Path, *, clock: Callable[[], float], node: str | None
    ) -> None:
        self._db = store
        self.where = store.where
        self.path = ledger_path(state_dir)
        self.state_dir = state_dir
        self.node = node
        self._clock = clock
        self._lost = _never_lost
        self._held: dict[str, int] = {}  # job id -> the lease generation this node holds

    @classmethod
    def shared(
        cls,
        store: Store,
        state_dir: Path,
        *,
        node: str | None,
        clock: Callable[[], float] = time.time,
    ) -> Ledger:
        """The ledger in a database several daemons share (`ledgers.open_ledger`), seen by
        `node`; `state_dir` is this node's own (the doorbell, the pid file)."""
        ledger = cls.__new__(cls)
        ledger._open(store, state_dir, clock=clock, node=node)
        return ledger

    @property
    def is_shared(self) -> bool:
        """Whether other daemons write this ledger too (a fleet on PostgreSQL)."""
        return self._db.shared

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
        """Why the SQLite file is no longer at its path ("deleted", ...), or None while it
        is (always None on PostgreSQL): writes to a lost ledger go to a file nobody sees."""
        return self._lost()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _transaction(self) -> AbstractContextManager[Executor]:
        return self._db.transaction()

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

    @patient
    def create_all(self, new: Sequence[NewJob]) -> list[JobRecord]:
        """Several new jobs in one write (a batch's: all of them, or none)."""
        now = self._clock()
        with self._transaction() as db:
            for job in new:
                db.execute(
                    "INSERT INTO jobs (id, rule, engine, source, source_size, source_mtime_ns,"
                    " source_inode, claimed, state, created_at, updated_at, sidecars, batch,"
                    " revision, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        self.node,
                    ),
                )
                db.execute(
                    "INSERT INTO transitions (job_id, from_state, to_state, at)"
                    " VALUES (?, ?, ?, ?)",
                    (job.job_id, JobState.DETECTED.value, job.state.value, now),
                )
        self._held.update((job.job_id, 0) for job in new)
        return [self.get(job.job_id) for job in new]

    @patient
    def transition(
        self, /, job_id: str, state: JobState, *, detail: str | None = None, **fields: Any
    ) -> JobRecord:
        """Move a job to `state`, setting `fields` in the same write, and record the change."""
        now = self._clock()
        assignments, values = self._assignments(fields)
        assignments += ["state = ?", "updated_at = ?"]
        values += [state.value, now]
        if state in FINISHED:
            assignments += ["finished_at = ?", "stage = NULL", "percent = NULL"]
            values.append(now)
        if self._db.shared:  # one round trip, not five (bench/fleet.py)
            return self._transition_at_once(job_id, state, assignments, values, now, detail)
        with self._transaction() as db:
            row = db.execute(
                f"SELECT state, node, lease_gen FROM jobs WHERE id = ?{self._db.lock_rows}",
                (job_id,),
            ).fetchone()
            if row is None:
                raise LedgerError(f"no job {job_id} in the ledger {self.where}")
            self._check_lease(job_id, row)
            current = JobState(row["state"])
            if state not in ALLOWED.get(current, frozenset()):
                raise IllegalTransition(
                    f"job {job_id} cannot go from {current.value} to {state.value}"
                    " (a bug in nemowatch: please report it)"
                )
            after = db.execute(
                f"UPDATE jobs SET {', '.join(assignments)} WHERE id = ?{self._db.returning}",
                (*values, job_id),
            ).fetchone()
            db.execute(
                "INSERT INTO transitions (job_id, from_state, to_state, at, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (job_id, row["state"], state.value, now, detail),
            )
        return JobRecord.from_row(after) if after else self.get(job_id)

    @patient
    def update(self, /, job_id: str, **fields: Any) -> JobRecord:
        """Checkpoint `fields` without changing the state."""
        assignments, values = self._assignments(fields)
        assignments.append("updated_at = ?")
        values.append(self._clock())
        fence, held = self._fence(job_id)
        written = self._db.write(
            f"UPDATE jobs SET {', '.join(assignments)} WHERE id = ?{fence}{self._db.returning}",
            (*values, job_id, *held),
        )
        if fence and not written.rowcount:
            self._check_lease(job_id, None)
        after = written.fetchone() if self._db.returning else None
        return JobRecord.from_row(after) if after else self.get(job_id)

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

    @patient
    def progress(self, job_id: str, stage: str | None, percent: float | None) -> None:
        """Record what a running job is doing (no transition, no history: written often)."""
        fence, held = self._fence(job_id)
        changed = self._db.write(
            f"UPDATE jobs SET stage = ?, percent = ?, progress_at = ? WHERE id = ?{fence}",
            (stage, None if percent is None else round(percent, 1), self._clock(), job_id, *held),
        ).rowcount
        if fence and not changed:
            self._check_lease(job_id, None)  # adopted elsewhere: this daemon stops the job

    @patient
    def discard(self, job_id: str) -> None:
        """Forget a job recorded for a claim that did not happen (the file was gone or
        changed): it never started, so there is nothing to keep. Started jobs are kept."""
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM jobs WHERE id = ? AND state = ?", (job_id, JobState.CLAIMED.value)
            ).rowcount
            if deleted:
                db.execute("DELETE FROM transitions WHERE job_id = ?", (job_id,))

    @patient
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
                raise LedgerError(f"no job {job_id} in the ledger {self.where}")
            if row["state"] != JobState.FAILED.value or row["retried_at"] is not None:
                what = "already retried" if row["retried_at"] is not None else row["state"]
                raise LedgerError(f"job {job_id} is {what}; only a failed job can be retried")
            db.execute(
                "UPDATE jobs SET retried_at = ?, updated_at = ? WHERE id = ?",
                (now, now, job_id),
            )
        return self.get(job_id)

    @patient
    def count_crash(self) -> list[JobRecord]:
        """The jobs a crash left running (marked `in_flight`), each charged with it: one
        more crash in a row, or the first of a new row if its run got past the checkpoint
        it began at; `crashed_alone` if it was the only one. Marks cleared; one write."""
        mine, node = self._mine()
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT * FROM jobs WHERE in_flight IS NOT NULL{mine}", node
            ).fetchall()
            for row in rows:
                job = JobRecord.from_row(row)
                again = row["in_flight"] == job.checkpoint  # crashed where it did last time
                alone = (again and job.crashed_alone) or len(rows) == 1
                db.execute(
                    "UPDATE jobs SET crashes = ?, crashed_alone = ?, in_flight = NULL WHERE id = ?",
                    (job.crashes + 1 if again else 1, alone, job.id),
                )
        return [self.get(row["id"]) for row in rows]


def _never_lost() -> str | None:
    return None  # a database server's ledger cannot be deleted under the daemon's feet
