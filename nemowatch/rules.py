"""The edit vocabulary (EditSpec, ExportSpec) and matching a path to a rule.

Everything here is pure: values and decisions, no filesystem access.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import PurePath
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from nemowatch.config import Rule


class Frozen(BaseModel):
    """Base for config values: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SilenceCut(Frozen):
    """Cut out silent stretches. Defaults follow auto-editor's proven ones."""

    threshold_db: float = Field(default=-28.0, le=0.0, ge=-90.0)  # audio below this is silence
    margin: float = Field(default=0.2, ge=0.0, le=5.0)  # seconds of silence kept by each cut
    min_cut: float = Field(default=0.2, ge=0.0, le=10.0)  # shorter silences are left in


class EditSpec(Frozen):
    """The structured form of an edit. Fields left at None are not applied."""

    cut_silences: SilenceCut | None = None

    @field_validator("cut_silences", mode="before")
    @classmethod
    def _expand_bool(cls, value: object) -> object:
        # shorthand: `cut_silences: true` means the defaults, `false` means off
        if value is True:
            return {}
        if value is False:
            return None
        return value

    def merged(self, other: EditSpec) -> EditSpec:
        """This spec with every field `other` sets explicitly laid over it."""
        updates = {name: getattr(other, name) for name in other.model_fields_set}
        return self.model_copy(update=updates)


class Quality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


RESOLUTIONS: dict[str, int] = {  # name -> the output's short side, in pixels
    "240p": 240,
    "360p": 360,
    "480p": 480,
    "720p": 720,
    "1080p": 1080,
    "1440p": 1440,
    "2160p": 2160,
}


class ExportSpec(Frozen):
    """How the result is encoded."""

    format: Literal["mp4"] = "mp4"
    resolution: Literal["source", "240p", "360p", "480p", "720p", "1080p", "1440p", "2160p"] = (
        "source"
    )
    quality: Quality = Quality.HIGH

    @property
    def short_side(self) -> int | None:
        """The target short side in pixels, or None to keep the source's size."""
        return RESOLUTIONS.get(self.resolution)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a file name matches any glob, case-insensitively (`*.MP4` is `*.mp4`)."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)


def rule_for(path: PurePath, rules: Sequence[Rule]) -> Rule | None:
    """The first rule whose inbox holds `path` and whose `match` accepts its name.

    A rule that is not recursive only takes files directly inside its inbox.
    """
    for rule in rules:
        try:
            relative = path.relative_to(rule.inbox)
        except ValueError:
            continue
        if len(relative.parts) > 1 and not rule.recursive:
            continue
        if matches(path.name, rule.match) and not matches(path.name, rule.ignore):
            return rule
    return None
