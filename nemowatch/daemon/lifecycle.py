"""The daemon's lifecycle and the composition of its parts (see `nemowatch.daemon`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from nemowatch import liveness
from nemowatch.config import Config, Rule
from nemowatch.daemon.companions import Companion, Companions
from nemowatch.daemon.health import keep_pinging, status_line
from nemowatch.daemon.housekeeping import Housekeeping, Reload, reloaded
from nemowatch.daemon.intake import Intake
from nemowatch.daemon.pauses import Pauses, poll_credits
from nemowatch.daemon.recovery import Recovery, prepare_folders
from nemowatch.daemon.workers import WorkerPool
from nemowatch.engines.base import Engine
from nemowatch.engines.factory import make_engine
from nemowatch.errors import EX_NOINPUT, CreditsExhausted, LeaseLost
from nemowatch.ledger import JobRecord
from nemowatch.ledgers.opening import open_ledger
from nemowatch.notify import Notifier
from nemowatch.pipeline import Pipeline
from nemowatch.steps import WaitForJob
from nemowatch.watch import Watcher

log = structlog.get_logger("nemowatch.daemon")

TICK = 0.25  # seconds between settle checks while some file is settling
STALL = 60.0  # seconds without a scheduler heartbeat before the daemon counts as hung


class Daemon:
    """One running nemowatch: its parts, started, run and stopped in order."""

    def __init__(
        self,
        config: Config,
        *,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
        companions: Sequence[Companion] = (),
    ) -> None:
        self.config = config
        self.engine = engine if engine is not None else make_engine(config)
        self._clock = clock
        self.ledger = open_ledger(config, daemon=True)
        self.pipeline = Pipeline(
            self.engine, self.ledger, state_dir=config.state_dir, max_attempts=config.max_attempts
        )
        self.notifier = notifier if notifier is not None else Notifier.from_environment()
        self._scan_requested = asyncio.Event()
        self.companions = Companions(companions, self.ledger)
        self.pauses = Pauses(
            on_resume=self._scan_requested.set,  # files that arrived meanwhile are taken now
            on_pause=self.companions.paused,
            credits_recheck=config.nemo.credits_check_interval,
        )
        self.intake = Intake(
            self.ledger, config.rules, engine=self.engine.name, pauses=self.pauses, clock=clock
        )
        self.recovery = Recovery(self.ledger, self.intake, dispose=self.pipeline.dispose)
        self.housekeeping = Housekeeping(config, self.ledger, self.pauses)
        self.workers = WorkerPool(
            self._run_job,
            self.pauses,
            inbox_of=self._inbox_of,
            alone=self.pipeline.must_run_alone,
            on_change=self._update_status,
        )
        self.watcher: Watcher | None = None
        self._heartbeat = clock()  # the settle loop's latest turn
        self._candidates = asyncio.Event()  # set when a file is settling
        self._stop = asyncio.Event()
        self._stopping = False
        self._exit_status = 0  # what `run` returns; not 0: stop at once (ledger lost)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules in force (replaced by a reload)."""
        return self.intake.rules

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.housekeeping.request_reload)
        lock: liveness.DaemonLock | None = None
        try:
            lock = liveness.hold(self.config.state_dir)  # `status` sees it; a second is refused
            prepare_folders(self.rules, missing=self.pauses.missing)
            for job_id in self.recovery.run():
                self.workers.enqueue(job_id)
            self.watcher = Watcher(self.rules, self._on_candidate, loop)
            self.watcher.start()
            self.pauses.inboxes_missing(self.watcher.missing())
            self.housekeeping.listen(loop)
            if self.housekeeping.read_control():
                self._scan_requested.set()
            self.workers.start(self.config.concurrency, self._task_ended)
            helpers = [
                asyncio.create_task(self._settle_loop()),
                asyncio.create_task(self._scan_loop()),  # queues the startup scan at once
                asyncio.create_task(self._housekeeping_loop()),
                asyncio.create_task(
                    poll_credits(
                        self.engine.credits,
                        self.pauses,
                        interval=self.config.nemo.credits_check_interval,
                    )
                ),
                asyncio.create_task(
                    keep_pinging(
                        self.notifier,
                        healthy=self.healthy,
                        repair=self.check_watcher,
                        symptoms=self._symptoms,
                    )
                ),
                *self.companions.start(self),
            ]
            for task in helpers:
                task.add_done_callback(self._task_ended)
            log.info(
                "daemon.started",
                inboxes=sorted({str(rule.inbox) for rule in self.rules}),
                rules=[rule.name for rule in self.rules],
                engine=self.engine.name,
                concurrency=self.config.concurrency,
                state_dir=str(self.config.state_dir),
            )
            self.notifier.ready(self.status_line())
            await self._stop.wait()
            await self._shutdown(helpers)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            await self.engine.close()
            self.ledger.close()
            self.notifier.close()
            if lock is not None:
                lock.release()
        return self._exit_status

    def stop(self) -> None:
        """Stop taking new files and begin a graceful stop."""
        if not self._stopping:
            log.info("daemon.stopping", grace_period=self.config.grace_period)
            self.notifier.stopping()
        self._stopping = True
        self.workers.stop_taking()
        self._stop.set()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A worker or helper ended: expected when stopping, a bug otherwise (and unhealthy)."""
        if self._stopping or task.cancelled() or task.exception() is None:
            return  # stopping, or a helper with nothing to do (credits on the local engine)
        error = task.exception()
        log.error(
            "daemon.task_ended",
            task=task.get_coro().__qualname__,  # type: ignore[union-attr]
            error=repr(error),
            hint="the daemon stops sending the systemd watchdog ping, so systemd restarts it",
        )

    async def _shutdown(self, helpers: list[asyncio.Task[None]]) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.housekeeping.stop_listening()
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await self.workers.stop(0.0 if self._exit_status else self.config.grace_period)
        counts = {state.value: count for state, count in self.ledger.counts().items()}
        log.info("daemon.stopped", jobs=counts, queued=self.workers.queued)

    # -- intake: events and scans in, claimed jobs out ---------------------------------

    def _on_candidate(self, path: Path, closed: bool = False) -> None:
        """A path worth a look (from an event or a scan). Runs on the event loop."""
        if not self._stopping and self.intake.offer(path, closed):
            self._candidates.set()

    async def _settle_loop(self) -> None:
        while True:
            self._heartbeat = self._clock()
            if not self.intake.settling:
                # Nothing settling: sleep until a candidate arrives (an idle daemon stays
                # asleep), but beat at least every STALL/4 so the watchdog knows we live.
                self._candidates.clear()
                beat = STALL / 4 if self.notifier.watchdog_interval is not None else None
                with contextlib.suppress(TimeoutError):  # not wait_for: see WorkerPool.freed
                    async with asyncio.timeout(beat):
                        await self._candidates.wait()
                continue
            await self.workers.freed(timeout=TICK)  # a tick, or sooner when a job ends
            now = self._clock()
            self.intake.recheck(now)
            if self.pauses.held:
                continue  # paused: files stay in the inbox, untouched
            # only what can start soon; the rest stay settled in the inbox, free for all (room
            # left by a file another daemon took first is filled at once, not a tick later)
            limit = self.config.concurrency + self.config.prefetch
            while settled := self.intake.settled(now, limit=self.workers.room(limit)):
                # an unmounted share must be noticed before anything is claimed from
                # the empty folder underneath it (one stat per inbox)
                self.check_watcher()
                for path, snap in settled:
                    for job_id in self.intake.take_all(path, snap):
                        self.workers.enqueue(job_id)
                        self.companions.job_claimed(job_id)
                        self._update_status()

    async def _scan_loop(self) -> None:
        """The reconciliation scan: at start, every scan_interval, and on request."""
        while True:
            watcher = self.watcher
            paths = await asyncio.to_thread(watcher.scan) if watcher is not None else []
            for path in paths:
                self._on_candidate(path)
            self._scan_requested.clear()
            self.housekeeping.ring()  # the backstop for every doorbell
            with contextlib.suppress(TimeoutError):  # not wait_for: see WorkerPool.freed
                async with asyncio.timeout(self.config.scan_interval):
                    await self._scan_requested.wait()

    # -- work ------------------------------------------------------------------------

    async def _run_job(self, job_id: str) -> JobRecord | None:
        record = self.ledger.get(job_id)
        rule = self.intake.rule(record.rule)
        if rule is None:
            log.warning("job.rule_missing", job_id=job_id, rule=record.rule)
            return None
        try:
            record = await self.pipeline.run(job_id, rule)
            self.companions.job_ended(record)
            return record
        except (asyncio.CancelledError, CreditsExhausted, WaitForJob, LeaseLost):
            raise
        except Exception:
            # a bug must not take the daemon down; the job stays in the ledger for resume
            log.exception("job.crashed", job_id=job_id)
            return None

    def request_scan(self) -> None:
        """Read the operators' control table and scan the inboxes now (after a retry or a
        resume from the web page), not at the next round."""
        self.housekeeping.ring()
        self._scan_requested.set()

    def _inbox_of(self, job_id: str) -> Path | None:
        rule = self.intake.rule(self.ledger.get(job_id).rule)
        return rule.inbox if rule is not None else None

    # -- housekeeping and reload -------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        """Config changes, operator requests, the watcher's health, the status line."""
        while True:
            reload = await self.housekeeping.next_round()
            if self.housekeeping.ledger_lost():
                self._exit_status = EX_NOINPUT  # and no grace: nothing could be recorded
                self.stop()
                return
            if reload is Reload.SIGNAL:
                self.notifier.reloading()
            if reload is not None:
                self.reload()
            if reload is Reload.SIGNAL:
                self.notifier.ready(self.status_line())
            if self.housekeeping.read_control():
                self._scan_requested.set()
            self.check_watcher()
            self._update_status()

    def reload(self) -> bool:
        """Load the config again; only a valid one replaces the running rules."""
        config = reloaded(self.config)
        if config is None:
            return False
        self.config = config
        self.intake.update_rules(config.rules)
        self.housekeeping.reconfigure(self.config)
        prepare_folders(self.rules, missing=self.pauses.missing)
        if self.watcher is not None:
            self.watcher.update_rules(self.rules)
        self._scan_requested.set()
        log.info("config.reloaded", rules=[rule.name for rule in self.rules])
        return True

    def check_watcher(self) -> None:
        """Let the watcher repair itself; pause the rules of inboxes that went missing."""
        if self.watcher is None:
            return
        self.watcher.check()
        back, unparked = self.pauses.inboxes_missing(self.watcher.missing())
        for job_id in unparked:
            self.workers.requeue(job_id)
        if back:
            self._scan_requested.set()  # what arrived while it was away

    # -- health and status -----------------------------------------------------------

    def healthy(self) -> bool:
        """Whether the watcher threads and the job scheduler are all running."""
        if self.watcher is None or not self.watcher.healthy():
            return False
        if self._clock() - self._heartbeat > STALL:
            return False
        return self.workers.healthy()

    def _symptoms(self) -> dict[str, object]:
        return {
            "watcher": self.watcher is not None and self.watcher.healthy(),
            "seconds_since_heartbeat": round(self._clock() - self._heartbeat, 1),
        }

    def _update_status(self) -> None:
        """Keep systemd's STATUS= line current (only under systemd: it costs a count)."""
        if self.notifier.enabled:
            self.notifier.status(self.status_line())

    def status_line(self) -> str:
        """One line for `systemctl status`: "watching 3 inboxes; 2 running, 14 queued, 1 failed"."""
        return status_line(self.rules, self.workers, self.pauses, self.ledger)
