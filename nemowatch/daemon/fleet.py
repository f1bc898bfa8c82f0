"""This daemon as a node of a fleet: several daemons on one PostgreSQL ledger (docs/fleet.md).

A companion (`companions.Companion`) of the daemon, composed by `run` when the config names
a `ledger:` URL. It registers the node, beats every few seconds (`beat_interval`: the beat is
the lease on all the node's jobs, `ledgers.fleet`), reads the operators' control table at
each beat (a `pause`, `resume`, `retry` or `scan` made on another machine rings no doorbell
here), and when it has room (`concurrency` + `prefetch`,
as intake takes files) adopts the jobs of nodes whose lease ran out:
- a claimed job whose file the dead node had not yet moved is claimed here (`finish_claim`);
- an unfinished job is queued, and resumes from its checkpoint as after a restart: a cloud
  render by its recorded ids, a local render again from the claimed source;
- a finished job whose source had not been moved yet is disposed of here.
Only the jobs of rules this node takes (`nodes:`) are adopted. A failed beat or adoption is
logged and tried again at the next beat; it never stops the daemon.
"""

from __future__ import annotations

import asyncio
import os
import socket

import structlog

from nemowatch import __version__
from nemowatch.config import FleetSettings
from nemowatch.daemon.companions import Companion, Host
from nemowatch.errors import NemowatchError
from nemowatch.ledger import JobRecord, JobState
from nemowatch.rulepause import paused_rules

log = structlog.get_logger("nemowatch.fleet")

BEAT = 5.0  # seconds between heartbeats at most (a quarter of the lease when shorter)


def beat_interval(lease: float) -> float:
    """Seconds between heartbeats: often enough that a lease survives three missed beats,
    and that a pause or retry made on another machine is heard within a few seconds."""
    return max(0.5, min(BEAT, lease / 4))


class Fleet(Companion):
    """Registers, beats and adopts (see the module's docstring)."""

    def __init__(self, settings: FleetSettings) -> None:
        self._settings = settings
        self.adopted = 0  # jobs taken over from lost nodes, since start

    async def run(self, daemon: Host) -> None:
        ledger = daemon.ledger
        if not ledger.is_shared:
            return
        lease = self._settings.lease

        def register() -> None:
            ledger.register(
                socket.gethostname(),
                os.getpid(),
                __version__,
                [daemon.engine.name],
                daemon.config.concurrency,
            )

        register()
        log.info("fleet.joined", node=ledger.node, database=ledger.where, lease=lease)
        asked = None
        try:
            while True:
                try:
                    if not ledger.heartbeat():  # its row was removed: not adoptable, unseen
                        log.warning("fleet.node_missing", node=ledger.node, hint="registered again")
                        register()
                    self._adopt(daemon)
                    # operators' requests made on another machine ring no bell here
                    now_asked = (ledger.control(), paused_rules(ledger))
                    if asked is not None and now_asked != asked:
                        daemon.request_scan()
                    asked = now_asked
                except NemowatchError as error:
                    log.error("fleet.beat_failed", error=str(error), hint=error.hint)
                await asyncio.sleep(beat_interval(lease))
        finally:
            try:
                ledger.signed_off()  # shown as stopped; its jobs wait for its lease to run out
            except NemowatchError as error:
                log.warning("fleet.sign_off_failed", error=str(error))

    def _adopt(self, daemon: Host) -> None:
        """Take over what lost nodes left, as much as there is room for."""
        if daemon.pauses.held:
            return
        config = daemon.config
        room = daemon.workers.room(config.concurrency + config.prefetch)
        node = daemon.ledger.node
        here = [rule.name for rule in config.rules if not rule.nodes or node in rule.nodes]
        for record in daemon.ledger.adopt(self._settings.lease, room, here):
            self.adopted += 1
            log.warning(
                "job.adopted",
                job_id=record.id,
                rule=record.rule,
                state=record.state.value,
                source=str(record.source),
                hint="its node stopped beating (killed, cut off or stopped): this node "
                "finishes it from its checkpoint",
            )
            try:
                self._take_over(daemon, record)
            except (NemowatchError, OSError) as error:
                # adopted, so this node's: resumed at its next start, like a crash's jobs
                log.error(
                    "job.adoption_failed",
                    job_id=record.id,
                    error=str(error),
                    hint="it stays this node's job and resumes when this node starts again",
                )

    @staticmethod
    def _take_over(daemon: Host, record: JobRecord) -> None:
        """Go on with an adopted job from where its node left it."""
        rule = daemon.intake.rule(record.rule)
        if rule is None:
            return  # the rule is gone from this node's config: waits, like a restart
        if record.finished:
            daemon.pipeline.dispose(record, rule)
            return
        if record.state is JobState.CLAIMED:
            daemon.intake.finish_claim(record)  # the rename it may not have made
            if not daemon.ledger.exists(record.id):
                return
        daemon.workers.enqueue(record.id)
