"""One job through an Engine, checkpointed in the ledger before and after every step.

    claimed -> uploading -> editing -> exporting -> downloading -> verifying -> done
                                      (or failed / skipped)

A job resumes from the state the ledger holds: a render already submitted is polled
again, never re-submitted blindly; an instruction already sent is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import structlog

from nemowatch import crashes, errors, handover, progress, stalled, steps
from nemowatch.config import BatchMode, Rule
from nemowatch.disposal import Disposal
from nemowatch.engines.base import Engine, Job
from nemowatch.errors import (
    CreditsExhausted,
    EngineError,
    LeaseLost,
    MediaError,
    NemowatchError,
    SessionLost,
    SidecarError,
)
from nemowatch.ledger import JobRecord, JobState, Ledger
from nemowatch.orders import job_order
from nemowatch.retry import Sleep

log = structlog.get_logger("nemowatch.pipeline")

MAX_LOST_SESSIONS = 2  # new sessions a job may open when the engine forgets one
# the states in the order a job passes them (a step going back is not timed)
NO_BATCH_TIMELINES = (
    "no timelines for editors: the files of a `batch: each` folder get none yet (the folder"
    " moves as one when its last job ends, so there is no final place to link)"
)
_ORDER = (*steps.STEPS, JobState.SKIPPED, JobState.DONE, JobState.FAILED, JobState.RETURNED)
# TEST HOOK, for the crash tests only (tests/e2e/test_restarts.py): a process started with
# this variable naming a file (its name as dropped) dies as in a real crash (SIGABRT) when
# that file's render starts. Nothing else reads it.
TEST_CRASH_ON = "NEMOWATCH_TEST_CRASH_ON"
# TEST HOOK, for the crash tests of several outputs only (tests/e2e/test_outputs.py): a
# process started with this variable naming a file (as dropped) is killed (SIGKILL) right
# after one of that file's outputs is published, before the ledger records it.
TEST_CRASH_PUBLISHED = "NEMOWATCH_TEST_CRASH_PUBLISHED"
# TEST HOOK, for the crash test of timelines only (tests/e2e/test_timelines.py): a process
# started with this variable set to "<file as dropped>:<n>" is killed (SIGKILL) once n of
# that file's timelines are recorded (0: its video published and its source archived,
# before the first timeline is written).
TEST_CRASH_TIMELINES = "NEMOWATCH_TEST_CRASH_TIMELINES"


class Pipeline:
    """Drives jobs through one engine. Stateless between jobs; the ledger holds the state."""

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        *,
        state_dir: Path,
        max_attempts: int = 5,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = datetime.now,
        dispose_sources: bool = True,
        observer: progress.Listener | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.state_dir = state_dir
        self.max_attempts = max_attempts  # crashes a job may be running for (see `run`)
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self.disposal = Disposal(ledger, now=now, dispose_sources=dispose_sources)
        self.disposal.before_recorded = self._hand_over
        self.observer = observer  # told each job's progress as well (`process` draws it)
        self._batch_locks: dict[str, asyncio.Lock] = {}  # see `_batch_turn`
        self._crash_on = os.environ.get(TEST_CRASH_ON) or None  # the test hook above
        self._crash_published = os.environ.get(TEST_CRASH_PUBLISHED) or None  # and this one
        self._crash_timelines = os.environ.get(TEST_CRASH_TIMELINES) or None  # and the third

    def job_for(self, record: JobRecord, rule: Rule) -> Job:
        """What the engine is given for the job (see `nemowatch.orders`)."""
        return job_order(
            record, rule, engine=self.engine.name, shares_sessions=self.engine.shares_sessions,
            work_dir=self.state_dir / "work" / record.id,
        )  # fmt: skip

    def must_run_alone(self, job_id: str) -> bool:
        """Whether a job is suspected of crashing the daemon, and must run with no other
        job beside it to tell (crash isolation, see `nemowatch.crashes`)."""
        record = self.ledger.get(job_id)
        found = crashes.verdict(record.crashes, record.crashed_alone, self.max_attempts)
        return found is crashes.Verdict.ISOLATE

    async def run(self, job_id: str, rule: Rule) -> JobRecord:
        """Take a job from its current state to done, failed or skipped.

        Cancellation (daemon stopping) leaves the ledger at the last checkpoint, and the
        next run goes on from there: a stop costs the job nothing. The job is marked
        `in_flight` (with the checkpoint it began at) while it runs, so that a start after
        a crash knows it was running and whether it got further; one that was running during
        `max_attempts` crashes in a row, alone in one of them, fails here (see
        `nemowatch.crashes`). Nothing is retried here: the engine retried what the
        wire needed, and a failure that trying again may help is recorded as such
        (`retryable`), for `nemowatch retry`.
        """
        record = self.ledger.get(job_id)
        started = self._clock()
        with structlog.contextvars.bound_contextvars(
            job_id=record.id, rule=record.rule, source=str(record.source)
        ):
            record = self.ledger.update(
                job_id, attempts=record.attempts + 1, in_flight=record.checkpoint
            )
            try:
                found = crashes.verdict(record.crashes, record.crashed_alone, self.max_attempts)
                if found is crashes.Verdict.CRASHES_DAEMON:
                    # a file that keeps killing the daemon must not be tried forever
                    raise crashes.failure(record.crashes)
                listener = progress.JobProgress(
                    self.ledger, job_id, observer=self.observer, clock=self._clock
                )
                with progress.reporting(listener):
                    async with self._batch_turn(record):
                        record = await self._drive_with_sessions(record, rule)
            except CreditsExhausted:
                # not the job's fault: it waits at its checkpoint until credits return, and
                # this run is not counted in its attempts
                current = self.ledger.update(job_id, attempts=max(0, record.attempts - 1))
                log.warning("job.waiting_for_credits", state=current.state.value)
                raise
            except steps.WaitForJob as waiting:
                # not a run of its own: the job goes on when the one it waits for ends
                self.ledger.update(job_id, attempts=max(0, record.attempts - 1))
                log.info("job.waiting", for_job=waiting.job_id, reason="same bytes in progress")
                raise
            except asyncio.CancelledError:
                log.info("job.interrupted", state=self.ledger.get(job_id).state.value)
                raise
            except LeaseLost as lost:
                # another node of the fleet adopted it (this one's heartbeat stopped): it
                # finishes the job; this one publishes nothing and lets go (docs/fleet.md)
                log.warning("job.lease_lost", error=str(lost), hint=lost.hint)
                raise
            except NemowatchError as error:
                record = await self._end_in_error(self.ledger.get(job_id), rule, error)
            except OSError as error:
                record = self._fail(
                    self.ledger.get(job_id),
                    rule,
                    EngineError(f"file system error: {error}", retryable=True),
                )
            finally:
                # the run ended and the daemon lives: whatever comes next, not a crash
                with contextlib.suppress(LeaseLost):  # no longer ours to mark
                    self.ledger.update(job_id, in_flight=None)
            total = round(self._clock() - started, 3)
            if record.state is JobState.DONE:
                log.info(
                    "job.done",
                    output=str(record.output),
                    source_seconds=(record.media or {}).get("duration"),
                    output_seconds=(record.draft or {}).get("d", 0) / 1000,
                    seconds=total,
                    timings=record.timings,
                    warnings=record.warnings,
                )
            elif record.state is JobState.SKIPPED:
                log.info("job.skipped", reason=record.error, seconds=total)
            return record

    @contextlib.asynccontextmanager
    async def _batch_turn(self, record: JobRecord) -> AsyncIterator[None]:
        """The jobs of one batch take turns when they share the engine's session (one
        conversation: one job's instructions, render and download at a time)."""
        if record.batch is None or not self.engine.shares_sessions:
            yield
            return
        lock = self._batch_locks.setdefault(record.batch.id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked():
                self._batch_locks.pop(record.batch.id, None)

    async def _drive_with_sessions(self, record: JobRecord, rule: Rule) -> JobRecord:
        """`_drive`, starting over in a new session when the engine loses the old one."""
        lost = 0
        while True:
            try:
                return await self._drive(record, rule)
            except SessionLost as error:
                lost += 1
                if lost > MAX_LOST_SESSIONS:
                    raise EngineError(
                        f"the engine lost the session {lost} times: {error}", retryable=True
                    ) from error
                current = self.ledger.get(record.id)
                log.warning("session.lost", state=current.state.value, error=str(error))
                # the instructions lived in the lost session: they are sent again in the new
                # one (and charged again); a render already submitted does not depend on it
                record = self.ledger.transition(
                    record.id,
                    JobState.CLAIMED,
                    session=None,
                    media=None,
                    edits_done=0,
                    edit_sent=None,
                    edit_token=None,
                    draft=None,
                    render=None,
                    detail=f"session lost: {error}",
                )

    async def _drive(self, record: JobRecord, rule: Rule) -> JobRecord:
        """The job through `STEPS`, one step a state, until it is done or skipped."""
        run = steps.Run(
            engine=self.engine,
            ledger=self.ledger,
            rule=rule,
            job=self.job_for(record, rule),
            began_in=record.state,
            sleep=self._sleep,
            clock=self._clock,
            now=self._now,
        )
        timings: dict[str, float] = dict(record.timings)
        while (step := steps.STEPS.get(record.state)) is not None:
            if record.state is JobState.EXPORTING and record.source.name == self._crash_on:
                _crash_for_test()
            if step.stage is not None:
                progress.report(step.stage)
            started = self._clock()
            advance = await step.run(run, record)
            if run.published_temp is not None and record.source.name == self._crash_published:
                _kill_for_test()  # the TEST HOOK: one output published, the ledger not told
            fields = dict(advance.fields)
            # a step taken once for each of several outputs is timed over all of them
            again = bool(record.published) and step.name in ("export", "download", "verify")
            if _ORDER.index(advance.state) > _ORDER.index(record.state) or "published" in fields:
                spent = self._clock() - started + (timings.get(step.name, 0.0) if again else 0.0)
                timings[step.name] = round(spent, 3)
                fields["timings"] = timings
            record = self.ledger.transition(
                record.id, advance.state, detail=advance.detail, **fields
            )
            if run.published_temp is not None:
                # only now: until the ledger has the output, this second name is how a
                # restarted daemon recognises the published output as its own
                run.published_temp.unlink(missing_ok=True)
                run.published_temp = None
            if record.state is JobState.DONE:
                await self._published(run, record)
        return self.dispose(record, rule)

    async def _published(self, run: steps.Run, record: JobRecord) -> None:
        record = self._no_timelines_in_a_batch(record, run.rule)
        if run.rule.report:
            for output in record.outputs:
                self.disposal.write_report(record, run.rule, output)
        log.info("outbox.published", output=str(record.output), outputs=len(record.outputs))
        await asyncio.to_thread(_remove_tree, run.job.work_dir)

    def _no_timelines_in_a_batch(self, record: JobRecord, rule: Rule) -> JobRecord:
        """A file of a `batch: each` folder gets no timelines (the folder moves as one when
        its last job ends, so there is no final place to link yet): said, not skipped."""
        if record.batch is None or record.batch.mode != BatchMode.EACH:
            return record
        if not handover.wanted(rule, record) or NO_BATCH_TIMELINES in record.warnings:
            return record
        log.warning("outbox.timeline_not_written", reason=NO_BATCH_TIMELINES)
        return self.ledger.update(record.id, warnings=[*record.warnings, NO_BATCH_TIMELINES])

    def _hand_over(self, record: JobRecord, rule: Rule, source: Path) -> JobRecord:
        """The timelines for editors, linking the source where it stays (handover.py); a
        timeline that cannot be written is a warning: the video is published."""
        try:
            after_each = _timelines_kill_for_test(self._crash_timelines, record)
            record, left_out = handover.publish(
                self.ledger, record, rule, source, after_each=after_each
            )
        except Exception as error:  # never the job's (nor the daemon's) end:
            # raised here, it would come back at each start, from recovery's disposal
            warning = f"a timeline for editors was not written: {error}"
            log.warning(
                "outbox.timeline_failed",
                error=str(error),
                exc_info=not isinstance(error, OSError | NemowatchError),
            )
            current = self.ledger.get(record.id)  # the timelines published meanwhile
            return self.ledger.update(record.id, warnings=[*current.warnings, warning])
        if left_out and rule.report:
            for name, path in record.published.items():
                if path and not handover.is_timeline(name):
                    self.disposal.write_report(record, rule, Path(path), left_out)
        return record

    def dispose(self, record: JobRecord, rule: Rule) -> JobRecord:
        """Send a finished job's source where the rule says. Idempotent after a crash."""
        return self.disposal.dispose(record, rule)

    async def _end_in_error(
        self, record: JobRecord, rule: Rule, error: NemowatchError
    ) -> JobRecord:
        """Fail the job, unless its file was still being written (a copy that paused):
        then it goes back to the inbox to settle again (`stalled`)."""
        # a batch's folder settled as a whole: none of its files is being written
        if self.disposal.dispose_sources and record.batch is None:
            reason = await stalled.still_written(
                record,
                rule.settle_seconds,
                # unreadable or truncated: it may be half-written; else only a change tells
                # (a sidecar's mistake is not a half-written file)
                watch=(isinstance(error, MediaError) and not isinstance(error, SidecarError))
                or record.state is JobState.VERIFYING,
                sleep=self._sleep,
                wall=lambda: self._now().timestamp(),
            )
            if reason is not None:
                return self._give_back(record, rule, f"{reason}: {_as_dropped(str(error), record)}")
        return self._fail(record, rule, error)

    def _give_back(self, record: JobRecord, rule: Rule, reason: str) -> JobRecord:
        step = record.state.value
        record = self.ledger.transition(
            record.id, JobState.RETURNED, error=f"{step}: {reason}", detail=reason
        )
        log.warning("intake.unclaimed", step=step, reason=reason, source=str(record.source))
        _remove_tree(self.state_dir / "work" / record.id)
        return self.dispose(record, rule)

    def _fail(self, record: JobRecord, rule: Rule, error: NemowatchError) -> JobRecord:
        step = record.state.value
        message = _as_dropped(str(error), record)
        hint = _as_dropped(error.hint, record) if error.hint else error.hint
        retryable = False if isinstance(error, MediaError) else bool(error.retryable)
        record = self.ledger.transition(
            record.id,
            JobState.FAILED,
            error=f"{step}: {message}",
            error_kind=errors.kind(error),
            retryable=retryable,
            detail=hint,
        )
        log.error("job.failed", step=step, error=message, hint=hint, retryable=retryable)
        _remove_tree(self.state_dir / "work" / record.id)
        return self.dispose(record, rule)


def _as_dropped(text: str, record: JobRecord) -> str:
    """`text` naming the file as it was dropped: engines see the claimed file,
    processing/<job>__<name>, but people know the name they gave it."""
    if record.claimed is None:
        return text
    text = text.replace(str(record.claimed), str(record.source))
    return text.replace(record.claimed.name, record.source.name)


def _crash_for_test() -> None:
    """The TEST HOOK's crash (see TEST_CRASH_ON): abort, as a crash in C code would,
    leaving no core file behind."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.abort()


def _kill_for_test() -> None:
    """The second TEST HOOK's crash (see TEST_CRASH_PUBLISHED): a SIGKILL, as the OOM
    killer or `kill -9` would send."""
    os.kill(os.getpid(), signal.SIGKILL)


def _timelines_kill_for_test(hook: str | None, record: JobRecord) -> Callable[[], None] | None:
    """The third TEST HOOK (see TEST_CRASH_TIMELINES): None unless it names this job's
    file; else killed now when it says 0 timelines, or a counter that kills at the n-th."""
    name, _, count = (hook or "").rpartition(":")
    if not name or name != record.source.name:
        return None
    left = [int(count)]

    def recorded() -> None:
        left[0] -= 1
        if left[0] <= 0:
            _kill_for_test()

    if left[0] <= 0:
        _kill_for_test()
    return recorded


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
