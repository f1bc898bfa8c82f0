"""What the page shows, read from the running daemon: the inboxes, the jobs, the credits.

The ledger is read on the event loop (its connection belongs to that thread; each read
is one small query); the inboxes are listed on a thread (a network share may be slow).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemowatch import operator, views
from nemowatch.config import Rule
from nemowatch.daemon.companions import Host
from nemowatch.engines.base import Credits
from nemowatch.errors import NemowatchError
from nemowatch.intake import Verdict, classify
from nemowatch.ledger import FINISHED, RUNNING, JobRecord, JobState
from nemowatch.ledgers.fleet import Node
from nemowatch.liveness import Liveness
from nemowatch.rulepause import paused_rules

RECENT = 20  # finished jobs on the page
CREDITS_FRESH = 60.0  # seconds a credit balance is shown before it is asked again


@dataclass(frozen=True)
class Inbox:
    """One rule's inbox, as the page shows it."""

    rule: str
    inbox: Path
    engine: str
    paused: str | None  # why no new file is taken now ("paused", "inbox missing"), or None
    rule_paused: bool  # paused one by one (resumed one by one)
    waiting: int  # files in the inbox this rule takes, not claimed yet

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "inbox": str(self.inbox),
            "engine": self.engine,
            "paused": self.paused is not None,
            "paused_why": self.paused,
            "rule_paused": self.rule_paused,
            "waiting": self.waiting,
        }


@dataclass(frozen=True)
class Overview:
    """Everything on the page at one moment."""

    inboxes: list[Inbox]
    running: list[JobRecord]
    queued: list[JobRecord]
    recent: list[JobRecord]
    paused: bool  # all new work, by an operator
    credits: Credits | None
    status_line: str
    hints: dict[str, str]  # a failed job's hint (what to do), by job id
    nodes: list[Node] = field(default_factory=list)  # a fleet's daemons; [] on one machine
    lease: float = 120.0

    def as_json(self) -> dict[str, Any]:
        credits = self.credits
        return {
            "status": self.status_line,
            "paused": self.paused,
            "inboxes": [inbox.as_json() for inbox in self.inboxes],
            "running": views.jobs_json(self.running),
            "queued": views.jobs_json(self.queued),
            "recent": [
                {**views.job_json(record), "hint": self.hints.get(record.id)}
                for record in self.recent
            ],
            "credits": None
            if credits is None
            else {"available": credits.available, "frozen": credits.frozen, "total": credits.total},
            "nodes": [node.as_json(self.lease) for node in self.nodes],
        }


def waiting_files(rules: Sequence[Rule]) -> Counter[str]:
    """How many files at the top of the inboxes each rule takes (decided as the daemon
    decides: `intake.classify`). Blocking: run it on a thread."""
    counts: Counter[str] = Counter()
    for inbox in sorted({rule.inbox for rule in rules}):
        try:
            with os.scandir(inbox) as listing:
                paths = [Path(entry.path) for entry in listing if not entry.name.startswith(".")]
        except OSError:
            continue  # missing (shown as such) or unreadable: nothing to count
        for path in paths:
            verdict, rule = classify(path, rules)
            if verdict in (Verdict.TAKE, Verdict.REVISION) and rule is not None:
                counts[rule.name] += 1
    return counts


class Reader:
    """Reads the overview from the daemon; keeps the credit balance a minute."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._credits: tuple[float, Credits | None] | None = None

    async def overview(self) -> Overview:
        host = self.host
        rules = host.config.rules
        counts = await asyncio.to_thread(waiting_files, rules)
        ledger = host.ledger
        by_rule = paused_rules(ledger)
        paused_all = ledger.control().paused
        pauses = host.pauses
        inboxes = []
        for rule in rules:
            why = None
            if rule.inbox in pauses.missing:
                why = "inbox missing"
            elif rule.name in by_rule:
                why = "rule paused"
            elif pauses.held:
                why = ", ".join(reason.value for reason in sorted(pauses.reasons)) + " pause"
            inboxes.append(
                Inbox(
                    rule=rule.name,
                    inbox=rule.inbox,
                    engine=host.config.engine,
                    paused=why,
                    rule_paused=rule.name in by_rule,
                    waiting=counts.get(rule.name, 0),
                )
            )
        recent = ledger.jobs(FINISHED, limit=RECENT)
        return Overview(
            inboxes=inboxes,
            running=ledger.jobs(RUNNING, limit=None),
            queued=ledger.jobs(JobState.CLAIMED, limit=None),
            recent=recent,
            hints={record.id: hint for record in recent if (hint := self.hint(record))},
            paused=paused_all,
            credits=await self.credits(),
            status_line=host.status_line(),
            nodes=ledger.nodes() if ledger.is_shared else [],
            lease=host.config.fleet.lease,
        )

    def hint(self, record: JobRecord) -> str | None:
        """What to do about a failed job, as the pipeline said when it failed."""
        if record.state is not JobState.FAILED:
            return None
        history = self.host.ledger.history(record.id)
        ends = [detail for _, to, _, detail in history if to == JobState.FAILED.value]
        return ends[-1] if ends else None

    async def credits(self) -> Credits | None:
        """The nemo engine's balance (None for an engine that costs nothing, or when it
        cannot be had now), asked at most once a minute."""
        now = time.monotonic()
        if self._credits is not None and now - self._credits[0] < CREDITS_FRESH:
            return self._credits[1]
        try:
            credits = await self.host.engine.credits()
        except NemowatchError:
            credits = None  # out of credits or unreachable: the status line says so
        self._credits = (now, credits)
        return credits

    async def status(self, limit: int) -> dict[str, Any]:
        """`status --json`, from inside the daemon."""
        status = views.read_status(self.host.ledger, limit, self.host.config.fleet.lease)
        unmatched = await asyncio.to_thread(operator.unmatched_files, self.host.config.rules)
        return views.status_json(status, Liveness(running=True, pid=os.getpid()), unmatched)
