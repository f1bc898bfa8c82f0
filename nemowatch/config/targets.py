"""Several outputs per rule: `outputs:` as a list of targets, each with its own name, file
name template, frame (aspect, fit) and export (format, resolution, quality, fps).

    outputs:
      - {name: youtube, file: "{stem}-youtube.mp4", aspect: "16:9", resolution: 1080p}
      - {name: shorts, file: "{stem}-shorts.mp4", aspect: "9:16", resolution: 1080p}

All of a job's outputs come from one analysis and one edit plan; each is rendered,
verified and published in turn, and the ledger records each one published (by name), so a
restarted job makes only the missing ones. `outputs: "{stem}.mp4"` (a template) is one
output, named "" (`SINGLE`), as it always was. Which outputs a job makes, and how, is
`nemowatch.outputs` (`targets_of`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from nemowatch.rules import ExportSpec, Frozen, Quality, unquoted_aspect

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
        return unquoted_aspect(value)

    def export_spec(self, rule_export: ExportSpec) -> ExportSpec:
        """The rule's export with what this output sets instead (set fields stay set, so
        the instructions' export phrases still fill only what neither says)."""
        own = self.model_dump(include={"format", "resolution", "quality", "fps"}, exclude_none=True)
        return ExportSpec.model_validate({**rule_export.model_dump(exclude_unset=True), **own})

    def template(self, rule_export: ExportSpec) -> str:
        return self.file or f"{{stem}}-{self.name}.{self.export_spec(rule_export).format}"
