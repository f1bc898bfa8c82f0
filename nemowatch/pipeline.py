"""One job through an Engine, checkpointed in the ledger before and after every step.

    claimed -> uploading -> editing -> exporting -> downloading -> verifying -> done
                                      (or failed / skipped)

A job resumes from the state the ledger holds: a render already submitted is polled
again, never re-submitted blindly; an instruction already sent is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from nemowatch import outbox, progress, retry
from nemowatch.config import AfterSuccess, Rule, format_size
from nemowatch.engines.base import (
    Draft,
    EditEventKind,
    Engine,
    Job,
    Render,
    RenderState,
    RenderStatus,
    Session,
)
from nemowatch.errors import (
    CreditsExhausted,
    EngineError,
    MediaError,
    NemowatchError,
    SessionLost,
    TransientError,
)
from nemowatch.ledger import JobRecord, JobState, Ledger

log = structlog.get_logger("nemowatch.pipeline")

T = TypeVar("T")

POLL_FIRST = 0.5  # seconds before the first render poll; doubles up to POLL_MAX
POLL_MAX = 30.0
RENDER_DEADLINE = 4 * 3600.0  # seconds a render may take before the job fails
MAX_LOST_RENDERS = 2  # re-submissions allowed when the engine lost a render (local: crash)
MAX_LOST_SESSIONS = 2  # new sessions a job may open when the engine forgets one
EDIT_CONFIRM_DELAYS = (2.0, 5.0, 10.0)  # seconds between looks for an interrupted edit


def fingerprint(path: Path, chunk_size: int = 1 << 20) -> tuple[str, int]:
    """SHA-256 and size of a file, reading it once."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Pipeline:
    """Drives jobs through one engine. Stateless between jobs; the ledger holds the state."""

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        *,
        state_dir: Path,
        max_attempts: int = 3,
        patience: float = retry.PATIENCE,
        sleep: retry.Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = datetime.now,
        dispose_sources: bool = True,
        observer: progress.Listener | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.state_dir = state_dir
        self.max_attempts = max_attempts
        self.patience = patience  # seconds a step waits out transient failures before failing
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self.dispose_sources = dispose_sources  # False for `nemowatch process`: leave the file
        self.observer = observer  # told each job's progress as well (`process` draws it)

    def job_for(self, record: JobRecord, rule: Rule) -> Job:
        assert record.claimed is not None
        return Job(
            id=record.id,
            rule=rule.name,
            source=record.claimed,
            instructions=rule.instructions,
            edit=rule.edit,
            export=rule.export,
            work_dir=self.state_dir / "work" / record.id,
        )

    async def run(self, job_id: str, rule: Rule) -> JobRecord:
        """Take a job from its current state to done, failed or skipped.

        Cancellation (daemon stopping) leaves the ledger at the last checkpoint.
        """
        record = self.ledger.get(job_id)
        started = self._clock()
        with structlog.contextvars.bound_contextvars(
            job_id=record.id, rule=record.rule, source=str(record.source)
        ):
            record = self.ledger.update(job_id, attempts=record.attempts + 1)
            try:
                if record.attempts > self.max_attempts + 2:
                    # a file that keeps killing the daemon must not be tried forever
                    raise EngineError(
                        f"gave up after {record.attempts - 1} interrupted attempts",
                        retryable=True,
                    )
                listener = progress.JobProgress(
                    self.ledger, job_id, observer=self.observer, clock=self._clock
                )
                with progress.reporting(listener):
                    record = await self._drive_with_sessions(record, rule)
            except CreditsExhausted:
                # not the job's fault: it waits at its checkpoint until credits return, and
                # this run does not count as one of its attempts
                current = self.ledger.update(job_id, attempts=max(0, record.attempts - 1))
                log.warning("job.waiting_for_credits", state=current.state.value)
                raise
            except asyncio.CancelledError:
                log.info("job.interrupted", state=self.ledger.get(job_id).state.value)
                raise
            except NemowatchError as error:
                record = self._fail(self.ledger.get(job_id), rule, error)
            except OSError as error:
                record = self._fail(
                    self.ledger.get(job_id),
                    rule,
                    EngineError(f"file system error: {error}", retryable=True),
                )
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
        job = self.job_for(record, rule)
        timings: dict[str, float] = dict(record.timings)

        if record.state is JobState.CLAIMED:
            step = self._clock()
            if rule.max_size is not None:
                _check_size(job.source, record.source.name, rule.max_size)
            if record.fingerprint is None:
                try:
                    digest, size = await asyncio.to_thread(fingerprint, job.source)
                except PermissionError as error:
                    raise MediaError(
                        f"cannot read {record.source.name}: permission denied",
                        hint="give the user running nemowatch read access to the file"
                        " (chmod a+r), then move it back into the inbox",
                    ) from error
                record = self.ledger.update(record.id, fingerprint=digest, size=size)
            assert record.fingerprint is not None
            if not rule.reprocess_duplicates:
                earlier = self.ledger.done_with_fingerprint(record.fingerprint, rule.name)
                if earlier is not None and earlier.id != record.id:
                    return self._skip_duplicate(record, rule, earlier)
            session = await self._call(lambda: self.engine.open_session(job))
            timings["claim"] = round(self._clock() - step, 3)
            record = self.ledger.transition(
                record.id, JobState.UPLOADING, session=asdict(session), timings=timings
            )

        session = Session(**(record.session or {"id": record.id}))

        if record.state is JobState.UPLOADING:
            progress.report("uploading")
            step = self._clock()
            media = await self._call(lambda: self.engine.upload(session, job.source))
            timings["upload"] = round(self._clock() - step, 3)
            log.info("upload.done", duration=media.duration)
            record = self.ledger.transition(
                record.id, JobState.EDITING, media=asdict(media), timings=timings
            )

        if record.state is JobState.EDITING:
            progress.report("editing")
            step = self._clock()
            warnings = list(record.warnings)
            for index in range(record.edits_done, len(job.instructions)):
                if record.edit_sent == index and record.edit_token is not None:
                    # sent by a run that stopped before the turn ended: it may have landed,
                    # and sending it again would be charged again
                    if not await self._edit_landed(session, record.edit_token):
                        raise EngineError(
                            f"instruction {index + 1} was sent before the daemon stopped and"
                            " did not change the edit; it is not sent again, to avoid"
                            " charging twice",
                            retryable=True,
                            hint="check the project in NemoVideo, then drop the file again",
                        )
                    log.info("edit.confirmed_after_restart", instruction=index + 1)
                    record = self.ledger.update(
                        record.id, edits_done=index + 1, edit_sent=None, edit_token=None
                    )
                    continue
                attempt, waited = 0, 0.0
                while True:
                    attempt += 1
                    token = await self._call(lambda: self.engine.edit_checkpoint(session))
                    record = self.ledger.update(record.id, edit_sent=index, edit_token=token)
                    try:
                        await self._send(session, job.instructions[index], warnings)
                        break
                    except CreditsExhausted:
                        # refused for want of credits, so not applied: send it when they return
                        self.ledger.update(record.id, edit_sent=None, edit_token=None)
                        raise
                    except TransientError as error:
                        # An engine raises this from edit() when the instruction did not
                        # arrive, but also when it could not find out (the service went away
                        # mid-turn and stayed away): the edit checkpoint tells, once the
                        # service answers again. Sent again only when it did not land.
                        checkpoint = await self._call(lambda: self.engine.edit_checkpoint(session))
                        if checkpoint != token:
                            log.info("edit.landed_despite_error", instruction=index + 1)
                            break
                        record = self.ledger.update(record.id, edit_sent=None, edit_token=None)
                        if not retry.worth_waiting(error) or retry.gives_up(
                            attempt, waited, attempts=self.max_attempts, patience=self.patience
                        ):
                            raise
                        delay = retry.backoff(attempt, error)
                        log.warning("edit.not_delivered", error=str(error), retry_in=delay)
                        await self._sleep(delay)
                        waited += delay
                record = self.ledger.update(
                    record.id,
                    edits_done=index + 1,
                    edit_sent=None,
                    edit_token=None,
                    warnings=warnings,
                )
            draft = await self._call(lambda: self.engine.draft(session))
            timings["edit"] = round(self._clock() - step, 3)
            log.info("edit.done", planned_seconds=draft.duration, tracks=len(draft.tracks))
            record = self.ledger.transition(
                record.id, JobState.EXPORTING, draft=draft.to_json(), timings=timings
            )

        assert record.draft is not None
        draft = Draft.from_json(record.draft)

        if record.state in (JobState.DOWNLOADING, JobState.VERIFYING):
            # interrupted after the render: the result may be gone with the crash
            assert record.render is not None
            previous = Render(**record.render)
            status = await self._call(lambda: self.engine.poll(previous))
            if status.state is not RenderState.COMPLETED:
                record = self.ledger.transition(
                    record.id, JobState.EXPORTING, render=None, detail="result lost; re-render"
                )

        if record.state is JobState.EXPORTING:
            progress.report("rendering")
            step = self._clock()
            render = await self._render(record, session, draft, rule)
            timings["export"] = round(self._clock() - step, 3)
            record = self.ledger.transition(
                record.id, JobState.DOWNLOADING, render=asdict(render), timings=timings
            )

        assert record.render is not None
        render = Render(**record.render)
        relative = outbox.output_name(
            rule.outputs, source_name=record.source.name, rule=rule.name, when=self._now()
        )
        rendered_format = render.data.get("format")
        if rendered_format and relative.suffix.lower() != f".{rendered_format}":
            # the instructions chose another format than the template's extension says
            log.warning("outbox.extension_changed", template=rule.outputs, format=rendered_format)
            relative = relative.with_suffix(f".{rendered_format}")
        temp = outbox.temp_path(rule.outbox, relative, record.id)

        if record.state is JobState.VERIFYING and not temp.is_file():
            # the downloaded result is gone (removed while no daemon ran): fetch it again
            record = self.ledger.transition(
                record.id, JobState.DOWNLOADING, detail="result gone; download again"
            )

        if record.state is JobState.DOWNLOADING:
            progress.report("downloading")
            step = self._clock()
            try:
                temp.parent.mkdir(parents=True, exist_ok=True)
                temp.unlink(missing_ok=True)
                await self._call(lambda: self.engine.download(render, temp))
            except OSError as error:
                with contextlib.suppress(OSError):
                    temp.unlink(missing_ok=True)  # no partial result left behind
                raise outbox.unwritable(error, temp.parent, record.source.name) from error
            timings["download"] = round(self._clock() - step, 3)
            record = self.ledger.transition(record.id, JobState.VERIFYING, timings=timings)

        progress.report("verifying")
        step = self._clock()
        final = await asyncio.to_thread(outbox.already_published, temp, rule.outbox / relative)
        if final is not None:
            # published by a run that was stopped before it could record it
            log.info("outbox.already_published", output=str(final))
        else:
            try:
                await asyncio.to_thread(outbox.verify, temp, draft)
                final = outbox.publish(temp, rule.outbox / relative, rule.on_conflict)
            except Exception:
                temp.unlink(missing_ok=True)
                raise
            if final is None:
                log.info("outbox.kept_existing", output=str(rule.outbox / relative))
        timings["verify"] = round(self._clock() - step, 3)
        record = self.ledger.transition(
            record.id, JobState.DONE, output=final, timings=timings, error=None
        )
        # only now: until the ledger says done, this second name is how a restarted
        # daemon recognises the published output as its own
        temp.unlink(missing_ok=True)
        if rule.report and final is not None:
            self._write_report(record, rule, final)
        log.info("outbox.published", output=str(final))
        await self._cleanup(job)
        return self.dispose(record, rule)

    async def _render(
        self, record: JobRecord, session: Session, draft: Draft, rule: Rule
    ) -> Render:
        """Submit (unless already submitted) and poll until the render completes."""
        render = Render(**record.render) if record.render else None
        lost = 0
        failed = False
        while True:
            if render is None:
                render = await self._call(lambda: self.engine.export(session, draft, rule.export))
                self.ledger.update(record.id, render=asdict(render))
                log.info("render.submitted", render_id=render.id)
            status = await self._wait(render)
            if status.state is RenderState.COMPLETED:
                return render
            if status.state is RenderState.LOST and lost < MAX_LOST_RENDERS:
                lost += 1
                log.warning("render.lost", render_id=render.id)
                render = None
                self.ledger.update(record.id, render=None)
                continue
            if status.state is RenderState.FAILED and not failed:
                failed = True  # a terminal failure is submitted once more, under a new id
                log.warning("render.failed", render_id=render.id, error=status.error)
                render = None
                self.ledger.update(record.id, render=None)
                continue
            raise EngineError(f"the render failed: {status.error or status.state.value}")

    async def _wait(self, render: Render) -> RenderStatus:
        delay = POLL_FIRST
        deadline = self._clock() + RENDER_DEADLINE
        while True:
            status = await self._call(lambda: self.engine.poll(render))
            if status.state not in (RenderState.PENDING, RenderState.PROCESSING):
                return status
            if self._clock() > deadline:
                raise EngineError(
                    f"the render did not finish within {RENDER_DEADLINE / 3600:.0f} h",
                    retryable=True,
                )
            log.info("render.poll", render_id=render.id, progress=status.progress)
            progress.report("rendering", status.progress)
            await self._sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    async def _send(self, session: Session, instruction: str, warnings: list[str]) -> None:
        """One instruction through the engine, its events logged (warnings kept)."""
        async for event in self.engine.edit(session, instruction):
            if event.kind is EditEventKind.WARNING:
                warnings.append(event.text)
                log.warning("edit.warning", text=event.text)
            elif event.kind is EditEventKind.TEXT:
                log.info("edit.text", text=event.text)
            else:
                log.debug("edit.event", kind=event.kind.value, text=event.text)

    async def _edit_landed(self, session: Session, before: str) -> bool:
        """Whether the edit state moved on from `before`, looking a few times."""
        for delay in (0.0, *EDIT_CONFIRM_DELAYS):
            await self._sleep(delay)
            if await self._call(lambda: self.engine.edit_checkpoint(session)) != before:
                return True
        return False

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await retry.call(
            operation, attempts=self.max_attempts, sleep=self._sleep, patience=self.patience
        )

    async def _cleanup(self, job: Job) -> None:
        await asyncio.to_thread(_remove_tree, job.work_dir)

    def _write_report(self, record: JobRecord, rule: Rule, output: Path) -> None:
        """`<output>.json`: what was asked, what was planned, what was warned, how long."""
        report = {
            "job_id": record.id,
            "rule": rule.name,
            "engine": record.engine,
            "source": str(record.source),
            "output": str(output),
            "instructions": list(rule.instructions),
            "edit": rule.edit.model_dump(mode="json", exclude_unset=True),
            "export": rule.export.model_dump(mode="json"),
            "media": record.media,
            "plan": record.draft,
            "warnings": record.warnings,
            "timings": record.timings,
            "finished_at": self._now().astimezone().isoformat(timespec="seconds"),
        }
        try:
            outbox.write_json_atomic(output.with_name(output.name + ".json"), report)
        except OSError as error:
            log.warning("report.not_written", output=str(output), error=str(error))

    def _skip_duplicate(self, record: JobRecord, rule: Rule, earlier: JobRecord) -> JobRecord:
        reason = f"duplicate of job {earlier.id} (output {earlier.output})"
        record = self.ledger.transition(record.id, JobState.SKIPPED, error=reason)
        return self.dispose(record, rule)

    def dispose(self, record: JobRecord, rule: Rule) -> JobRecord:
        """Send a finished job's source where the rule says. Idempotent after a crash."""
        if record.claimed is None or record.disposed is not None:
            return record
        if not self.dispose_sources:
            if record.state is JobState.FAILED:
                log.info("job.report", **self.error_report(record))
            return self.ledger.update(record.id, disposed="kept")
        if not record.claimed.exists():
            return self._disposed_before(record, rule)
        when = self._now()
        if record.state is JobState.DONE:
            where = outbox.dispose_success(
                record.claimed,
                source=record.source,
                inbox=rule.inbox,
                after=rule.after.success,
                when=when,
            )
        elif record.state is JobState.SKIPPED:
            # never delete on a guess: a duplicate is archived beside the original
            where = outbox.dispose_success(
                record.claimed,
                source=record.source,
                inbox=rule.inbox,
                after=AfterSuccess.ARCHIVE,
                when=when,
            )
        else:
            where, _report = outbox.dispose_failure(
                record.claimed,
                source=record.source,
                inbox=rule.inbox,
                after=rule.after.failure,
                report=self.error_report(record),
            )
        log.info("source.disposed", to=where)
        return self.ledger.update(record.id, disposed=where)

    def _disposed_before(self, record: JobRecord, rule: Rule) -> JobRecord:
        """A source no longer where the job left it: a run stopped between moving it and
        recording where it went. Find it, finish the failure report, record the place."""
        deleted = record.state is JobState.DONE and rule.after.success is AfterSuccess.DELETE
        found = None
        if record.source_inode is not None and not deleted:
            found = outbox.find_disposed(
                record.source_inode, source=record.source, inbox=rule.inbox
            )
        if found is None:
            return self.ledger.update(record.id, disposed="deleted" if deleted else "missing")
        if record.state is JobState.FAILED and not outbox.has_failure_report(
            found, inbox=rule.inbox
        ):
            outbox.write_failure_report(found, inbox=rule.inbox, report=self.error_report(record))
        log.info("source.disposed", to=str(found), found_after_restart=True)
        return self.ledger.update(record.id, disposed=str(found))

    def _fail(self, record: JobRecord, rule: Rule, error: NemowatchError) -> JobRecord:
        step = record.state.value
        message = _as_dropped(str(error), record)
        hint = _as_dropped(error.hint, record) if error.hint else error.hint
        retryable = False if isinstance(error, MediaError) else bool(error.retryable)
        record = self.ledger.transition(
            record.id,
            JobState.FAILED,
            error=f"{step}: {message}",
            retryable=retryable,
            detail=hint,
        )
        log.error("job.failed", step=step, error=message, hint=hint, retryable=retryable)
        _remove_tree(self.state_dir / "work" / record.id)
        return self.dispose(record, rule)

    def error_report(self, record: JobRecord) -> dict[str, Any]:
        detail = next(
            (d for (_, to, _, d) in reversed(self.ledger.history(record.id)) if to == "failed"),
            None,
        )
        step, _, message = (record.error or "unknown: unknown error").partition(": ")
        return {
            "job_id": record.id,
            "rule": record.rule,
            "source": str(record.source),
            "failed_at": self._now().astimezone().isoformat(timespec="seconds"),
            "step": step,
            "error": message,
            "hint": detail,
            "retryable": bool(record.retryable),
            "attempts": record.attempts,
        }


def _as_dropped(text: str, record: JobRecord) -> str:
    """`text` naming the file as it was dropped: engines see the claimed file,
    processing/<job>__<name>, but people know the name they gave it."""
    if record.claimed is None:
        return text
    text = text.replace(str(record.claimed), str(record.source))
    return text.replace(record.claimed.name, record.source.name)


def _check_size(source: Path, name: str, limit: int) -> None:
    """Refuse, before any work, a file larger than the rule's `max_size`."""
    size = source.stat().st_size
    if size > limit:
        raise MediaError(
            f"{name} is {format_size(size)} ({size} bytes), over this rule's max_size of"
            f" {format_size(limit)}",
            hint="raise the rule's max_size, or trim or compress the file, then move it back"
            " into the inbox",
        )


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
