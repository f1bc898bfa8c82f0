"""Free-text instructions -> EditSpec, for the local engine. Pure.

An instruction is split into clauses (at commas, semicolons, sentence ends, "and",
"then"); each clause is either understood (it becomes part of the EditSpec, or is a
harmless no-op such as "export as mp4") or reported back verbatim as not understood.
Nothing is dropped silently: the user sees every phrase the local engine will ignore.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nemowatch.rules import EditSpec, SilenceCut

# "cut more aggressively": a higher threshold counts more as silence, a smaller margin
# keeps less of each pause.
AGGRESSIVE_SILENCE_CUT = SilenceCut(threshold_db=-24.0, margin=0.1)

_CLAUSE_SEPARATOR = re.compile(
    r"[,;!?\n]+|\.(?=\s|$)|\b(?:and|then|also|plus)\b", flags=re.IGNORECASE
)
_FILLER = re.compile(r"^(?:please|kindly|just|and|then|also)\b\s*|\s*\bplease$")

# A clause must be only a silence cut ("remove the long pauses from the video", "cut
# silences aggressively", "cut silences below -30 dB"): anything more is reported back,
# never half-understood.
_SILENCE_CUT = re.compile(
    r"""
    ^(?:cut|remove|trim|delete|drop|strip|skip|eliminate|get\ rid\ of|take|edit)
    (?:\ out)?
    (?:\ (?:all|the|any|every|of|long|longer|awkward|unnecessary|needless|empty|extra))*
    \ (?:silences?|silent|pauses?|dead\ air|gaps|quiet)
    (?:\ (?:parts?|bits?|sections?|segments?|stretches?|moments?|gaps))?
    (?:\ (?:from|in|of)\ (?:the|this|my)\ (?:video|clip|footage|recording|file))?
    (?:\ (?:more\ )?aggressively)?
    (?:\ (?:below|under|quieter\ than)\ -?\d+(?:\.\d+)?\ ?db)?
    $
    """,
    flags=re.VERBOSE,
)
_MORE_AGGRESSIVE = re.compile(
    r"^(?:cut|trim|edit|be)\ (?:(?:more|very|really)\ )?aggressive(?:ly)?(?:\ than\ usual)?$",
    flags=re.VERBOSE,
)
_AGGRESSIVE = re.compile(r"\baggressive(?:ly)?\b")
_THRESHOLD = re.compile(r"(-?\d+(?:\.\d+)?)\s*db\b")
_EXPORT_MP4 = re.compile(
    r"^(?:export|save|render|output|deliver)(?:\s+(?:it|this|the\s+(?:video|result)))?"
    r"(?:\s+(?:as|to|in|into))?(?:\s+an?)?(?:\s+(?:mp4|h\.?264))?(?:\s+(?:file|video))?$"
)


@dataclass(frozen=True)
class Operation:
    """One understood clause: the phrase as written, and what it will do, in words."""

    phrase: str
    description: str  # fit to follow "will ", e.g. "cut silences below -28 dB"


@dataclass(frozen=True)
class Interpretation:
    """What the local engine makes of free-text instructions."""

    edit: EditSpec
    operations: tuple[Operation, ...]
    not_understood: tuple[str, ...]  # clauses as written (stripped), in order


def parse_instruction(text: str) -> tuple[EditSpec, list[str]]:
    """The edit one instruction asks for, and its phrases the local engine does not understand."""
    interpretation = interpret(text)
    return interpretation.edit, list(interpretation.not_understood)


def parse_instructions(texts: Iterable[str]) -> tuple[EditSpec, list[str]]:
    """As `parse_instruction`, for several instructions (a later one wins on a conflict)."""
    interpretation = interpret_all(texts)
    return interpretation.edit, list(interpretation.not_understood)


def interpret(text: str) -> Interpretation:
    """Understand one free-text instruction, clause by clause."""
    edit = EditSpec()
    operations: list[Operation] = []
    not_understood: list[str] = []
    for clause in split_clauses(text):
        normalized = _normalize(clause)
        if not normalized:
            continue  # only filler words, such as a lone "please"
        understood = _understand(normalized, edit)
        if understood is None:
            not_understood.append(clause)
            continue
        edit, description = understood
        operations.append(Operation(phrase=clause, description=description))
    return Interpretation(edit, tuple(operations), tuple(not_understood))


def interpret_all(texts: Iterable[str]) -> Interpretation:
    """Understand several instructions in order; a later one wins where two set a field."""
    edit = EditSpec()
    operations: list[Operation] = []
    not_understood: list[str] = []
    for text in texts:
        interpretation = interpret(text)
        edit = edit.merged(interpretation.edit)
        operations.extend(interpretation.operations)
        not_understood.extend(interpretation.not_understood)
    return Interpretation(edit, tuple(operations), tuple(not_understood))


def split_clauses(text: str) -> list[str]:
    """The clauses of an instruction, stripped, empty ones left out."""
    parts = (part.strip(" \t.:-") for part in _CLAUSE_SEPARATOR.split(text))
    return [part for part in parts if part]


def describe_silence_cut(cut: SilenceCut) -> str:
    """A silence cut in words, e.g. "cut silences below -28 dB"."""
    return f"cut silences below {_number(cut.threshold_db)} dB"


def _understand(normalized: str, edit: EditSpec) -> tuple[EditSpec, str] | None:
    if _SILENCE_CUT.match(normalized) or _MORE_AGGRESSIVE.match(normalized):
        cut = _silence_cut(normalized)
        return edit.merged(EditSpec(cut_silences=cut)), describe_silence_cut(cut)
    if _EXPORT_MP4.match(normalized):
        return edit, "export as MP4"  # the only format there is: nothing to change
    return None


def _silence_cut(normalized: str) -> SilenceCut:
    cut = AGGRESSIVE_SILENCE_CUT if _AGGRESSIVE.search(normalized) else SilenceCut()
    threshold = _THRESHOLD.search(normalized)
    if threshold is not None:
        # "below 30 dB" means -30 dBFS: levels of digital audio are never above zero.
        value = -abs(float(threshold.group(1)))
        if value >= -90.0:
            cut = SilenceCut(threshold_db=value, margin=cut.margin, min_cut=cut.min_cut)
    return cut


def _normalize(clause: str) -> str:
    lowered = " ".join(clause.lower().split())
    previous = None
    while previous != lowered:  # "please just cut ..." has more than one filler word
        previous = lowered
        lowered = _FILLER.sub("", lowered).strip()
    return lowered


def _number(value: float) -> str:
    return f"{value:g}"
