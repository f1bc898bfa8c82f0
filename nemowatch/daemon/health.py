"""How the daemon is doing, for systemd: the watchdog (WATCHDOG=1 at half of systemd's
WatchdogSec, only while the daemon is healthy: its watcher threads and scheduler running,
so a hung one is restarted) and the STATUS= line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from nemowatch.config import Rule
from nemowatch.daemon.pauses import Pauses
from nemowatch.daemon.workers import WorkerPool
from nemowatch.ledger import JobState, Ledger
from nemowatch.notify import Notifier

log = structlog.get_logger("nemowatch.daemon")


async def keep_pinging(
    notifier: Notifier,
    *,
    healthy: Callable[[], bool],
    repair: Callable[[], None],
    symptoms: Callable[[], dict[str, object]],
) -> None:
    """Ping while `healthy()`, after `repair()` (a dead watcher thread is recreated before
    judging); say once, with `symptoms()`, when it stops being healthy. Returns at once
    when systemd asked for no watchdog."""
    interval = notifier.watchdog_interval
    if interval is None:
        return
    complained = False
    while True:
        repair()
        if healthy():
            notifier.watchdog()
            complained = False
        elif not complained:
            complained = True
            log.error(
                "daemon.unhealthy",
                **symptoms(),
                hint="no watchdog ping is sent, so systemd restarts nemowatch",
            )
        await asyncio.sleep(interval)


def status_line(rules: Sequence[Rule], workers: WorkerPool, pauses: Pauses, ledger: Ledger) -> str:
    """ "watching 3 inboxes; 2 running, 14 queued, 1 failed", and the pauses in force."""
    inboxes = len({rule.inbox for rule in rules})
    queued = workers.queued + pauses.parked + workers.waiting
    # a failed job sent back by `retry` lives on as its new job: count that one only
    failed = ledger.counts().get(JobState.FAILED, 0)
    failed -= len(ledger.jobs(JobState.FAILED, limit=None, retried=True))
    line = (
        f"watching {inboxes} inbox{'es' if inboxes != 1 else ''}; "
        f"{workers.running} running, {queued} queued, {failed} failed"
    )
    return line + pauses.describe()
