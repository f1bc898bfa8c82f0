"""What `status` and `jobs` show, as data: one owner for the JSON of `status --json`,
`jobs --json` and the web page's `/api/` (nemowatch/web), so the three never drift apart.

Reading is split from building: `read_status` reads the ledger (on the thread that owns
it), `unmatched_files` lists the inboxes (slow on a network share: the web page does it on
a thread), and `status_json` / `job_json` only arrange what was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nemowatch.config import Config
from nemowatch.intake import shown
from nemowatch.ledger import FINISHED, RUNNING, Control, JobRecord, JobState, Ledger, ledger_path
from nemowatch.ledgerfile import ledger_expected
from nemowatch.ledgers.fleet import Node
from nemowatch.ledgers.opening import open_ledger
from nemowatch.liveness import Liveness
from nemowatch.rulepause import paused_rules

if TYPE_CHECKING:  # not at run time: operator brings PyAV (40 ms) into every command
    from nemowatch.operator import Unmatched

NOT_PAUSED = Control(paused=False, paused_at=None, scan_requested=0.0)


@dataclass(frozen=True)
class Status:
    """The ledger's side of `status`: counts by state and the latest jobs."""

    counts: dict[JobState, int] = field(default_factory=dict)
    # a failed job sent back by `retry` lives on as its new job: counted once, as that one
    retried: int = 0
    recent: list[JobRecord] = field(default_factory=list)
    control: Control = NOT_PAUSED
    paused_rules: dict[str, float] = field(default_factory=dict)  # name -> since (epoch s)
    nodes: list[Node] = field(default_factory=list)  # a fleet's daemons; [] on one machine
    lease: float = 120.0  # seconds without a heartbeat before a node counts as lost

    @property
    def summary(self) -> dict[str, int]:
        """queued, running, done, failed (not retried), skipped."""
        counts = self.counts
        return {
            "queued": counts.get(JobState.CLAIMED, 0),
            "running": sum(counts.get(state, 0) for state in RUNNING),
            "done": counts.get(JobState.DONE, 0),
            "failed": counts.get(JobState.FAILED, 0) - self.retried,
            "skipped": counts.get(JobState.SKIPPED, 0),
        }


def has_ledger(config: Config) -> bool:
    """Whether the state directory holds a ledger. False for a state directory made (by
    `init`) but never used; a missing state directory is an error (LedgerError), since
    the config more likely names the wrong one, and so is a ledger lost (LedgerLost)."""
    if config.ledger is not None or ledger_path(config.state_dir).is_file():
        return True  # a fleet's database: opening it says what is wrong
    if config.state_dir.is_dir() and not ledger_expected(config.state_dir):
        return False
    open_ledger(config, existing=True).close()  # raises, naming it
    return True


def read_status(ledger: Ledger, limit: int, lease: float = 120.0) -> Status:
    return Status(
        counts=ledger.counts(),
        retried=len(ledger.jobs(JobState.FAILED, limit=None, retried=True)),
        recent=ledger.jobs(limit=limit),
        control=ledger.control(),
        paused_rules=paused_rules(ledger),
        nodes=ledger.nodes() if ledger.is_shared else [],
        lease=lease,
    )


def status_json(status: Status, daemon: Liveness, unmatched: list[Unmatched]) -> dict[str, Any]:
    """The payload of `status --json` and `GET /api/status`."""
    control = status.control
    return {
        "daemon": {"running": daemon.running, "pid": daemon.pid},
        **status.summary,
        "retried": status.retried,
        "paused": control.paused,
        "paused_since": iso(control.paused_at) if control.paused_at else None,
        "states": {state.value: count for state, count in status.counts.items()},
        "unmatched": [
            {"path": shown(item.path), "reason": item.verdict.value} for item in unmatched
        ],
        "recent": [job_json(record) for record in status.recent],
        # a fleet's nodes (docs/fleet.md): each with its health and its unfinished jobs
        "nodes": [node.as_json(status.lease) for node in status.nodes],
    }


def node_lines(status: Status) -> list[str]:
    """`status`'s lines for a fleet's nodes: "node render-1 (box1, pid 42): alive, 2 jobs"."""
    lines = []
    for node in status.nodes:
        shown = node.as_json(status.lease)
        state = shown["state"]
        if state != "alive":
            state += f", last heartbeat {round(node.age)} s ago"
        jobs = len(node.jobs)
        lines.append(
            f"node {node.name} ({node.host}, pid {node.pid}): {state}, "
            f"{jobs} unfinished job{'s' if jobs != 1 else ''}"
        )
    return lines


def jobs_json(records: list[JobRecord]) -> list[dict[str, Any]]:
    """The payload of `jobs --json` and `GET /api/jobs`."""
    return [job_json(record) for record in records]


def job_json(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "rule": record.rule,
        "state": record.state.value,
        "finished": record.state in FINISHED,
        "source": str(record.source),
        "output": str(record.output) if record.output else None,
        # every output by name ("" for a rule's one output), as published so far
        "outputs": {name: path for name, path in record.published.items()},
        "error": record.error,
        "retryable": record.retryable,
        "attempts": record.attempts,
        "warnings": record.warnings,
        "timings": record.timings,
        "created_at": iso(record.created_at),
        "retried_at": iso(record.retried_at) if record.retried_at is not None else None,
        "stage": record.stage,  # what a running job is doing ("rendering"), else None
        "percent": record.percent,  # how far that stage is, 0-100, when known
        # a revision: {"of": the first job, "version": 2, ...}; a batch's job: its folder
        "revision": record.revision.as_json() if record.revision else None,
        "batch": str(record.batch.folder) if record.batch else None,
        "node": record.node,  # the daemon that works on it (in a fleet, one of many)
    }


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat()
