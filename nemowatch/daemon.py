"""The daemon's lifecycle: startup and recovery, watching, claiming, workers, reload, stop.

Startup: open the ledger, finish or undo claims a kill interrupted, resume unfinished jobs,
remove our own partial results from the outboxes, start the watchers, queue a full scan.
A claim is written to the ledger before the file is renamed into processing/, so a file
there that the ledger does not know belongs to another nemowatch sharing the inbox: it is
left alone (and logged), which is what lets two daemons share folders. Running: events
and periodic scans feed the settle tracker; settled files are claimed and queued; N
workers drive jobs through the pipeline. SIGHUP (or an edit to a rule file) reloads the
config, keeping the old rules if the new ones are invalid. SIGTERM/SIGINT: stop taking
files, give running jobs `grace_period` seconds, leave the rest checkpointed for resume.

Under systemd (`Type=notify`) it says how it is: READY=1 once the config is valid, the ledger
open, the watches in place and the first scan queued; STATUS= kept current; RELOADING=1 on
SIGHUP; STOPPING=1 on SIGTERM; WATCHDOG=1 only while the watcher threads and the scheduler
are healthy, so a hung daemon is restarted.

New work can be held back for three reasons, each its own pause: an operator's
`nemowatch pause` (read from the ledger), no credits left (nemo), or a rule's inbox that
disappeared (an unmounted share) — that one holds only the rules on that inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from nemowatch import liveness, outbox
from nemowatch.config import Config, Rule, load_config
from nemowatch.engines.base import Credits, Engine
from nemowatch.engines.factory import make_engine
from nemowatch.errors import ConfigError, CreditsExhausted, MediaError, NemowatchError
from nemowatch.files import claim, claim_path, snapshot
from nemowatch.intake import NOT_TAKEN, SettleTracker, Snapshot, Verdict, classify, shown
from nemowatch.ledger import JobRecord, JobState, Ledger, bell_folder, new_job_id
from nemowatch.notify import Notifier
from nemowatch.pipeline import Pipeline
from nemowatch.watch import Watcher

log = structlog.get_logger("nemowatch.daemon")

TICK = 0.25  # seconds between settle checks while some file is settling
HOUSEKEEPING = 2.0  # seconds between looks at the config files, the ledger's control
# flags (pause, rescan) and the watcher's health -- only where the doorbell below cannot
# be watched; otherwise housekeeping runs when rung, and at each reconciliation scan
STALL = 60.0  # seconds without a scheduler heartbeat before the daemon counts as hung
UNMATCHED_MEMORY = 10_000  # unmatched paths remembered so each is logged once


class Daemon:
    """One running nemowatch."""

    def __init__(
        self,
        config: Config,
        *,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.rules: tuple[Rule, ...] = config.rules
        self.engine = engine if engine is not None else make_engine(config)
        self._clock = clock
        self.ledger = Ledger.in_state_dir(config.state_dir)
        self.pipeline = Pipeline(
            self.engine,
            self.ledger,
            state_dir=config.state_dir,
            max_attempts=config.max_attempts,
        )
        self.tracker = SettleTracker()
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._unmatched: dict[Path, None] = {}
        self._claim_failures: dict[Path, tuple[int, int]] = {}
        self._unreadable: dict[Path, None] = {}
        self._workers: dict[asyncio.Task[None], str | None] = {}
        self.notifier = notifier if notifier is not None else Notifier.from_environment()
        self._pauses: set[str] = set()  # why new work may not start: "operator", "credits"
        self._resumed = asyncio.Event()  # set while no pause holds
        self._resumed.set()
        self._parked: dict[str, Path] = {}  # job id -> its rule's missing inbox
        self._missing: frozenset[Path] = frozenset()
        self._scan_seen = 0.0  # the latest rescan request from the ledger that was served
        self._heartbeat = clock()  # the settle loop's latest turn
        self._candidates = asyncio.Event()  # set when the settle tracker has work
        self._stop = asyncio.Event()
        self._stopping = False
        self._reload_requested = asyncio.Event()
        self._scan_requested = asyncio.Event()
        self._config_signature = self._signature()
        self._housekeeping_now = asyncio.Event()
        self._bells: BaseObserver | None = None
        self.watcher: Watcher | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._request_reload)
        lock: liveness.DaemonLock | None = None
        try:
            lock = liveness.hold(self.config.state_dir)  # `status` sees it; a second is refused
            self._prepare_folders()
            self._recover()
            self.watcher = Watcher(self.rules, self._on_candidate, loop)
            self.watcher.start()
            self._missing = self.watcher.missing()
            self._bells = self._listen_for_bells(loop)
            self._read_control()
            for _ in range(self.config.concurrency):
                task = asyncio.create_task(self._worker())
                task.add_done_callback(self._task_ended)
                self._workers[task] = None
            helpers = [
                asyncio.create_task(self._settle_loop()),
                asyncio.create_task(self._scan_loop()),  # queues the startup scan at once
                asyncio.create_task(self._housekeeping_loop()),
                asyncio.create_task(self._credits_loop()),
                asyncio.create_task(self._watchdog_loop()),
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
        return 0

    def stop(self) -> None:
        """Stop taking new files and begin a graceful stop."""
        if not self._stopping:
            log.info("daemon.stopping", grace_period=self.config.grace_period)
            self.notifier.stopping()
        self._stopping = True
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
        self._stop_bells()
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        busy = [task for task, job in self._workers.items() if job is not None]
        for task, job in self._workers.items():
            if job is None:
                task.cancel()
        if busy:
            _done, pending = await asyncio.wait(busy, timeout=self.config.grace_period)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        counts = {state.value: count for state, count in self.ledger.counts().items()}
        log.info("daemon.stopped", jobs=counts, queued=self.queue.qsize())

    # -- startup ---------------------------------------------------------------------

    def _prepare_folders(self) -> None:
        for rule in self.rules:
            for folder in (rule.inbox, rule.outbox):
                if folder in self._missing:
                    continue  # a share that went away: creating it would fill the mount point
                if not folder.exists():
                    folder.mkdir(parents=True, exist_ok=True)
                    log.info("folder.created", path=str(folder), rule=rule.name)

    def _recover(self) -> None:
        """Resume what a previous run left: unfinished jobs, orphans, partial results."""
        for record in self.ledger.undisposed():
            rule = self._rule(record.rule)
            if rule is not None:
                self.pipeline.dispose(record, rule)
        for record in self.ledger.unfinished():
            if record.state is JobState.CLAIMED:
                self._finish_claim(record)
        known = self.ledger.claimed_paths()
        for rule in self.rules:
            processing = rule.inbox / "processing"
            if not processing.is_dir():
                continue
            for path in sorted(processing.iterdir()):
                if path in known or not path.is_file() or path.name.startswith("."):
                    continue
                log.warning(
                    "processing.not_ours",
                    path=str(path),
                    rule=rule.name,
                    hint="this daemon's ledger has no job for it: another nemowatch sharing "
                    "the inbox is working on it, or this state directory was reset. If no "
                    "other nemowatch uses the inbox, move it back into the inbox to process it",
                )
        unfinished = self.ledger.unfinished()
        for record in unfinished:
            if self._rule(record.rule) is None:
                log.warning(
                    "job.rule_missing",
                    job_id=record.id,
                    rule=record.rule,
                    source=str(record.claimed),
                    hint="the job's rule is not in the config; it resumes once the rule is back",
                )
                continue
            log.info("job.resuming", job_id=record.id, rule=record.rule, state=record.state.value)
            self._enqueue(record.id)
        active = {record.id for record in unfinished}
        outboxes = {rule.outbox for rule in self.rules}
        # only our own: another nemowatch sharing the outbox may be writing the others
        for path in outbox.stray_temps(outboxes, active, ours=self.ledger.exists):
            path.unlink(missing_ok=True)
            log.info("outbox.partial_removed", path=str(path))

    def _finish_claim(self, record: JobRecord) -> None:
        """A job recorded whose rename into processing/ may not have happened (a kill
        between the two): finish the claim if the file is still there, else forget the job."""
        if record.claimed is None or os.path.lexists(record.claimed):
            return
        rule = self._rule(record.rule)
        if rule is None:
            return  # left as it is until the rule is back
        current = self._look(record.source)
        claimed = None
        recorded = (record.source_size, record.source_mtime_ns, record.source_inode)
        if current is not None and (current.size, current.mtime_ns, current.inode) == recorded:
            try:
                claimed = claim(record.source, rule.inbox, record.id)
            except NemowatchError as error:
                log.error(
                    "intake.claim_failed",
                    path=str(record.source),
                    error=str(error),
                    hint=error.hint,
                )
        if claimed is None:
            self.ledger.discard(record.id)  # gone, changed, or taken by someone else
            log.info("job.claim_undone", job_id=record.id, source=str(record.source))
        else:
            log.info("job.claimed", job_id=record.id, rule=rule.name, source=str(record.source))

    # -- intake ----------------------------------------------------------------------

    def _on_candidate(self, path: Path, closed: bool = False) -> None:
        """A path worth a look (from an event or a scan). Runs on the event loop."""
        if self._stopping:
            return
        verdict, rule = classify(path, self.rules)
        if verdict is Verdict.IGNORED:
            return
        if rule is not None and rule.inbox in self._missing:
            return  # its inbox is gone: the rule is paused until it is back
        if verdict is not Verdict.TAKE or rule is None:
            if path not in self._unmatched and path.is_file():
                if len(self._unmatched) >= UNMATCHED_MEMORY:
                    self._unmatched.clear()
                self._unmatched[path] = None
                event, hint = NOT_TAKEN[verdict]
                log.info(event, path=shown(path), hint=hint)
            return
        current = self._look(path)
        now = self._clock()
        if current is None or self._known(path, current):
            self.tracker.forget(path)
            return
        self.tracker.observe(path, current, now, rule.settle_seconds)
        if closed:
            self.tracker.hint_closed(path, now)
        self._candidates.set()

    def _look(self, path: Path) -> Snapshot | None:
        """The file's snapshot; None when it is gone or cannot be examined (logged once)."""
        try:
            return snapshot(path)
        except MediaError as error:
            if path not in self._unreadable:
                self._unreadable[path] = None
                log.error("intake.unreadable", path=str(path), error=str(error), hint=error.hint)
            return None

    def _known(self, path: Path, current: Snapshot) -> bool:
        """Already taken (a source kept in place) or already refused (claim failed)."""
        if self._claim_failures.get(path) == (current.size, current.mtime_ns):
            return True
        return self.ledger.knows_source(path, current.size, current.mtime_ns, current.inode)

    async def _settle_loop(self) -> None:
        while True:
            self._heartbeat = self._clock()
            if not len(self.tracker):
                # Nothing settling: sleep until a candidate arrives (an idle daemon stays
                # asleep), but beat at least every STALL/4 so the watchdog knows we live.
                self._candidates.clear()
                beat = STALL / 4 if self.notifier.watchdog_interval is not None else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._candidates.wait(), timeout=beat)
                continue
            await asyncio.sleep(TICK)
            now = self._clock()
            for path in self.tracker.due(now):
                verdict, rule = classify(path, self.rules)
                if verdict is not Verdict.TAKE or rule is None:
                    self.tracker.forget(path)
                    continue
                self.tracker.observe(path, self._look(path), now, rule.settle_seconds)
            if not self._resumed.is_set():
                continue  # out of credits: files stay in the inbox, untouched
            settled = self.tracker.settled_snapshots(now)
            if settled:
                # an unmounted share must be noticed before anything is claimed from
                # the empty folder underneath it (one stat per inbox)
                self._check_watcher()
            for path, snap in settled:
                self._take(path, snap)

    def _take(self, path: Path, settled: Snapshot | None = None) -> None:
        """Claim a settled file (unless it changed since it settled) and queue its job."""
        verdict, rule = classify(path, self.rules)
        if rule is not None and rule.inbox in self._missing:
            return
        current = self._look(path)
        if verdict is not Verdict.TAKE or rule is None or current is None:
            return
        if self._known(path, current):
            return
        job_id = new_job_id()
        # The ledger first, the rename second: then a file in processing/ that this ledger
        # does not know is never ours (another nemowatch sharing the inbox is working on
        # it), and a kill between the two is finished or undone by `_recover`.
        record = self.ledger.create(
            job_id=job_id,
            rule=rule.name,
            engine=self.engine.name,
            source=path,
            claimed=claim_path(rule.inbox, job_id, path.name),
            source_size=current.size,
            source_mtime_ns=current.mtime_ns,
            source_inode=current.inode,
        )
        try:
            claimed = claim(path, rule.inbox, job_id, expected=settled)
        except NemowatchError as error:
            self.ledger.discard(job_id)
            self._claim_failures[path] = (current.size, current.mtime_ns)
            log.error("intake.claim_failed", path=str(path), error=str(error), hint=error.hint)
            return
        if claimed is None:
            self.ledger.discard(job_id)
            log.info("intake.gone", path=str(path))
            return
        log.info("job.claimed", job_id=record.id, rule=rule.name, source=str(path))
        self._enqueue(record.id)
        self._update_status()

    async def _scan_loop(self) -> None:
        """The reconciliation scan: at start, every scan_interval, and on request."""
        while True:
            paths = await asyncio.to_thread(self._scan)
            for path in paths:
                self._on_candidate(path)
            self._scan_requested.clear()
            self._housekeeping_now.set()  # the backstop for every doorbell
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._scan_requested.wait(), timeout=self.config.scan_interval
                )

    def _scan(self) -> list[Path]:
        return self.watcher.scan() if self.watcher is not None else []

    # -- work ------------------------------------------------------------------------

    def _enqueue(self, job_id: str) -> None:
        if job_id not in self._queued:
            self._queued.add(job_id)
            self.queue.put_nowait(job_id)

    async def _worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._stopping:
            await self._resumed.wait()
            job_id = await self.queue.get()
            if not self._resumed.is_set():  # paused while this worker waited for a job
                self.queue.put_nowait(job_id)
                continue
            inbox = self._missing_inbox_of(job_id)
            if inbox is not None:
                self._parked[job_id] = inbox  # resumes when the inbox is back
                continue
            self._workers[task] = job_id
            self._update_status()
            try:
                await self._run_job(job_id)
            except CreditsExhausted as error:
                self._pause_for_credits(error)
                self._queued.discard(job_id)
                self._enqueue(job_id)  # it resumes from its checkpoint with the credits
                continue
            finally:
                self._workers[task] = None
                self._update_status()
            self._queued.discard(job_id)

    async def _run_job(self, job_id: str) -> JobRecord | None:
        record = self.ledger.get(job_id)
        rule = self._rule(record.rule)
        if rule is None:
            log.warning("job.rule_missing", job_id=job_id, rule=record.rule)
            return None
        try:
            return await self.pipeline.run(job_id, rule)
        except (asyncio.CancelledError, CreditsExhausted):
            raise
        except Exception:
            # a bug must not take the daemon down; the job stays in the ledger for resume
            log.exception("job.crashed", job_id=job_id)
            return None

    def _missing_inbox_of(self, job_id: str) -> Path | None:
        if not self._missing:
            return None
        rule = self._rule(self.ledger.get(job_id).rule)
        return rule.inbox if rule is not None and rule.inbox in self._missing else None

    # -- pauses ----------------------------------------------------------------------

    def _pause(self, reason: str) -> bool:
        """Hold new work back for `reason`. True if this reason was not already holding it."""
        if reason in self._pauses:
            return False
        self._pauses.add(reason)
        self._resumed.clear()
        return True

    def _unpause(self, reason: str) -> bool:
        if reason not in self._pauses:
            return False
        self._pauses.discard(reason)
        if not self._pauses:
            self._resumed.set()
            self._scan_requested.set()  # files that arrived meanwhile are taken now
        return True

    def _read_control(self) -> None:
        """Apply what operators asked through the ledger: pause/resume, rescan."""
        control = self.ledger.control()
        if control.paused and self._pause("operator"):
            log.info(
                "daemon.paused",
                by="operator",
                hint="watching goes on, no new job starts; `nemowatch resume` to continue",
            )
        elif not control.paused and self._unpause("operator"):
            log.info("daemon.resumed", by="operator")
        if control.scan_requested > self._scan_seen:
            self._scan_seen = control.scan_requested
            self._scan_requested.set()

    # -- credits -----------------------------------------------------------------------

    def _pause_for_credits(self, error: CreditsExhausted) -> None:
        if self._pause("credits"):
            log.warning(
                "credits.exhausted",
                error=str(error),
                hint=error.hint,
                action="new work is paused; every file stays where it is; "
                "nemowatch resumes by itself when credits are back",
                recheck_seconds=self.config.nemo.credits_check_interval,
            )

    async def _credits_loop(self) -> None:
        """Check the balance before work starts, and again periodically while paused."""
        while True:
            try:
                credits = await self.engine.credits()
            except CreditsExhausted as error:
                self._pause_for_credits(error)
            except NemowatchError as error:
                log.warning("credits.unknown", error=str(error))
            else:
                if credits is None:
                    return  # this engine costs nothing
                if credits.available > 0 and "credits" in self._pauses:
                    log.info("credits.available", available=credits.available)
                    self._unpause("credits")
                elif credits.available <= 0:
                    self._pause_for_credits(
                        CreditsExhausted("no credits left", hint=_top_up_hint(credits))
                    )
            await asyncio.sleep(self.config.nemo.credits_check_interval)

    def _rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    # -- reload ----------------------------------------------------------------------

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        files: list[Path] = []
        if self.config.source is not None:
            files.append(self.config.source)
        files.extend(self.config.rule_files)
        if self.config.rules_dir is not None and self.config.rules_dir.is_dir():
            files.extend(self.config.rules_dir.glob("*.y*ml"))
        signature = []
        for path in sorted(set(files)):
            try:
                stat = path.stat()
            except OSError:
                signature.append((str(path), -1, -1))
            else:
                signature.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(signature)

    async def _housekeeping_loop(self) -> None:
        """Config changes, operator requests, the watcher's health, the status line.

        Runs when rung (SIGHUP, a config or rule file written, an operator command, each
        scan); polls every HOUSEKEEPING seconds only where the doorbells cannot be watched.
        So an idle daemon sleeps between its reconciliation scans.
        """
        while True:
            interval = HOUSEKEEPING if self._bells is None else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._housekeeping_now.wait(), timeout=interval)
            self._housekeeping_now.clear()
            signature = self._signature()
            if self._reload_requested.is_set() or signature != self._config_signature:
                reloading = self._reload_requested.is_set()
                self._reload_requested.clear()
                self._config_signature = signature
                if reloading:
                    self.notifier.reloading()
                self.reload()
                if reloading:
                    self.notifier.ready(self.status_line())
            self._read_control()
            self._check_watcher()
            self._update_status()

    def _request_reload(self) -> None:
        self._reload_requested.set()
        self._housekeeping_now.set()

    # -- doorbells: what wakes housekeeping ------------------------------------------

    def _bell_paths(self) -> tuple[set[Path], set[Path], set[Path]]:
        """(folders to watch, files that ring, folders where any YAML file rings)."""
        files = set(self.config.rule_files)
        if self.config.source is not None:
            files.add(self.config.source)
        yaml_folders = {self.config.rules_dir} if self.config.rules_dir is not None else set()
        folders = (
            {path.parent for path in files} | yaml_folders | {bell_folder(self.config.state_dir)}
        )
        return folders, files, yaml_folders

    def _listen_for_bells(self, loop: asyncio.AbstractEventLoop) -> BaseObserver | None:
        """Watch the config files, the rule files and the operators' doorbell (inotify).

        None when that is not possible (no inotify instance or watch left): housekeeping
        then polls every HOUSEKEEPING seconds instead.
        """
        folders, files, yaml_folders = self._bell_paths()
        bell = bell_folder(self.config.state_dir)

        def rings(path: Path) -> bool:
            return (
                path in files
                or path.parent == bell
                or (path.parent in yaml_folders and path.suffix in (".yaml", ".yml"))
            )

        def ring() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopping
                loop.call_soon_threadsafe(self._housekeeping_now.set)

        handler = _Doorbell(rings, ring)
        try:
            bell.mkdir(parents=True, exist_ok=True)
            observer = Observer()
            for folder in sorted(folders):
                if folder.is_dir():
                    observer.schedule(handler, str(folder), recursive=False)
            observer.start()
        except OSError as error:
            log.warning(
                "daemon.doorbell_unavailable",
                error=str(error),
                fallback=f"config files and operator commands are looked at every "
                f"{HOUSEKEEPING:g} s instead",
            )
            return None
        return observer

    def _stop_bells(self) -> None:
        bells, self._bells = self._bells, None
        if bells is not None:
            bells.stop()
            bells.join()

    def _update_status(self) -> None:
        """Keep systemd's STATUS= line current (only under systemd: it costs a count)."""
        if self.notifier.enabled:
            self.notifier.status(self.status_line())

    def _check_watcher(self) -> None:
        """Let the watcher repair itself; pause the rules of inboxes that went missing."""
        if self.watcher is None:
            return
        self.watcher.check()
        missing = self.watcher.missing()
        if missing == self._missing:
            return
        back = self._missing - missing
        self._missing = missing
        for inbox in back:
            for job_id in [job for job, where in self._parked.items() if where == inbox]:
                del self._parked[job_id]
                self._queued.discard(job_id)
                self._enqueue(job_id)
        if back:
            self._scan_requested.set()  # what arrived while it was away

    # -- health and status -----------------------------------------------------------

    def healthy(self) -> bool:
        """Whether the watcher threads and the job scheduler are all running."""
        if self.watcher is None or not self.watcher.healthy():
            return False
        if self._clock() - self._heartbeat > STALL:
            return False
        return all(not task.done() for task in self._workers)

    async def _watchdog_loop(self) -> None:
        """WATCHDOG=1 at half of systemd's WatchdogSec, only while healthy."""
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        complained = False
        while True:
            self._check_watcher()  # a dead observer thread is recreated before judging
            if self.healthy():
                self.notifier.watchdog()
                complained = False
            elif not complained:
                complained = True
                log.error(
                    "daemon.unhealthy",
                    watcher=self.watcher is not None and self.watcher.healthy(),
                    seconds_since_heartbeat=round(self._clock() - self._heartbeat, 1),
                    hint="no watchdog ping is sent, so systemd restarts nemowatch",
                )
            await asyncio.sleep(interval)

    def status_line(self) -> str:
        """One line for `systemctl status`: "watching 3 inboxes; 2 running, 14 queued, 1 failed"."""
        inboxes = len({rule.inbox for rule in self.rules})
        running = sum(1 for job in self._workers.values() if job is not None)
        queued = self.queue.qsize() + len(self._parked)
        failed = self.ledger.counts().get(JobState.FAILED, 0)
        line = (
            f"watching {inboxes} inbox{'es' if inboxes != 1 else ''}; "
            f"{running} running, {queued} queued, {failed} failed"
        )
        if "operator" in self._pauses:
            line += "; paused (nemowatch resume to continue)"
        if "credits" in self._pauses:
            line += "; paused: out of NemoVideo credits"
        if self._missing:
            line += f"; {len(self._missing)} inbox{'es' if len(self._missing) != 1 else ''} missing"
        return line

    def reload(self) -> bool:
        """Load the config again; only a valid one replaces the running rules."""
        if self.config.source is None:
            return False
        try:
            config = load_config(self.config.source)
        except ConfigError as error:
            log.error(
                "config.invalid",
                problems=[str(problem) for problem in error.problems],
                hint="the previous rules stay in force until the file is fixed",
            )
            return False
        for setting in ("state_dir", "engine", "concurrency"):
            if getattr(config, setting) != getattr(self.config, setting):
                log.warning("config.restart_needed", setting=setting)
        self.config = self.config.model_copy(
            update={
                "rules": config.rules,
                "rule_files": config.rule_files,
                "rules_dir": config.rules_dir,
                "scan_interval": config.scan_interval,
                "grace_period": config.grace_period,
            }
        )
        self.rules = config.rules
        self._config_signature = self._signature()
        self._prepare_folders()
        if self.watcher is not None:
            self.watcher.update_rules(self.rules)
        self._unmatched.clear()
        self._scan_requested.set()
        if self._bells is not None:  # the rule files may have moved
            self._stop_bells()
            self._bells = self._listen_for_bells(asyncio.get_running_loop())
        log.info("config.reloaded", rules=[rule.name for rule in self.rules])
        return True


class _Doorbell(FileSystemEventHandler):
    """Rings (on watchdog's thread: only hands over) when a path that matters changes."""

    def __init__(self, rings: Callable[[Path], bool], ring: Callable[[], None]) -> None:
        super().__init__()
        self._rings = rings
        self._ring = ring

    def dispatch(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(path and self._rings(Path(os.fsdecode(path))) for path in paths):
            self._ring()


def _top_up_hint(credits: Credits) -> str:
    if credits.anonymous and credits.user_id:
        return (
            "register to get more credits and keep this work: "
            f"https://nemovideo.com/register?bind={credits.user_id}"
        )
    return "top up your NemoVideo credits"
