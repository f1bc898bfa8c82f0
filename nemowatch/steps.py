"""The steps of a job, one function each, and `STEPS`: which step runs in which state.

Each step takes the job as the ledger has it and returns where it goes next (`Advance`);
the pipeline makes the transition, times the step and reports its stage. A step may
checkpoint inside itself (an instruction sent, a render submitted) with `ledger.update`.

Steps retry nothing: the engine has retried what the wire needed before an error gets
here. Two steps may go back: a render whose result vanished with a crash is rendered
again, and a download that vanished is downloaded again. One step may wait: a file whose
bytes another job of its rule is already making into an output waits for that job
(`WaitForJob`), and is then skipped as its duplicate, or made when that job failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import structlog

from nemowatch import conform, outbox, progress, stalled
from nemowatch.config import Rule, format_size
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
from nemowatch.errors import CreditsExhausted, EngineError, LeaseLost, MediaError, TransientError
from nemowatch.intake import versioned_stem
from nemowatch.jobs import Revision
from nemowatch.ledger import JobRecord, JobState, Ledger
from nemowatch.outputs import Target, targets_of
from nemowatch.retry import Sleep

log = structlog.get_logger("nemowatch.pipeline")

POLL_FIRST = 0.5  # seconds before the first render poll; doubles up to POLL_MAX
POLL_MAX = 30.0
RENDER_DEADLINE = 4 * 3600.0  # seconds a render may take before the job fails
MAX_LOST_RENDERS = 2  # re-submissions allowed when the engine lost a render (local: crash)


class WaitForJob(Exception):
    """Not an error: the job waits until job `job_id`, made from the same bytes, ends.

    The job holds nothing meanwhile: the daemon sets it aside and runs it again when that
    job ends; it is then skipped as a duplicate, or made if that job failed."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"waiting for job {job_id}, made from the same bytes")
        self.job_id = job_id


@dataclass(frozen=True)
class Advance:
    """Where a step sends the job: the next state and what to record with it."""

    state: JobState
    fields: Mapping[str, Any] = field(default_factory=dict)
    detail: str | None = None


@dataclass
class Run:
    """One run of one job: what every step needs, and what the run has learnt so far."""

    engine: Engine
    ledger: Ledger
    rule: Rule
    job: Job
    began_in: JobState  # the state the ledger held when this run started
    sleep: Sleep
    clock: Callable[[], float]
    now: Callable[[], datetime]
    render_checked: bool = False  # a run resumed after the render: is its result still there
    # the temporary name of the output `verify` just published: the pipeline removes it
    # once the ledger has recorded the output (until then it tells a restart it was published)
    published_temp: Path | None = None
    _paths: dict[str, tuple[PurePosixPath, Path]] = field(default_factory=dict)

    def target(self, record: JobRecord) -> Target:
        """The output being made: the first of the rule's not yet published."""
        targets = targets_of(self.rule.outputs, self.job.export)
        return next((item for item in targets if item.name not in record.published), targets[-1])

    def remaining(self, published: Mapping[str, str | None]) -> list[Target]:
        return [
            item
            for item in targets_of(self.rule.outputs, self.job.export)
            if item.name not in published
        ]

    def paths(self, record: JobRecord) -> tuple[PurePosixPath, Path]:
        """The output's name inside the outbox and the temporary file it is downloaded to;
        chosen once a run for each output (a template may hold the date)."""
        target = self.target(record)
        if target.name not in self._paths:
            assert record.render is not None
            render = Render(**record.render)
            relative = outbox.output_name(
                target.template,
                source_name=record.source.name,
                rule=self.rule.name,
                when=self.now(),
            )
            if record.revision is not None:  # the next version, beside the first
                relative = _versioned(record.revision, target.name, self.rule.outbox, relative)
            if render.format and relative.suffix.lower() != f".{render.format}":
                # the instructions chose another format than the template's extension says
                log.warning(
                    "outbox.extension_changed", template=target.template, format=render.format
                )
                relative = relative.with_suffix(f".{render.format}")
            temp = outbox.temp_path(self.rule.outbox, relative, outbox.temp_owner(record))
            self._paths[target.name] = relative, temp
        return self._paths[target.name]


def _versioned(
    revision: Revision, output: str, folder: Path, otherwise: PurePosixPath
) -> PurePosixPath:
    """The name, in the outbox, of the revision's version of the first job's `output`."""
    first = dict(revision.outputs).get(output)
    if first is None:  # an output the rule has gained since: named as a new one would be
        first = folder / otherwise
    with contextlib.suppress(ValueError):
        relative = PurePosixPath(first.relative_to(folder))
        return relative.with_name(versioned_stem(relative.stem, revision.version) + relative.suffix)
    return PurePosixPath(versioned_stem(first.stem, revision.version) + first.suffix)


@dataclass(frozen=True)
class Step:
    name: str  # the key of its time in the job's timings
    stage: str | None  # what progress shows while it runs
    run: Callable[[Run, JobRecord], Awaitable[Advance]]


def fingerprint(path: Path, chunk_size: int = 1 << 20) -> tuple[str, int]:
    """SHA-256 and size of a file, reading it once; of a folder (a batch), of its files'
    names and contents in name order."""
    if path.is_dir() and not path.is_symlink():
        combined = hashlib.sha256()
        total = 0
        for child in sorted(path.iterdir()):
            if child.is_file() and not child.is_symlink():
                part, size = fingerprint(child, chunk_size)
                combined.update(f"{child.name}\0{part}\0".encode())
                total += size
        return combined.hexdigest(), total
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _with_sidecars(digest: str, record: JobRecord) -> str:
    """The fingerprint of a source and the sidecars taken with it."""
    combined = hashlib.sha256(digest.encode())
    for sidecar in record.sidecars:
        combined.update(fingerprint(Path(sidecar["claimed"]))[0].encode())
    if record.revision is not None and record.claimed is not None:  # the revision file
        for path in (*record.revision.earlier, record.claimed):
            combined.update(fingerprint(path)[0].encode())
    return combined.hexdigest()


def session_of(record: JobRecord) -> Session:
    return Session(**(record.session or {"id": record.id}))


async def claim(run: Run, record: JobRecord) -> Advance:
    """Check the file (size, fingerprint, duplicate) and open an editing session."""
    source = run.job.source
    if run.rule.max_size is not None:
        _check_size(source, record.source.name, run.rule.max_size)
    if record.fingerprint is None:
        try:
            digest, size = await asyncio.to_thread(fingerprint, source)
        except PermissionError as error:
            raise MediaError(
                f"cannot read {record.source.name}: permission denied",
                hint="give the user running nemowatch read access to the file"
                " (chmod a+r), then move it back into the inbox",
            ) from error
        if record.sidecars or record.revision is not None:
            # other instructions for the same bytes are other work, not a duplicate
            digest = await asyncio.to_thread(_with_sidecars, digest, record)
        record = run.ledger.update(record.id, fingerprint=digest, size=size)
    skipped = _duplicate(run, record)
    if skipped is not None:
        return skipped
    session = await _session(run, record)
    # Asked again after that pause, and answered with none before the pipeline records the
    # move on: so of the jobs made from the same bytes, only one at a time gets past here.
    going_on = False
    try:
        skipped = _duplicate(run, record)
        going_on = skipped is None
    finally:
        if not going_on:  # the session's scratch space; made again if it goes on later
            shutil.rmtree(run.job.work_dir, ignore_errors=True)
    return skipped or Advance(JobState.UPLOADING, {"session": asdict(session)})


async def _session(run: Run, record: JobRecord) -> Session:
    """A new session; for a job of a batch whose engine shares sessions, the one a job of
    the same batch opened (it runs with its batch's lock held: see `Pipeline`)."""
    if record.revision is not None and run.engine.shares_sessions:
        revised = run.ledger.get(record.revision.after)
        if revised.session is not None:  # the same conversation, going on
            log.info("session.continued", revises=revised.id, version=record.revision.version)
            return await run.engine.join_session(session_of(revised), run.job)
    if record.batch is not None and run.engine.shares_sessions:
        for member in run.ledger.batch_jobs(record.batch.id):
            if member.id != record.id and member.session is not None:
                log.info("session.shared", batch=str(record.batch.folder), with_job=member.id)
                return await run.engine.join_session(session_of(member), run.job)
    return await run.engine.open_session(run.job)


def _duplicate(run: Run, record: JobRecord) -> Advance | None:
    """Skip a job whose bytes were already made into an output by its rule; wait
    (`WaitForJob`) when another job is making them now. None: go on."""
    assert record.fingerprint is not None
    if run.rule.reprocess_duplicates:
        return None
    earlier = run.ledger.done_with_fingerprint(record.fingerprint, run.rule.name)
    if earlier is not None and earlier.id != record.id:
        reason = f"duplicate of job {earlier.id} (output {earlier.output})"
        return Advance(JobState.SKIPPED, {"error": reason})
    ahead = _first_of_same_bytes(
        record, run.ledger.unfinished_with_fingerprint(record.fingerprint, run.rule.name)
    )
    if ahead is not None:
        raise WaitForJob(ahead.id)
    return None


def _first_of_same_bytes(record: JobRecord, unfinished: Sequence[JobRecord]) -> JobRecord | None:
    """Of the `unfinished` jobs made from the same bytes as `record` (oldest first), the
    one it waits for: one past its claim (being made), else an older one still at its
    claim; None when `record` goes first. Only a younger job waits for an older one at
    the claim, so no two wait for each other."""
    others = [job for job in unfinished if job.id != record.id]
    past = [job for job in others if job.state is not JobState.CLAIMED]
    older = [job for job in others if (job.created_at, job.id) < (record.created_at, record.id)]
    if past:
        return past[0]
    return older[0] if older else None


async def upload(run: Run, record: JobRecord) -> Advance:
    if record.revision is not None and run.engine.shares_sessions:
        revised = run.ledger.get(record.revision.after)
        same = revised.session is not None and session_of(revised).id == session_of(record).id
        if revised.media is not None and same:
            return Advance(JobState.EDITING, {"media": revised.media})  # in the session already
    media = await run.engine.upload(session_of(record), run.job.source)
    log.info("upload.done", duration=media.duration)
    return Advance(JobState.EDITING, {"media": asdict(media)})


async def edit(run: Run, record: JobRecord) -> Advance:
    """Send each instruction not yet sent, once; then read the draft they made. The job
    keeps the warnings of both (phrases not understood, a plan short of the edit)."""
    session = session_of(record)
    instructions = run.job.instructions
    warnings = list(record.warnings)
    for index in range(record.edits_done, len(instructions)):
        if record.edit_sent == index and record.edit_token is not None:
            # sent by a run that stopped before the turn ended: it may have landed, and
            # sending it again would be charged again: the engine looks
            if not await run.engine.edit_landed(session, record.edit_token):
                raise EngineError(
                    f"instruction {index + 1} was sent before the daemon stopped and did not"
                    " change the edit; it is not sent again, to avoid charging twice",
                    retryable=True,
                    hint="it may still land: look at the project in NemoVideo before anything else",
                )
            log.info("edit.confirmed_after_restart", instruction=index + 1)
        else:
            token = await run.engine.edit_checkpoint(session)
            record = run.ledger.update(record.id, edit_sent=index, edit_token=token)
            try:
                await _send(run.engine, session, instructions[index], warnings)
            except (CreditsExhausted, TransientError):
                # by the engine's contract, it did not arrive: it may be sent again
                run.ledger.update(record.id, edit_sent=None, edit_token=None)
                raise
        record = run.ledger.update(
            record.id, edits_done=index + 1, edit_sent=None, edit_token=None, warnings=warnings
        )
    draft = await run.engine.draft(session)
    for warning in draft.warnings:
        if warning not in warnings:  # a run resumed here may have kept it already
            warnings.append(warning)
            log.warning("edit.warning", text=warning)
    log.info("edit.done", planned_seconds=draft.duration, tracks=len(draft.tracks))
    return Advance(JobState.EXPORTING, {"draft": draft.to_json(), "warnings": warnings})


async def export(run: Run, record: JobRecord) -> Advance:
    """Submit the render (unless this job's render was submitted already) and wait for it."""
    assert record.draft is not None
    if record.published and not run.remaining(record.published):
        # the rule's outputs were edited while the job waited: all it names now are out
        first = next((Path(path) for path in record.published.values() if path), None)
        return Advance(JobState.DONE, {"output": first, "error": None}, detail="all published")
    draft = Draft.from_json(record.draft)
    render = Render(**record.render) if record.render else None
    lost = 0
    failed = False
    while True:
        if render is None:
            # the job's export (a sidecar's "export 720p" wins over the rule's), per output
            target = run.target(record)
            render = await run.engine.export(session_of(record), draft, target.export, target.frame)
            run.ledger.update(record.id, render=asdict(render))
            log.info("render.submitted", render_id=render.id, output=target.name or None)
        status = await _wait(run, render)
        if status.state is RenderState.COMPLETED:
            return Advance(JobState.DOWNLOADING, {"render": asdict(render)})
        if status.state is RenderState.LOST and lost < MAX_LOST_RENDERS:
            lost += 1
            log.warning("render.lost", render_id=render.id)
        elif status.state is RenderState.FAILED and not failed:
            failed = True  # a terminal failure is submitted once more, under a new id
            log.warning("render.failed", render_id=render.id, error=status.error)
        else:
            raise EngineError(f"the render failed: {status.error or status.state.value}")
        render = None
        run.ledger.update(record.id, render=None)


async def download(run: Run, record: JobRecord) -> Advance:
    """Fetch the result into a temporary file beside the outbox's final name."""
    assert record.render is not None
    render = Render(**record.render)
    if run.began_in in (JobState.DOWNLOADING, JobState.VERIFYING) and not run.render_checked:
        # interrupted after the render: the result may be gone with the crash
        run.render_checked = True  # looked at once a run
        status = await run.engine.poll(render)
        if status.state is not RenderState.COMPLETED:
            return Advance(JobState.EXPORTING, {"render": None}, detail="result lost; re-render")
    _, temp = run.paths(record)
    try:
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.unlink(missing_ok=True)
        await run.engine.download(render, temp)
    except OSError as error:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)  # no partial result left behind
        raise outbox.unwritable(error, temp.parent, record.source.name) from error
    export = run.target(record).export
    if export.short_side is not None or export.fps is not None:
        # what the engine could not be told (the nemo render: format and quality only)
        warning = await conform.conform(temp, export)
        if warning is not None:
            return Advance(JobState.VERIFYING, {"warnings": [*record.warnings, warning]})
    return Advance(JobState.VERIFYING)


async def verify(run: Run, record: JobRecord) -> Advance:
    """Check the download is the video planned and publish it under its final name."""
    relative, temp = run.paths(record)
    if run.began_in is JobState.VERIFYING and not run.render_checked and not temp.is_file():
        # the downloaded result is gone (removed while no daemon ran): fetch it again, once
        return Advance(JobState.DOWNLOADING, detail="result gone; download again")
    assert record.draft is not None and record.render is not None
    render = Render(**record.render)
    draft = Draft.from_json(record.draft)
    if render.format and draft.metadata.get("format"):  # an output may have its own format
        draft = Draft(draft.tracks, draft.duration_ms, {**draft.metadata, "format": render.format})
    size = (render.width, render.height) if render.width and render.height else None
    final = await asyncio.to_thread(outbox.already_published, temp, run.rule.outbox / relative)
    if final is not None:
        # published by a run that was stopped before it could record it
        log.info("outbox.already_published", output=str(final))
    else:
        try:
            await asyncio.to_thread(outbox.verify, temp, draft, size)
            if (change := stalled.changed_since_claim(record)) is not None:
                # made from part of the file: the pipeline gives the file back to settle
                raise MediaError(f"{record.source.name} changed while it was edited: {change}")
            run.ledger.fence(record.id)  # adopted by another node meanwhile: publish nothing
            final = outbox.publish(temp, run.rule.outbox / relative, run.rule.on_conflict)
        except LeaseLost:
            raise  # the temporary file is left to the adopter's recovery, as after a kill
        except Exception:
            temp.unlink(missing_ok=True)
            raise
        if final is None:
            log.info("outbox.kept_existing", output=str(run.rule.outbox / relative))
    subtitles = render.subtitles
    if final is not None and subtitles is not None and Path(subtitles).is_file():
        beside = await asyncio.to_thread(
            outbox.publish_beside, Path(subtitles), final, run.rule.on_conflict
        )
        log.info("outbox.subtitles", output=str(beside) if beside else None)
    run.published_temp = temp
    return _after_publishing(run, record, final)


def _after_publishing(run: Run, record: JobRecord, final: Path | None) -> Advance:
    """Done when every output is published; else the next output is rendered (from the
    same draft: one analysis, one plan). The ledger keeps each output published, so a
    restarted job makes only the missing ones."""
    target = run.target(record)
    published = {**record.published, target.name: str(final) if final is not None else None}
    first = next((Path(path) for path in published.values() if path), None)
    remaining = run.remaining(published)
    if remaining:
        log.info("outbox.published", output=str(final), name=target.name, next=remaining[0].name)
        return Advance(
            JobState.EXPORTING,
            {"render": None, "published": list(published.items())},  # pairs: kept in order
            detail=f"published {target.name}; next: {remaining[0].name}",
        )
    pairs = list(published.items())
    return Advance(JobState.DONE, {"output": first, "published": pairs, "error": None})


# The state machine: the step that takes a job on from each state it can be in.
STEPS: Mapping[JobState, Step] = MappingProxyType(
    {
        JobState.CLAIMED: Step("claim", None, claim),
        JobState.UPLOADING: Step("upload", "uploading", upload),
        JobState.EDITING: Step("edit", "editing", edit),
        JobState.EXPORTING: Step("export", "rendering", export),
        JobState.DOWNLOADING: Step("download", "downloading", download),
        JobState.VERIFYING: Step("verify", "verifying", verify),
    }
)


async def _wait(run: Run, render: Render) -> RenderStatus:
    delay = POLL_FIRST
    limit = run.engine.render_deadline or RENDER_DEADLINE
    deadline = run.clock() + limit
    while True:
        status = await run.engine.poll(render)
        if status.state not in (RenderState.PENDING, RenderState.PROCESSING):
            return status
        if run.clock() > deadline:
            raise EngineError(
                f"the render did not finish within {_duration(limit)}",
                hint="a longer render needs a longer deadline (nemo.render_deadline)"
                if run.engine.render_deadline
                else None,
                retryable=True,
            )
        log.info("render.poll", render_id=render.id, progress=status.progress)
        progress.report("rendering", status.progress)
        await run.sleep(delay)
        delay = min(delay * 2, POLL_MAX)


def _duration(seconds: float) -> str:
    """`4 h`, `20 min` or `45 s`: a deadline as people say it."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


async def _send(engine: Engine, session: Session, instruction: str, warnings: list[str]) -> None:
    """One instruction through the engine, its events logged (warnings kept)."""
    async for event in engine.edit(session, instruction):
        if event.kind is EditEventKind.WARNING:
            warnings.append(event.text)
            log.warning("edit.warning", text=event.text)
        elif event.kind is EditEventKind.TEXT:
            log.info("edit.text", text=event.text)
        else:
            log.debug("edit.event", kind=event.kind.value, text=event.text)


def _check_size(source: Path, name: str, limit: int) -> None:
    """Refuse, before any work, a file larger than the rule's `max_size`."""
    if source.is_dir():  # a batch's folder: its files together
        size = sum(child.stat().st_size for child in source.iterdir() if child.is_file())
    else:
        size = source.stat().st_size
    if size > limit:
        raise MediaError(
            f"{name} is {format_size(size)} ({size} bytes), over this rule's max_size of"
            f" {format_size(limit)}",
            hint="raise the rule's max_size, or trim or compress the file, then move it back"
            " into the inbox",
        )
