"""The daemon's lifecycle: startup and recovery, watching, claiming, workers, reload, stop.

Startup: open the ledger, resume unfinished jobs, adopt files left in processing/, remove
partial results from the outboxes, start the watchers, queue a full scan. Running: events
and periodic scans feed the settle tracker; settled files are claimed and queued; N
workers drive jobs through the pipeline. SIGHUP (or an edit to a rule file) reloads the
config, keeping the old rules if the new ones are invalid. SIGTERM/SIGINT: stop taking
files, give running jobs `grace_period` seconds, leave the rest checkpointed for resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from nemowatch import outbox
from nemowatch.config import Config, Rule, load_config
from nemowatch.engines.base import Credits, Engine
from nemowatch.errors import ConfigError, CreditsExhausted, MediaError, NemowatchError
from nemowatch.intake import SettleTracker, Snapshot, Verdict, claim, classify, snapshot
from nemowatch.ledger import JobRecord, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.watch import Watcher

log = structlog.get_logger("nemowatch.daemon")

TICK = 0.25  # seconds between settle checks
RELOAD_CHECK = 1.0  # seconds between looks at the config and rule files
UNMATCHED_MEMORY = 10_000  # unmatched paths remembered so each is logged once


def make_engine(config: Config) -> Engine:
    """The engine the config names."""
    if config.engine == "nemo":
        from nemowatch.engines.nemo import NemoEngine

        return NemoEngine(config.nemo, state_dir=config.state_dir)
    from nemowatch.engines.local import LocalEngine

    # built-in music moods are generated once and reused from here
    return LocalEngine(cache_dir=config.state_dir / "cache")


class Daemon:
    """One running nemowatch."""

    def __init__(
        self,
        config: Config,
        *,
        engine: Engine | None = None,
        clock: Callable[[], float] = time.monotonic,
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
        self._resumed = asyncio.Event()  # set while work may start (no credit pause)
        self._resumed.set()
        self._stop = asyncio.Event()
        self._stopping = False
        self._reload_requested = asyncio.Event()
        self._scan_requested = asyncio.Event()
        self._config_signature = self._signature()
        self.watcher: Watcher | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
        try:
            self._prepare_folders()
            self._recover()
            self.watcher = Watcher(self.rules, self._on_candidate, loop)
            self.watcher.start()
            for _ in range(self.config.concurrency):
                task = asyncio.create_task(self._worker())
                self._workers[task] = None
            helpers = [
                asyncio.create_task(self._settle_loop()),
                asyncio.create_task(self._scan_loop()),
                asyncio.create_task(self._reload_loop()),
                asyncio.create_task(self._credits_loop()),
            ]
            log.info(
                "daemon.started",
                inboxes=sorted({str(rule.inbox) for rule in self.rules}),
                rules=[rule.name for rule in self.rules],
                engine=self.engine.name,
                concurrency=self.config.concurrency,
                state_dir=str(self.config.state_dir),
            )
            await self._stop.wait()
            await self._shutdown(helpers)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            await self.engine.close()
            self.ledger.close()
        return 0

    def stop(self) -> None:
        """Stop taking new files and begin a graceful stop."""
        if not self._stopping:
            log.info("daemon.stopping", grace_period=self.config.grace_period)
        self._stopping = True
        self._stop.set()

    async def _shutdown(self, helpers: list[asyncio.Task[None]]) -> None:
        if self.watcher is not None:
            self.watcher.stop()
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
                if not folder.exists():
                    folder.mkdir(parents=True, exist_ok=True)
                    log.info("folder.created", path=str(folder), rule=rule.name)

    def _recover(self) -> None:
        """Resume what a previous run left: unfinished jobs, orphans, partial results."""
        for record in self.ledger.undisposed():
            rule = self._rule(record.rule)
            if rule is not None:
                self.pipeline.dispose(record, rule)
        known = self.ledger.claimed_paths()
        for rule in self.rules:
            processing = rule.inbox / "processing"
            if not processing.is_dir():
                continue
            for path in sorted(processing.iterdir()):
                if path in known or not path.is_file() or path.name.startswith("."):
                    continue
                self._adopt(path, rule)
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
        for path in outbox.stray_temps({rule.outbox for rule in self.rules}, active):
            path.unlink(missing_ok=True)
            log.info("outbox.partial_removed", path=str(path))

    def _adopt(self, path: Path, rule: Rule) -> None:
        """A file in processing/ with no job: the daemon died between claim and ledger write."""
        job_id, separator, name = path.name.partition("__")
        if not separator:
            job_id, name = new_job_id(), path.name
        record = self.ledger.create(
            job_id=job_id if not self.ledger.find(job_id) else new_job_id(),
            rule=rule.name,
            engine=self.engine.name,
            source=rule.inbox / name,
            claimed=path,
        )
        log.info("job.adopted", job_id=record.id, rule=rule.name, source=str(record.source))

    # -- intake ----------------------------------------------------------------------

    def _on_candidate(self, path: Path, closed: bool = False) -> None:
        """A path worth a look (from an event or a scan). Runs on the event loop."""
        if self._stopping:
            return
        verdict, rule = classify(path, self.rules)
        if verdict is Verdict.IGNORED:
            return
        if verdict is Verdict.NO_RULE or rule is None:
            if path not in self._unmatched and path.is_file():
                if len(self._unmatched) >= UNMATCHED_MEMORY:
                    self._unmatched.clear()
                self._unmatched[path] = None
                log.info("file.no_rule", path=str(path), hint="no rule's match accepts this name")
            return
        current = self._look(path)
        now = self._clock()
        if current is None or self._known(path, current):
            self.tracker.forget(path)
            return
        self.tracker.observe(path, current, now, rule.settle_seconds)
        if closed:
            self.tracker.hint_closed(path, now)

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
            for path in self.tracker.settled(now):
                self._take(path)

    def _take(self, path: Path) -> None:
        """Claim a settled file and queue its job."""
        verdict, rule = classify(path, self.rules)
        current = self._look(path)
        if verdict is not Verdict.TAKE or rule is None or current is None:
            return
        if self._known(path, current):
            return
        job_id = new_job_id()
        try:
            claimed = claim(path, rule.inbox, job_id)
        except NemowatchError as error:
            self._claim_failures[path] = (current.size, current.mtime_ns)
            log.error("intake.claim_failed", path=str(path), error=str(error), hint=error.hint)
            return
        if claimed is None:
            log.info("intake.gone", path=str(path))
            return
        record = self.ledger.create(
            job_id=job_id,
            rule=rule.name,
            engine=self.engine.name,
            source=path,
            claimed=claimed,
            source_size=current.size,
            source_mtime_ns=current.mtime_ns,
            source_inode=current.inode,
        )
        log.info("job.claimed", job_id=record.id, rule=rule.name, source=str(path))
        self._enqueue(record.id)

    async def _scan_loop(self) -> None:
        """The reconciliation scan: at start, every scan_interval, and on request."""
        while True:
            paths = await asyncio.to_thread(self._scan)
            for path in paths:
                self._on_candidate(path)
            self._scan_requested.clear()
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
            self._workers[task] = job_id
            try:
                await self._run_job(job_id)
            except CreditsExhausted as error:
                self._pause_for_credits(error)
                self._queued.discard(job_id)
                self._enqueue(job_id)  # it resumes from its checkpoint with the credits
                continue
            finally:
                self._workers[task] = None
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

    # -- credits -----------------------------------------------------------------------

    def _pause_for_credits(self, error: CreditsExhausted) -> None:
        if self._resumed.is_set():
            self._resumed.clear()
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
                if credits.available > 0 and not self._resumed.is_set():
                    log.info("credits.available", available=credits.available)
                    self._resumed.set()
                    self._scan_requested.set()
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

    async def _reload_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload_requested.wait(), timeout=RELOAD_CHECK)
            signature = self._signature()
            if self._reload_requested.is_set() or signature != self._config_signature:
                self._reload_requested.clear()
                self._config_signature = signature
                self.reload()

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
        log.info("config.reloaded", rules=[rule.name for rule in self.rules])
        return True


def _top_up_hint(credits: Credits) -> str:
    if credits.anonymous and credits.user_id:
        return (
            "register to get more credits and keep this work: "
            f"https://nemovideo.com/register?bind={credits.user_id}"
        )
    return "top up your NemoVideo credits"
