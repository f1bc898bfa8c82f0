"""Parts that run beside the daemon and hear how its work goes: the web page, the
metrics, the notifications.

A companion is told when a job is claimed, when a job ends (done, failed or skipped) and
when new work is paused, and may run a task of its own for the daemon's life (a web
server). Every call happens on the daemon's event loop and must not block. A companion
that raises is logged (`companion.failed`) and otherwise ignored: it never fails a job,
delays one, or stops the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import structlog

from nemowatch.config import Config
from nemowatch.daemon.intake import Intake
from nemowatch.daemon.pauses import Pauses
from nemowatch.daemon.workers import WorkerPool
from nemowatch.engines.base import Engine
from nemowatch.ledger import JobRecord, Ledger
from nemowatch.pipeline import Pipeline

log = structlog.get_logger("nemowatch.daemon")


class Host(Protocol):
    """What a companion sees of the running daemon (`lifecycle.Daemon`)."""

    @property
    def config(self) -> Config: ...  # the current config (a reload replaces it)
    @property
    def engine(self) -> Engine: ...  # the credits of the nemo engine, on the web page
    @property
    def ledger(self) -> Ledger: ...
    @property
    def pauses(self) -> Pauses: ...
    @property
    def workers(self) -> WorkerPool: ...
    @property
    def intake(self) -> Intake: ...  # the rules in force; claims a fleet's adopted jobs
    @property
    def pipeline(self) -> Pipeline: ...  # disposes of a fleet's adopted finished jobs
    def healthy(self) -> bool: ...
    def status_line(self) -> str: ...
    def request_scan(self) -> None: ...  # look at the inboxes now (after a retry, a resume)


class Companion:
    """A part beside the daemon; each method does nothing unless overridden."""

    async def run(self, daemon: Host) -> None:
        """Runs for the daemon's life and is cancelled when it stops; may return early."""

    def job_claimed(self, record: JobRecord) -> None:
        """A file was claimed: `record` is its new job, queued."""

    def job_ended(self, record: JobRecord) -> None:
        """A job reached an end (done, failed or skipped): `record` as the ledger has it."""

    def paused(self, reason: str, detail: str) -> None:
        """New work is held back for `reason` ("operator", "credits"); `detail` says why."""


class Companions:
    """The daemon's companions, each called so that its failure stays its own."""

    def __init__(self, members: Sequence[Companion], ledger: Ledger) -> None:
        self.members = tuple(members)
        self._ledger = ledger

    def start(self, daemon: Host) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(member.run(daemon)) for member in self.members]

    def job_claimed(self, job_id: str) -> None:
        if not self.members:
            return  # no ledger read for nobody
        record = self._ledger.get(job_id)
        for member in self.members:
            self._call(member, "job_claimed", record)

    def job_ended(self, record: JobRecord) -> None:
        for member in self.members:
            self._call(member, "job_ended", record)

    def paused(self, reason: str, detail: str) -> None:
        for member in self.members:
            self._call(member, "paused", reason, detail)

    @staticmethod
    def _call(member: Companion, event: str, *args: object) -> None:
        try:
            getattr(member, event)(*args)
        except Exception:
            log.exception("companion.failed", companion=type(member).__name__, call=event)
