"""The fleet's part of the ledger: nodes, their heartbeats, and the leases on jobs.

Several daemons ("nodes") share one ledger on PostgreSQL (docs/fleet.md). Each registers
itself and beats (`heartbeat`) every few seconds; that beat is the lease on all its unfinished
jobs. When a node has not beaten for `lease` seconds, any other node may adopt its jobs
(`adopt`: FOR UPDATE SKIP LOCKED, so two adopters never take one job), which bumps each
job's lease generation. Every write of a job checks that the job is still this node's, at
the generation it holds (`fence`): a node that comes back after losing its lease gets
LeaseLost and stops, and publishes nothing.

The times are the database's clock, never a node's, so nodes need not agree on the time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nemowatch.errors import LeaseLost, LedgerError
from nemowatch.jobs import ALLOWED, FINISHED, IllegalTransition, JobRecord, JobState
from nemowatch.ledgers.store import Store, patient

_NOW = "extract(epoch from clock_timestamp())"  # the database's clock, in epoch seconds


@dataclass(frozen=True)
class Node:
    """One daemon of the fleet, as the ledger knows it."""

    name: str
    host: str
    pid: int
    version: str
    engines: tuple[str, ...]
    concurrency: int
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    age: float  # seconds since its last heartbeat, by the database's clock
    jobs: tuple[str, ...] = ()  # its unfinished jobs

    def alive(self, lease: float) -> bool:
        return self.stopped_at is None and self.age < lease

    def as_json(self, lease: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "engines": list(self.engines),
            "concurrency": self.concurrency,
            "heartbeat_age": round(self.age, 1),
            "state": "stopped" if self.stopped_at else "alive" if self.alive(lease) else "lost",
            "jobs": list(self.jobs),
        }


class Leases:
    """Nodes and leases (a part of `ledger.Ledger`). The fence is open on SQLite (one
    machine); the node methods need the fleet's tables (PostgreSQL)."""

    node: str | None
    where: str
    _db: Store
    _held: dict[str, int]
    _clock: Callable[[], float]
    get: Callable[[str], JobRecord]  # JobQueries.get

    def _fence(self, job_id: str) -> tuple[str, tuple[Any, ...]]:
        """The condition that the job is still this daemon's (in a fleet): its node, and the
        lease generation it holds (another node adopting it bumps it); none elsewhere."""
        if not (self._db.shared and self.node is not None):
            return "", ()
        if job_id in self._held:
            return " AND node = ? AND lease_gen = ?", (self.node, self._held[job_id])
        return " AND node = ?", (self.node,)

    def _check_lease(self, job_id: str, row: Mapping[str, Any] | None) -> None:
        """LeaseLost unless the job (its `row`, read now if None) is still this daemon's."""
        if not self._fence(job_id)[0]:
            return
        if row is None:
            row = self._db.execute(
                "SELECT node, lease_gen FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            raise LedgerError(f"no job {job_id} in the ledger {self.where}")
        held = self._held.get(job_id, row["lease_gen"])
        if row["node"] != self.node or row["lease_gen"] != held:
            raise LeaseLost(
                f"job {job_id} was adopted by the node {row['node']} (this node, {self.node},"
                " lost its lease)",
                hint="this node stops working on it; the other node finishes it",
            )

    def fence(self, job_id: str) -> None:
        """LeaseLost if another node adopted the job: checked before anything is published."""
        self._check_lease(job_id, None)

    def _transition_at_once(
        self,
        job_id: str,
        state: JobState,
        assignments: list[str],
        values: list[Any],
        now: float,
        detail: str | None,
    ) -> JobRecord:
        """`Ledger.transition` on PostgreSQL in one statement: the row locked, changed only
        from a state `ALLOWED` to reach `state` and only while the fence holds, the history
        row added, the new row given back; what stood in the way is told from the old row."""
        sources = [item.value for item, targets in ALLOWED.items() if state in targets]
        fence, held = self._fence(job_id)
        row = self._db.write(
            "WITH old AS (SELECT state, node, lease_gen FROM jobs WHERE id = ? FOR UPDATE),"
            f" new AS (UPDATE jobs SET {', '.join(assignments)} WHERE id = ? AND "
            + (f"state IN ({', '.join('?' for _ in sources)})" if sources else "false")
            + f"{fence} RETURNING *),"
            " history AS (INSERT INTO transitions (job_id, from_state, to_state, at, detail)"
            " SELECT new.id, old.state, ?, ?, ? FROM old, new)"
            " SELECT new.*, old.state AS was, old.node AS was_node, old.lease_gen AS was_gen"
            " FROM old LEFT JOIN new ON true",
            (job_id, *values, job_id, *sources, *held, state.value, now, detail),
        ).fetchone()
        if row is None:
            raise LedgerError(f"no job {job_id} in the ledger {self.where}")
        if row["id"] is None:  # not changed: say why
            self._check_lease(job_id, {"node": row["was_node"], "lease_gen": row["was_gen"]})
            raise IllegalTransition(
                f"job {job_id} cannot go from {row['was']} to {state.value}"
                " (a bug in nemowatch: please report it)"
            )
        return JobRecord.from_row(row)

    # -- nodes -------------------------------------------------------------------------

    @patient
    def register(
        self, host: str, pid: int, version: str, engines: list[str], concurrency: int
    ) -> None:
        """Record this node (again, after a restart) and its first heartbeat."""
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO nodes (name, host, pid, version, engines, concurrency, started_at,"
                f" heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, ?, {_NOW}, {_NOW}, NULL)"
                " ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " version = excluded.version, engines = excluded.engines,"
                " concurrency = excluded.concurrency, started_at = excluded.started_at,"
                " heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
                (self.node, host, pid, version, json.dumps(engines), concurrency),
            )

    def heartbeat(self) -> bool:
        """Renew this node's lease on all its unfinished jobs (one write); False when the
        node's row is gone (someone removed it: `register` again)."""
        beat = self._db.execute(
            f"UPDATE nodes SET heartbeat_at = {_NOW}, stopped_at = NULL WHERE name = ?",
            (self.node,),
        )
        return beat.rowcount > 0

    def signed_off(self) -> None:
        """A graceful stop, shown by `status`. Its unfinished jobs are still adopted only
        once its lease runs out (its jobs may still be finishing in the grace period);
        restarted sooner, it resumes them itself."""
        self._db.execute(f"UPDATE nodes SET stopped_at = {_NOW} WHERE name = ?", (self.node,))

    def nodes(self) -> list[Node]:
        """Every node that ever registered, by name."""
        rows = self._db.execute(
            f"SELECT *, {_NOW} - heartbeat_at AS age FROM nodes ORDER BY name"
        ).fetchall()
        finished = ", ".join("?" for _ in FINISHED)
        jobs: dict[str, list[str]] = {}
        for row in self._db.execute(
            f"SELECT id, node FROM jobs WHERE state NOT IN ({finished}) ORDER BY created_at",
            tuple(state.value for state in FINISHED),
        ):
            jobs.setdefault(row["node"], []).append(row["id"])
        return [
            Node(
                name=row["name"],
                host=row["host"],
                pid=row["pid"],
                version=row["version"],
                engines=tuple(json.loads(row["engines"])),
                concurrency=row["concurrency"],
                started_at=row["started_at"],
                heartbeat_at=row["heartbeat_at"],
                stopped_at=row["stopped_at"],
                age=max(0.0, float(row["age"])),
                jobs=tuple(jobs.get(row["name"], ())),
            )
            for row in rows
        ]

    @patient
    def adopt(self, lease: float, limit: int, rules: list[str]) -> list[JobRecord]:
        """Take over at most `limit` jobs of `rules` whose node has not beaten for `lease`
        seconds, oldest first: unfinished ones, and finished ones whose source it had not
        moved yet. Each is now this node's, at a new lease generation. Rows another adopter
        holds are skipped, not waited for."""
        if limit <= 0 or not rules:
            return []
        finished = ", ".join("?" for _ in FINISHED)
        wanted = ", ".join("?" for _ in rules)
        with self._db.transaction() as db:
            rows = db.execute(
                f"SELECT jobs.* FROM jobs JOIN nodes ON nodes.name = jobs.node"
                f" WHERE (jobs.state NOT IN ({finished}) OR (jobs.disposed IS NULL"
                f" AND jobs.claimed IS NOT NULL)) AND jobs.rule IN ({wanted})"
                f" AND jobs.node <> ? AND nodes.heartbeat_at < {_NOW} - ?"
                " ORDER BY jobs.created_at LIMIT ? FOR UPDATE OF jobs SKIP LOCKED",
                (*(state.value for state in FINISHED), *rules, self.node, lease, limit),
            ).fetchall()
            running = {
                row["node"]: row["n"]
                for row in db.execute(
                    "SELECT node, count(*) AS n FROM jobs WHERE in_flight IS NOT NULL GROUP BY node"
                )
            }
            for row in rows:
                crashes, alone = _charged(JobRecord.from_row(row), row, running)
                db.execute(
                    "UPDATE jobs SET node = ?, lease_gen = lease_gen + 1, in_flight = NULL,"
                    " crashes = ?, crashed_alone = ?, stage = NULL, percent = NULL WHERE id = ?",
                    (self.node, crashes, alone, row["id"]),
                )
                db.execute(
                    "INSERT INTO transitions (job_id, from_state, to_state, at, detail)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        row["id"],
                        row["state"],
                        row["state"],
                        self._clock(),
                        f"adopted by {self.node} from {row['node']}",
                    ),
                )
        for row in rows:
            self._held[row["id"]] = row["lease_gen"] + 1
        return [self.get(row["id"]) for row in rows]


def _charged(
    job: JobRecord, row: Mapping[str, Any], running: Mapping[str, int]
) -> tuple[int, bool]:
    """A job adopted while its node was running it (`in_flight`): the node died with it,
    which counts as a crash against it, as `Ledger.count_crash` counts one at a restart (so
    a file that kills every node that runs it is stopped, not passed round the fleet)."""
    if row["in_flight"] is None:
        return job.crashes, job.crashed_alone  # its node was not running it (queued, stopped)
    again = row["in_flight"] == job.checkpoint
    alone = (again and job.crashed_alone) or running.get(row["node"], 0) == 1
    return (job.crashes + 1 if again else 1), alone
