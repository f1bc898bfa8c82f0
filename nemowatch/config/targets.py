"""Several outputs per rule: `outputs:` as a list of targets, each with its own name, file
name template, frame (aspect, fit) and export (format, resolution, quality, fps).

    outputs:
      - {name: youtube, file: "{stem}-youtube.mp4", aspect: "16:9", resolution: 1080p}
      - {name: shorts, file: "{stem}-shorts.mp4", aspect: "9:16", resolution: 1080p}

All of a job's outputs come from one analysis and one edit plan; each is rendered,
verified and published in turn, and the ledger records each one published (by name), so a
restarted job makes only the missing ones. `outputs: "{stem}.mp4"` (a template) is one
output, named "" (`SINGLE`), as it always was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from nemowatch.engines.base import Frame
from nemowatch.rules import ExportSpec, Frozen, Quality

if TYPE_CHECKING:
    from nemowatch.config.checks import Loaded
    from nemowatch.config.models import Rule
    from nemowatch.errors import ConfigProblem

SINGLE = ""  # the name of a rule's one output, when `outputs` is a template
TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class OutputTarget(Frozen):
    """One output of a rule: its own name and file, and what it changes of the rule's
    frame (`edit.aspect`, `edit.fit`) and export; unset keys keep the rule's."""

    name: str
    file: str | None = None  # a template as `outputs` takes; None: "{stem}-<name>.<format>"
    aspect: Literal["16:9", "9:16", "1:1", "4:5"] | None = None
    fit: Literal["crop", "blur", "pad"] | None = None
    format: Literal["mp4", "mov", "webm", "gif"] | None = None
    resolution: (
        Literal["source", "240p", "360p", "480p", "720p", "1080p", "1440p", "2160p"] | None
    ) = None
    quality: Quality | None = None
    fps: float | None = Field(default=None, gt=0.0, le=120.0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TARGET_NAME.match(value):
            raise ValueError(
                "use letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("aspect", mode="before")
    @classmethod
    def _unquoted_aspect(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 16:9 as the base-60 number 969: take it back
        if isinstance(value, int) and not isinstance(value, bool):
            minutes, seconds = divmod(value, 60)
            return f"{minutes}:{seconds}"
        return value

    def export_spec(self, rule_export: ExportSpec) -> ExportSpec:
        """The rule's export with what this output sets instead (set fields stay set, so
        the instructions' export phrases still fill only what neither says)."""
        own = self.model_dump(include={"format", "resolution", "quality", "fps"}, exclude_none=True)
        return ExportSpec.model_validate({**rule_export.model_dump(exclude_unset=True), **own})

    def template(self, rule_export: ExportSpec) -> str:
        return self.file or f"{{stem}}-{self.name}.{self.export_spec(rule_export).format}"


@dataclass(frozen=True)
class Target:
    """One output of a job as the pipeline makes it."""

    name: str  # SINGLE for a rule's one output
    template: str  # the file name template, inside the outbox
    export: ExportSpec
    frame: Frame


def targets_of(rule: Rule) -> tuple[Target, ...]:
    """A rule's outputs, in the order they are made (a template: one, named SINGLE)."""
    if isinstance(rule.outputs, str):
        return (Target(SINGLE, rule.outputs, rule.export, Frame()),)
    return tuple(
        Target(
            name=item.name,
            template=item.template(rule.export),
            export=item.export_spec(rule.export),
            frame=Frame(output=item.name, aspect=item.aspect, fit=item.fit),
        )
        for item in rule.outputs
    )


def targets_problems(item: Loaded) -> list[ConfigProblem]:
    """What is wrong with a list of outputs: names or files used twice, and each file
    template (fields, extension against its format, leaving the outbox)."""
    from nemowatch.config.checks import outputs_problems

    rule, origin = item.rule, item.origin
    if isinstance(rule.outputs, str):
        return []
    problems = []
    if not rule.outputs:
        return [origin.problem(("outputs",), "needs at least one output (or a template)")]
    names: dict[str, int] = {}
    files: dict[str, int] = {}
    for index, target in enumerate(rule.outputs):
        twice = target.name in names
        if twice:
            where = origin.where(("outputs", names[target.name], "name"), origin)
            message = f'duplicate output name "{target.name}" (first used at {where})'
            problems.append(origin.problem(("outputs", index, "name"), message))
        names.setdefault(target.name, index)
        template = target.template(rule.export)
        at = ("outputs", index, "file") if target.file else ("outputs", index)
        known_format = item.knows("export") or target.format is not None
        export_format = target.export_spec(rule.export).format if known_format else None
        said = f"outputs[{index}].format" if target.format else "export.format"
        texts = outputs_problems(template, export_format, said)
        problems.extend(origin.problem(at, text) for text in texts)
        if not texts and template in files and not (twice and target.file is None):
            # (a name used twice gives the same default file: said once, as the name)
            where = origin.where(("outputs", files[template]), origin)
            message = (
                f"{json.dumps(template)} is the file of output {files[template]} too (at"
                f" {where}); each output needs its own name, e.g. with -{target.name} in it"
            )
            problems.append(origin.problem(at, message))
        files.setdefault(template, index)
    return problems


# What the nemo engine's render request can say of an output (nemo-api.md, Export):
# `output: {format, quality}`. Its picture is the session's one draft.
NEMO_CANNOT = ("aspect", "fit", "resolution", "fps")


def nemo_targets_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
    """Outputs the nemo engine cannot make: its one session renders one draft, and a
    render request says only the format and quality, so an output's own aspect, fit,
    resolution or fps cannot be sent."""
    problems = []
    for item in loaded:
        outputs = item.rule.outputs
        if not item.knows("outputs") or isinstance(outputs, str):
            continue
        for index, target in enumerate(outputs):
            for key in NEMO_CANNOT:
                if getattr(target, key) is None:
                    continue
                problems.append(
                    item.origin.problem(
                        ("outputs", index, key),
                        f"the nemo engine cannot give one output its own {key}: its render"
                        " request says only format and quality (the picture is the"
                        f" session's one edit); remove {key} here, or use engine: local",
                    )
                )
    return problems
