"""What the engine is given for a job (`Job`): the source to edit, and the instructions,
edit and export: the rule's, with the job's sidecars', a batch's instructions.txt, or a
revision's files on top (`config.sidecars.combine`). An invalid sidecar raises SidecarError
with its file and line, before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from nemowatch.config import Rule
from nemowatch.config.sidecars import combine, read_sidecar
from nemowatch.engines.base import Job
from nemowatch.errors import ConfigProblem, SidecarError
from nemowatch.jobs import JobRecord
from nemowatch.language.routing import Route, route
from nemowatch.outputs import targets_of
from nemowatch.rules import EditSpec, ExportSpec

log = structlog.get_logger("nemowatch.pipeline")


def job_order(
    record: JobRecord, rule: Rule, *, engine: str, shares_sessions: bool, work_dir: Path
) -> Job:
    """What the engine is given: the rule's instructions with the job's sidecars' added
    (SidecarError, with file and line, when one is invalid: before any work)."""
    assert record.claimed is not None
    sidecars = tuple(
        read_sidecar(
            Path(sidecar["claimed"]),
            rule=rule,
            engine=engine,
            shown_as=Path(sidecar["source"]),
        )
        for sidecar in record.sidecars
    )
    if len(sidecars) > 1:
        names = " and ".join(sidecar.file.name for sidecar in sidecars)
        raise SidecarError(
            [ConfigProblem(str(sidecars[1].file), None, "", f"{names} are both beside it")],
            hint=f"keep one sidecar beside {record.source.name}, then move them back"
            " into the inbox together",
        )
    if record.revision is not None:
        return _revision_job(record, rule, engine, shares_sessions, work_dir)
    if record.batch is not None and record.batch.instructions is not None:
        # the batch's instructions.txt, for each of its files: under a file's own
        name = record.batch.instructions
        batch_wide = read_sidecar(
            record.batch.claimed / name,
            rule=rule,
            engine=engine,
            shown_as=record.batch.folder / name,
        )
        sidecars = (batch_wide, *sidecars)
    combined = combine(rule, sidecars)
    if engine == "nemo":
        combined = _routed(*combined)
    return _job(record, rule, record.claimed, combined, work_dir)


def _revision_job(
    record: JobRecord, rule: Rule, engine: str, shares_sessions: bool, work_dir: Path
) -> Job:
    """A revision's job: the first job's source, and its instructions (the rule's, its
    sidecars', the earlier revisions') with the revision file's on top; an engine that
    goes on in the revised job's session is sent the revision's alone."""
    revision = record.revision
    assert revision is not None and record.claimed is not None
    own = read_sidecar(record.claimed, rule=rule, engine=engine, shown_as=record.source)
    earlier = tuple(read_sidecar(path, rule=rule, engine=engine) for path in revision.earlier)
    instructions, edit, export = combine(rule, (*earlier, own))
    if shares_sessions:
        instructions = own.instructions
    if engine == "nemo":
        instructions, edit, export = _routed(instructions, edit, export)
    return _job(record, rule, revision.source, (instructions, edit, export), work_dir)


def _routed(
    instructions: tuple[str, ...], edit: EditSpec, export: ExportSpec
) -> tuple[tuple[str, ...], EditSpec, ExportSpec]:
    """The cloud engine's instructions: what goes to the chat, each instruction's other
    clauses taken as export settings or left out (`language.routing`). Export settings
    named in the text fill what the rule's `export:` leaves unset."""
    routings = [route(instruction) for instruction in instructions]
    for routing in routings:
        for clause in routing.clauses:
            if clause.route is not Route.CHAT:
                log.info("instruction.routed", clause=clause.text, to=clause.route.value)
    settings: dict[str, Any] = {}
    for routing in routings:
        settings.update(routing.export)
    chats = tuple(routing.chat for routing in routings if routing.chat is not None)
    return chats, edit, export.merged(settings) if settings else export


def _job(
    record: JobRecord,
    rule: Rule,
    source: Path,
    combined: tuple[tuple[str, ...], EditSpec, ExportSpec],
    work_dir: Path,
) -> Job:
    instructions, edit, export = combined
    return Job(
        id=record.id,
        rule=rule.name,
        source=source,
        instructions=instructions,
        edit=edit,
        export=export,
        work_dir=work_dir,
        frames=tuple(target.frame for target in targets_of(rule.outputs, rule.export)),
    )
