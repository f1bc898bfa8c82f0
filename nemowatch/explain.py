"""`nemowatch explain FILE`: what a rule would do to a file, without rendering it.

Prints the matched rule, the edit as understood (and the phrases that are not), the
analysis (silences, kept segments with their scores), the planned timeline and where it
falls short of the edit (a reel shorter than asked, and why), so a rule can be tuned
before any time is spent on renders; with `--picture`, the same plan drawn to scale as
SVG (`write_picture`, see picture.py); with `--timeline`, the same plan as a timeline an
editor opens (`write_timeline`, see timelines.py), linking the file where it is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from nemowatch import picture
from nemowatch.config import BatchMode, Config, Rule, rule_for
from nemowatch.config.sidecars import combine, read_sidecar
from nemowatch.engines.base import Job
from nemowatch.engines.local.effects import Effects
from nemowatch.engines.local.engine import LocalEngine, LocalPlan
from nemowatch.engines.local.highlight import score_pieces
from nemowatch.engines.local.timeline import TimelineFacts, retarget
from nemowatch.engines.local.words import is_filler
from nemowatch.files import sidecars_of
from nemowatch.language.routing import Route, route
from nemowatch.operator import OperatorError
from nemowatch.outputs import targets_of
from nemowatch.rules import SilenceCut, matches

SHOWN_SEGMENTS = 40  # longer lists are cut short in the printout


def choose_rule(config: Config, path: Path, name: str | None) -> Rule:
    """The rule named; else the one whose inbox holds `path`; else the one rule whose
    `match` patterns take its name. Raises LookupError saying what to pass otherwise."""
    if name is not None:
        for rule in config.rules:
            if rule.name == name:
                return rule
        raise LookupError(f"no rule named {name!r} (rules: {_names(config.rules)})")
    if path.is_dir():  # a batch: only a rule that combines a folder's files takes one
        combining = [rule for rule in config.rules if rule.batch is BatchMode.COMBINE]
        if len(combining) == 1:
            return combining[0]
        raise LookupError(
            f"{path.name} is a folder: pass --rule NAME, a rule with batch: combine (rules"
            f" that combine: {_names(combining) if combining else 'none'})"
        )
    found = rule_for(path, config.rules)
    if found is not None:
        return found
    taking = [
        rule
        for rule in config.rules
        if matches(path.name, rule.match) and not matches(path.name, rule.ignore)
    ]
    if len(taking) == 1:
        return taking[0]
    if taking:
        raise LookupError(
            f"{path.name} matches {len(taking)} rules ({_names(taking)}): pass --rule NAME"
            " to pick one"
        )
    patterns = "; ".join(f"{rule.name}: {' '.join(rule.match)}" for rule in config.rules)
    raise LookupError(
        f"{path.name} matches no rule's patterns ({patterns}): pass --rule NAME to use one anyway"
    )


async def plan_for(config: Config, path: Path, rule: Rule) -> LocalPlan:
    """Run the local engine up to its draft, in a scratch folder that is then removed."""
    engine = LocalEngine(ffmpeg=config.ffmpeg, cache_dir=config.state_dir / "cache")
    # a sidecar beside the file (clip.txt) is read as the daemon reads it (SidecarError)
    sidecars = tuple(read_sidecar(side, rule=rule, engine="local") for side in sidecars_of(path))
    instructions, edit, export = combine(rule, sidecars)
    with tempfile.TemporaryDirectory(prefix="nemowatch-explain-") as scratch:
        job = Job(
            id="explain",
            rule=rule.name,
            source=path,
            instructions=instructions,
            edit=edit,
            export=export,
            work_dir=Path(scratch) / "work",
            frames=tuple(target.frame for target in targets_of(rule.outputs, rule.export)),
        )
        session = await engine.open_session(job)
        await engine.upload(session, path)
        return await engine.plan(session)


def describe(path: Path, rule: Rule, plan: LocalPlan) -> str:
    """The plan in words, for people."""
    lines = [f"File:  {path}", f"Rule:  {rule.name} (inbox {rule.inbox})", ""]
    lines.append("Edit, as understood:")
    for operation in plan.interpretation.operations:
        lines.append(f"  - {operation.phrase!r}: will {operation.description}")
    for phrase in plan.interpretation.not_understood:
        lines.append(f"  ! {phrase!r}: not understood by the local engine, ignored")
    structured = rule.edit.model_dump(mode="json", exclude_unset=True)
    if structured:
        lines.append(f"  rule's edit (wins over the text): {structured}")
    applied = plan.edit.model_dump(mode="json", exclude_defaults=True)
    lines.append(f"  applied: {applied or 'nothing but the export'}")
    lines.append(f"  export: {plan.export.model_dump(mode='json')}")
    lines.append("")
    analysis = plan.analysis
    lines.append(f"Analysis of {analysis.duration:.1f} s:")
    if analysis.silences:
        total = sum(silence.duration for silence in analysis.silences)
        lines.append(f"  silences: {len(analysis.silences)}, {total:.1f} s in all")
        for silence in analysis.silences[:SHOWN_SEGMENTS]:
            lines.append(f"    {silence.start:8.2f} – {silence.end:8.2f} s")
    else:
        lines.append("  silences: none looked for or found")
    if analysis.scenes:
        lines.append(f"  scene changes scored: {len(analysis.scenes)}")
    if analysis.transcript is not None:
        heard = analysis.transcript
        lines.append(
            f"  words heard: {len(heard.words)} ({heard.language or 'language unknown'},"
            f" model {heard.model})"
        )
        if plan.edit.remove_fillers is not None:
            fillers = [w for w in heard.words if is_filler(w, plan.edit.remove_fillers.words)]
            said = ", ".join(f"{w.text.strip()!r} at {w.start:.2f} s" for w in fillers[:8])
            lines.append(f"  fillers: {len(fillers)}{': ' + said if said else ''}")
    kept = plan.segments
    scores: list[float | None] = [None] * len(kept)
    if analysis.loudness:
        threshold = (plan.edit.cut_silences or SilenceCut()).threshold_db
        scores = list(score_pieces(kept, analysis, threshold))
    kept_total = sum(segment.end - segment.start for segment in kept)
    lines.append(f"  kept: {len(kept)} segment(s), {kept_total:.1f} s of source")
    for segment, score in list(zip(kept, scores, strict=True))[:SHOWN_SEGMENTS]:
        scored = f"  score {score:.2f}" if score is not None else ""
        lines.append(f"    {segment.start:8.2f} – {segment.end:8.2f} s{scored}")
    if len(kept) > SHOWN_SEGMENTS:
        lines.append(f"    ... and {len(kept) - SHOWN_SEGMENTS} more")
    lines.append("")
    draft = plan.draft
    facts = TimelineFacts.of(draft)
    lines.append(draft.summary())
    if isinstance(rule.outputs, str):
        lines.append(
            f"Output: {draft.duration:.2f} s, {facts.width}x{facts.height},"
            f" {facts.format or 'mp4'} (nothing rendered)"
        )
    else:  # several outputs: each from this one plan
        lines.append(f"Outputs: {draft.duration:.2f} s each, from this plan (nothing rendered)")
        for target in targets_of(rule.outputs, rule.export):
            spec = target.export.merged(dict(plan.interpretation.export))
            made = TimelineFacts.of(retarget(draft, spec, target.frame))
            lines.append(
                f"  {target.name}: {made.width}x{made.height}, {made.format}"
                f" ({made.aspect or 'the source aspect'}, {made.fit}) -> {target.template}"
            )
    effects = Effects.of(draft).describe()
    if effects:
        lines.append(f"Effects: {'; '.join(effects)}")
    for warning in draft.warnings:
        lines.append(f"  ! {warning}")
    return "\n".join(lines)


def write_picture(
    destination: Path, plan: LocalPlan, source: Path, *, ffmpeg: str | None = None
) -> None:
    """The plan's timeline as SVG (`picture`), written whole or not at all: a temporary
    file beside `destination`, then renamed over it. Raises OperatorError naming the path
    when it cannot be written."""
    svg = picture.svg_for_plan(plan, picture.waveform_of(source, ffmpeg=ffmpeg))
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        partial.write_text(svg, encoding="utf-8")
        os.replace(partial, destination)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OperatorError(
            f"cannot write the picture to {destination}: {exc.strerror or exc}",
            hint="pass --picture a path in a folder that exists and that you may write to",
        ) from exc


def write_timeline(destination: Path, plan: LocalPlan, source: Path) -> tuple[str, ...]:
    """The plan as a timeline in the format `destination`'s extension names, linking
    `source` where it is, written whole or not at all (timelines.write). Returns what the
    format leaves out; raises OperatorError naming the path when it cannot be written."""
    from nemowatch import timelines
    from nemowatch.errors import MediaError

    try:
        fmt = timelines.format_of(destination)
        missing = timelines.missing_package([fmt])
        if missing is not None:
            raise OperatorError(
                f"cannot write the timeline {destination}: {missing} is not installed",
                hint=timelines.INSTALL_HINT,
            )
        built = timelines.build(plan.draft, fmt, source=source)
        timelines.write(built, fmt, destination)
    except MediaError as exc:
        raise OperatorError(exc.message, hint=exc.hint) from exc  # it names the path
    return built.left_out


def describe_routing(path: Path, rule: Rule) -> str:
    """What the nemo engine does with each instruction of `rule` for `path`: each clause
    "→ chat", "→ export settings (...)", or left out and why (`language.routing`)."""
    lines = [f"{path.name}: rule {rule.name!r}, engine nemo (the cloud plans the edit)"]
    if not rule.instructions:
        lines.append("  no instructions: the file is uploaded and rendered as it is")
    for instruction in rule.instructions:
        lines.append(f'  "{instruction}"')
        for clause in route(instruction).clauses:
            if clause.route is Route.EXPORT:
                named = ", ".join(f"{key} {value}" for key, value in clause.export.items())
                where = f"export settings ({named})" if named else "export settings"
            elif clause.route is Route.CHAT:
                where = "chat"
            else:
                where = f"{clause.route.value}, not sent: {clause.reason}"
            lines.append(f'    "{clause.text}" → {where}')
    return "\n".join(lines)


def _names(rules: Iterable[Rule]) -> str:
    return ", ".join(rule.name for rule in rules)
