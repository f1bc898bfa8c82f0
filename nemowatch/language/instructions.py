"""Free-text instructions -> EditSpec and export settings. Pure.

An instruction is split into clauses: at commas, semicolons, sentence ends, "and", "then"
and their Chinese counterparts (，、；。 然后 并), never inside quoted text. Each clause is
matched *whole* against a table of phrasings, in English and Simplified Chinese. A clause is
either understood (it sets EditSpec fields or export settings, or restates a default, such
as "export as mp4") or reported back verbatim as not understood: nothing is half-understood
and nothing is dropped silently.

The clauses of several instructions are read in order, as one text: a later clause refines
or replaces an earlier one ("cut out silences" then "cut more aggressively"). Where two
clauses *state* different values for one setting ("make it vertical" ... "16:9"),
`find_conflicts` says so; loading the config reports that as an error.

Choices a user may want to know:

- Trims are in source seconds, counted from the start; "cut the last 3 seconds" and "keep
  only the last 30 seconds" count from the end (`trim.cut_end`, `trim.last`), resolved
  against the source's duration when the edit is planned. "keep only the first 30
  seconds" ends the source at 30 s.
- Vague requests ("make it look better", 润色一下) ask for the one `enhance` preset, and
  `explain` says what it does (`rules.ENHANCE_DESCRIPTION`).
- "highlight reel" with no length means 60 seconds; a fade with no length, 1 second; music
  with no mood, lofi; "louder", 150 %; "quieter", 70 %.
- A music volume alone ("music at 35%") also asks for music.
- A kind of music with no built-in mood ("jazz", "piano", 电子) takes the nearest mood,
  and the description says so. A ratio, a name and a platform may all name the frame's
  shape ("vertical 9:16 for TikTok"); they must agree, and beside a named shape a platform
  is only a remark ("square for TikTok" is square).
- Quoted text (titles, captions, music files) is kept exactly as written, in '...', "...",
  “...”, ‘...’, 「...」 or 『...』.

This module reads clauses in order against `GRAMMAR`; the phrasings of each kind of edit,
and what they set, are in `effects`, `timing`, `frame`, `sound`, `speech`, `inputs` and
`export`;
splitting and normalizing clauses in `clauses`; numbers and durations in `numbers`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from nemowatch.language.clauses import Clause, split_clauses, to_clause
from nemowatch.language.effects import GRAMMAR as EFFECT_PHRASES
from nemowatch.language.export import GRAMMAR as EXPORT_PHRASES
from nemowatch.language.frame import GRAMMAR as FRAME_PHRASES
from nemowatch.language.inputs import GRAMMAR as INPUT_PHRASES
from nemowatch.language.readings import Handler, Reading
from nemowatch.language.sound import GRAMMAR as SOUND_PHRASES
from nemowatch.language.speech import GRAMMAR as SPEECH_PHRASES
from nemowatch.language.timing import GRAMMAR as TIMING_PHRASES
from nemowatch.rules import EditSpec, ExportSpec

# ---- what comes out --------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One understood clause: the phrase as written, and what it will do, in words."""

    phrase: str
    description: str  # fit to follow "will ", e.g. "cut silences below -28 dB"


@dataclass(frozen=True)
class Interpretation:
    """What the local engine makes of free-text instructions."""

    edit: EditSpec  # fields the text sets are in `edit.model_fields_set`
    operations: tuple[Operation, ...]
    not_understood: tuple[str, ...]  # clauses as written (stripped), in order
    # ExportSpec fields read from the text, e.g. {"resolution": "1080p", "fps": 30.0};
    # for `ExportSpec.merged`, so that the rule's own `export` wins
    export: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    """Two phrases of one rule's instructions that set one setting to different values."""

    instruction: int  # index of the instruction holding the later phrase
    phrase: str
    earlier_instruction: int
    earlier_phrase: str
    setting: str  # e.g. "aspect"
    earlier_value: str  # e.g. "9:16"
    value: str

    @property
    def message(self) -> str:
        """E.g. `"16:9" contradicts "make it vertical" (aspect 9:16 vs 16:9); keep one`."""
        return (
            f"{_shown(self.phrase)} contradicts {_shown(self.earlier_phrase)}"
            f" ({self.setting} {self.earlier_value} vs {self.value}); keep one"
        )


# ---- public functions ------------------------------------------------------------------------


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
    return interpret_all([text])


def interpret_all(texts: Iterable[str]) -> Interpretation:
    """Understand several instructions in order; a later clause wins where two set a field."""
    edit, export, steps = _read(texts)
    operations = tuple(
        Operation(step.phrase, step.reading.description) for step in steps if step.reading
    )
    not_understood = tuple(step.phrase for step in steps if step.reading is None)
    return Interpretation(edit, operations, not_understood, export)


def find_conflicts(texts: Sequence[str]) -> list[Conflict]:
    """Phrases that state a different value for a setting an earlier phrase already stated.

    Refinements are not conflicts: "cut out silences" then "cut more aggressively", or
    "add background music" then "add upbeat music" (only the second names a mood).
    """
    _, _, steps = _read(texts)
    stated: dict[str, tuple[str, _Step]] = {}  # setting -> (value, where it was stated)
    conflicts: list[Conflict] = []
    for step in steps:
        if step.reading is None:
            continue
        for setting, value in step.reading.claims:
            earlier = stated.get(setting)
            if earlier is not None and earlier[0] != value:
                earlier_value, earlier_step = earlier
                conflicts.append(
                    Conflict(
                        instruction=step.instruction,
                        phrase=step.phrase,
                        earlier_instruction=earlier_step.instruction,
                        earlier_phrase=earlier_step.phrase,
                        setting=setting,
                        earlier_value=earlier_value,
                        value=value,
                    )
                )
            stated[setting] = (value, step)
    return conflicts


# ---- reading clauses in order ----------------------------------------------------------------

# First match that gives a valid reading wins; every pattern must match the whole clause.
GRAMMAR: tuple[tuple[re.Pattern[str], Handler], ...] = (
    # effects first: "play it 3 times" is a loop, not timing's speed "play it 3x"
    *EFFECT_PHRASES,
    *TIMING_PHRASES,
    *FRAME_PHRASES,
    *SOUND_PHRASES,
    *SPEECH_PHRASES,
    *INPUT_PHRASES,
    # export settings; last, as its lead words ("export as ...") open other phrases too
    *EXPORT_PHRASES,
)


@dataclass(frozen=True)
class _Step:
    instruction: int
    phrase: str
    reading: Reading | None  # None: not understood


def _read(texts: Iterable[str]) -> tuple[EditSpec, dict[str, object], list[_Step]]:
    """Every clause of `texts` read in order, each seeing the edit the earlier ones made."""
    edit = EditSpec()
    export: dict[str, object] = {}
    steps: list[_Step] = []
    for index, text in enumerate(texts):
        for phrase in split_clauses(text):
            clause = to_clause(phrase)
            if not clause.normalized:
                continue  # only filler words, such as a lone "please"
            reading = _understand(clause, edit)
            if reading is not None:
                edit = edit.model_copy(update=dict(reading.edit))
                earlier = export.get("timelines")
                export.update(reading.export)
                later = export.get("timelines")
                # timelines add up: "export a Premiere and a Resolve timeline" is two clauses
                if isinstance(earlier, tuple) and isinstance(later, tuple) and later != earlier:
                    export["timelines"] = tuple(dict.fromkeys((*earlier, *later)))
            steps.append(_Step(index, phrase, reading))
    return edit, export, steps


def _understand(clause: Clause, edit: EditSpec) -> Reading | None:
    """The first reading of the grammar that fits the whole clause and gives valid values."""
    for pattern, handler in GRAMMAR:
        found = pattern.fullmatch(clause.normalized) or pattern.fullmatch(clause.compact)
        if found is None:
            continue
        reading = handler(found, clause, edit)
        if reading is not None:
            validated = _validated(reading)
            if validated is not None:
                return validated
    return None


def _validated(reading: Reading) -> Reading | None:
    """The reading with its values checked and coerced as the rule file's would be.

    Out-of-range values ("speed it up 10x", "music at 150%") make the clause not understood
    rather than silently clamped.
    """
    try:
        edit = EditSpec.model_validate(dict(reading.edit))
        export = ExportSpec.model_validate(dict(reading.export))
    except ValidationError:
        return None
    return Reading(
        reading.description,
        {name: getattr(edit, name) for name in reading.edit},
        {name: getattr(export, name) for name in reading.export},
        reading.claims,
    )


def _shown(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
