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

- Trims are in source seconds, counted from the start. "cut the last 3 seconds" needs the
  source's duration, which is unknown when rules are checked, so it is reported as not
  understood (`edit.trim.end` in the rule says it exactly). "keep only the first 30
  seconds" ends the source at 30 s.
- "highlight reel" with no length means 60 seconds; a fade with no length, 1 second; music
  with no mood, lofi; "louder", 150 %; "quieter", 70 %.
- A music volume alone ("music at 35%") also asks for music.
- Quoted text (titles, captions, music files) is kept exactly as written, in '...', "...",
  “...”, ‘...’, 「...」 or 『...』.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from nemowatch.rules import EditSpec, ExportSpec, SilenceCut, TextOverlay, Trim

# "cut more aggressively": a higher threshold counts more as silence, a smaller margin
# keeps less of each pause.
AGGRESSIVE_SILENCE_CUT = SilenceCut(threshold_db=-24.0, margin=0.1)
DEFAULT_HIGHLIGHT = 60.0  # seconds, for a highlight reel that names no length
DEFAULT_FADE = 1.0  # seconds
DEFAULT_MOOD = "lofi"
LOUDER = 1.5  # gain for "make it louder": clearly audible, still far from clipping limits
QUIETER = 0.7  # gain for "make it quieter"


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


def split_clauses(text: str) -> list[str]:
    """The clauses of an instruction, stripped, empty ones left out; quoted text stays whole."""
    quoted = [found.span() for found in _QUOTED_TEXT.finditer(text)]
    pieces: list[str] = []
    start = 0
    for separator in _CLAUSE_SEPARATOR.finditer(text):
        if any(begin <= separator.start() < end for begin, end in quoted):
            continue  # a title such as "Rock, Paper and Scissors" is one piece of text
        pieces.append(text[start : separator.start()])
        start = separator.end()
    pieces.append(text[start:])
    parts = (piece.strip(" \t\u3000.:-") for piece in pieces)
    return [part for part in parts if part]


def describe_silence_cut(cut: SilenceCut) -> str:
    """A silence cut in words, e.g. "cut silences below -28 dB"."""
    return f"cut silences below {_number(cut.threshold_db)} dB"


# ---- reading clauses in order ----------------------------------------------------------------

_SENTINEL = "\ue000"  # stands for one quoted text in a normalized clause (private use)

# An apostrophe is not a quote: a single quote opens after no letter and closes before none.
_QUOTED_TEXT = re.compile(
    r'"[^"]+"|“[^”]+”|「[^」]+」|『[^』]+』|(?<!\w)\'.+?\'(?!\w)|(?<!\w)‘.+?’(?!\w)', re.DOTALL
)
_CLAUSE_SEPARATOR = re.compile(
    r"[,;!?\n，、；。！？]+|\.(?=\s|$)"
    r"|\b(?:and(?!\s+out\b)|then|also|plus)\b"  # "fade in and out" is one clause
    r"|然后|并且|同时|以及|(?<!合)并",  # 合并 (merge) is a word, not "and"
    flags=re.IGNORECASE,
)
_FILLER = re.compile(
    r"^(?:please|kindly|just|and|then|also|plus|(?:can|could|would) you|i(?:'d like| want)"
    r"(?: you)? to)\b\s*|\s*\b(?:please|for me)$"
    r"|^(?:请|帮我|帮忙|麻烦|给我|然后|再|并且|还要|也|把(?:这个视频|视频|它|画面)?)\s*"
    r"|\s*(?:一下|吧|哦|啊|呀)$"
)


@dataclass(frozen=True)
class _Clause:
    phrase: str  # as written
    normalized: str  # lower case, single spaces, fillers dropped, quoted texts as _SENTINEL
    quoted: tuple[str, ...]  # the quoted texts, exactly as written, in order

    @property
    def compact(self) -> str:
        """Without spaces: how Chinese, written without them, is matched."""
        return self.normalized.replace(" ", "")


@dataclass(frozen=True)
class _Reading:
    """What one clause does."""

    description: str
    edit: Mapping[str, object] = field(default_factory=dict)  # EditSpec fields it sets
    export: Mapping[str, object] = field(default_factory=dict)  # ExportSpec fields it sets
    # (setting, value) pairs the phrase states outright, for finding contradictions;
    # a default filled in ("highlight reel" -> 60 s) is not stated, so it never contradicts
    claims: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Step:
    instruction: int
    phrase: str
    reading: _Reading | None  # None: not understood


_Handler = Callable[[re.Match[str], _Clause, EditSpec], _Reading | None]


def _read(texts: Iterable[str]) -> tuple[EditSpec, dict[str, object], list[_Step]]:
    """Every clause of `texts` read in order, each seeing the edit the earlier ones made."""
    edit = EditSpec()
    export: dict[str, object] = {}
    steps: list[_Step] = []
    for index, text in enumerate(texts):
        for phrase in split_clauses(text):
            clause = _clause(phrase)
            if not clause.normalized:
                continue  # only filler words, such as a lone "please"
            reading = _understand(clause, edit)
            if reading is not None:
                edit = edit.model_copy(update=dict(reading.edit))
                export.update(reading.export)
            steps.append(_Step(index, phrase, reading))
    return edit, export, steps


def _understand(clause: _Clause, edit: EditSpec) -> _Reading | None:
    """The first reading of the grammar that fits the whole clause and gives valid values."""
    for pattern, handler in _GRAMMAR:
        found = pattern.fullmatch(clause.normalized) or pattern.fullmatch(clause.compact)
        if found is None:
            continue
        reading = handler(found, clause, edit)
        if reading is not None:
            validated = _validated(reading)
            if validated is not None:
                return validated
    return None


def _validated(reading: _Reading) -> _Reading | None:
    """The reading with its values checked and coerced as the rule file's would be.

    Out-of-range values ("speed it up 10x", "music at 150%") make the clause not understood
    rather than silently clamped.
    """
    try:
        edit = EditSpec.model_validate(dict(reading.edit))
        export = ExportSpec.model_validate(dict(reading.export))
    except ValidationError:
        return None
    return _Reading(
        reading.description,
        {name: getattr(edit, name) for name in reading.edit},
        {name: getattr(export, name) for name in reading.export},
        reading.claims,
    )


def _clause(phrase: str) -> _Clause:
    quoted: list[str] = []

    def hide(found: re.Match[str]) -> str:
        quoted.append(found[0][1:-1])
        return f" {_SENTINEL} "

    # NFKC folds full-width forms ("１０８０ｐ", "：", "％") into the ASCII that patterns use.
    text = unicodedata.normalize("NFKC", _QUOTED_TEXT.sub(hide, phrase)).lower()
    text = " ".join(text.replace("’", "'").split())
    previous = None
    while previous != text:  # "please just cut ..." has more than one filler word
        previous = text
        text = _FILLER.sub("", text).strip()
    return _Clause(phrase, text, tuple(quoted))


# ---- numbers, durations, percentages ---------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1.0,
    "two": 2.0,
    "three": 3.0,
    "four": 4.0,
    "five": 5.0,
    "six": 6.0,
    "seven": 7.0,
    "eight": 8.0,
    "nine": 9.0,
    "ten": 10.0,
    "fifteen": 15.0,
    "twenty": 20.0,
    "thirty": 30.0,
    "forty-five": 45.0,
    "forty": 40.0,
    "fifty": 50.0,
    "sixty": 60.0,
    "ninety": 90.0,
}
_CHINESE_DIGITS = {digit: value for value, digit in enumerate("零一二三四五六七八九")} | {
    "〇": 0,
    "两": 2,
}
_NUMBER = (
    r"\d+(?:\.\d+)?|"
    + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    + r"|[零〇一二两三四五六七八九十百]+"
)
_UNIT = r"seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|秒钟?|分钟|分"
_FRAGMENTS = {
    "num": _NUMBER,
    # "5 seconds", "60-second", "a minute", "一分钟", or a clock time "1:30"
    "dur": rf"(?:{_NUMBER}|an?) ?-?(?:{_UNIT})(?![a-z])|\d+:\d{{2}}(?::\d{{2}})?(?:\.\d+)?",
    "pct": r"\d+(?:\.\d+)? ?(?:%|percent|per cent)",
    "times": rf"(?:{_NUMBER}) ?(?:x|×|times|倍)(?![a-z])",
}
_DURATION_PARTS = re.compile(rf"(?P<number>{_NUMBER}|an?) ?-?(?P<unit>{_UNIT})")
_LEADING_NUMBER = re.compile(r"^(\d+(?:\.\d+)?).*$")
_MACRO = re.compile(r"<(num|dur|pct|times):(\w+)>")


def _pattern(text: str) -> re.Pattern[str]:
    """A regex with macros: `<dur:length>` is a named duration, `<q>` one quoted text."""
    expanded = _MACRO.sub(lambda found: f"(?P<{found[2]}>{_FRAGMENTS[found[1]]})", text)
    return re.compile(expanded.replace("<q>", _SENTINEL))


def _value(text: str) -> float:
    """A number written in digits, English words or Chinese numerals."""
    if text[0].isdigit():
        return float(text)
    if text in ("a", "an"):
        return 1.0
    if text in _NUMBER_WORDS:
        return _NUMBER_WORDS[text]
    total, current = 0, 0
    for character in text:  # 三十五 = 3 * 10 + 5; 一百二十 = 100 + 20
        if character in _CHINESE_DIGITS:
            current = _CHINESE_DIGITS[character]
        else:
            total += (current or 1) * (100 if character == "百" else 10)
            current = 0
    return float(total + current)


def _seconds(text: str) -> float:
    """Seconds from "1:30", "90s", "1 minute", "60-second", "一分钟"."""
    if ":" in text:
        total = 0.0
        for part in text.split(":"):
            total = total * 60 + float(part)
        return total
    found = _DURATION_PARTS.fullmatch(text)
    assert found is not None, text  # only called on what the "dur" fragment matched
    unit = found["unit"]
    scale = 3600.0 if unit.startswith("h") else 60.0 if unit[0] in "m分" else 1.0
    return _value(found["number"]) * scale


def _fraction(text: str) -> float:
    """0.35 from "35%" or "35 percent"."""
    return float(_LEADING_NUMBER.sub(r"\1", text)) / 100.0


def _times(text: str) -> float:
    """2.0 from "2x", "2 times", "两倍"."""
    return _value(re.sub(r" ?(?:x|×|times|倍)$", "", text))


def _group(found: re.Match[str], name: str) -> str | None:
    """A named group's text, or None when the pattern has no such group or it did not match."""
    value = found.groupdict().get(name)
    return value if isinstance(value, str) else None


def _number(value: float) -> str:
    return f"{value:g}"


def _time(seconds: float) -> str:
    """A length: "3 s", "90 s"."""
    return f"{_number(seconds)} s"


def _clock(seconds: float) -> str:
    """A position in the source: "0:05", "1:30", "1:02:03.5"."""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{hours}:{minutes:02d}:" if hours else f"{minutes}:"
    return text + (f"{rest:04.1f}" if rest % 1 else f"{int(rest):02d}")


def _percent(fraction: float) -> str:
    return f"{_number(round(fraction * 100, 2))} %"


def _shown(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# ---- silences --------------------------------------------------------------------------------

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
_SILENCE_CUT_ZH = (
    r"(?:自动)?(?:去掉|去除|删掉|删除|剪掉|剪去|剪除|移除|切掉|跳过)(?:视频(?:中|里)?的?)?"
    r"(?:所有|全部|多余|中间|无用)?的?(?:静音|停顿|沉默|空白|无声|冷场)的?(?:部分|片段|段落|段|时间)?"
)
_MORE_AGGRESSIVE_ZH = r"(?:剪得?|剪辑得?)?(?:更|再)(?:激进|狠|紧凑)(?:一点|一些|些)?"
_AGGRESSIVE = re.compile(r"\baggressive(?:ly)?\b|激进|狠|紧凑")
_THRESHOLD = re.compile(r"(-?\d+(?:\.\d+)?)\s*db\b")


def _cut_silences(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    # A plain "cut out silences" keeps an earlier refinement ("cut more aggressively").
    cut = edit.cut_silences or SilenceCut()
    claims: list[tuple[str, str]] = []
    if _AGGRESSIVE.search(found.string):
        cut = cut.model_copy(
            update={
                "threshold_db": AGGRESSIVE_SILENCE_CUT.threshold_db,
                "margin": AGGRESSIVE_SILENCE_CUT.margin,
            }
        )
        claims.append(("silence threshold", f"{_number(cut.threshold_db)} dB"))
    threshold = _THRESHOLD.search(found.string)
    if threshold is not None:
        # "below 30 dB" means -30 dBFS: levels of digital audio are never above zero.
        value = -abs(float(threshold.group(1)))
        if value < -90.0:
            return None
        cut = cut.model_copy(update={"threshold_db": value})
        claims.append(("silence threshold", f"{_number(value)} dB"))
    return _Reading(describe_silence_cut(cut), {"cut_silences": cut}, claims=tuple(claims))


# ---- trim ------------------------------------------------------------------------------------

_OF_SOURCE = r"(?: of (?:the |this )?(?:video|clip|footage|source|recording))?"
_TRIM_VERB = r"(?:trim|cut|remove|skip|drop|delete|chop|lose)(?: off| out)?"


def _trim(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    # Only what the phrase names changes: "trim the first 5 seconds" keeps an earlier end.
    start_text, end_text = _group(found, "start"), _group(found, "end")
    start = _seconds(start_text) if start_text else (edit.trim.start if edit.trim else 0.0)
    end = _seconds(end_text) if end_text else (edit.trim.end if edit.trim else None)
    if end is not None and end <= start:
        return None
    claims = []
    if start_text:
        claims.append(("trim start", _clock(start)))
    if end_text:
        claims.append(("trim end", _clock(end or 0.0)))
    trim = Trim(start=start, end=end)
    return _Reading(_describe_trim(trim), {"trim": trim}, claims=tuple(claims))


def _describe_trim(trim: Trim) -> str:
    if trim.end is None:
        return f"start the source at {_clock(trim.start)}"
    if trim.start == 0:
        return f"keep only the first {_time(trim.end)} of the source"
    return f"keep the source from {_clock(trim.start)} to {_clock(trim.end)}"


# ---- length ----------------------------------------------------------------------------------

_ASPECT_WORD = (
    r"(?P<aspect>9:16|16:9|1:1|4:5|vertical|square|horizontal|landscape|portrait|widescreen)"
)
_MAKE = (
    r"(?:(?:export|cut|edit|turn|make|create|render|produce|build|save|give me|generate|output)"
    r"(?: it| this| the (?:video|clip|footage))?(?: (?:as|into|to|in))? )?"
)


def _highlight(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    spoken = _group(found, "length") or _group(found, "length2")
    # A reel that names no length keeps a length said elsewhere ("keep it under 45 s").
    length = _seconds(spoken) if spoken else (edit.max_duration or DEFAULT_HIGHLIGHT)
    updates: dict[str, object] = {"max_duration": length}
    claims = [("length", _time(length))] if spoken else []
    description = f"make a {_time(length)} highlight reel"
    aspect_word = _group(found, "aspect")
    if aspect_word:
        aspect = _ASPECTS[aspect_word]
        updates["aspect"] = aspect
        claims.append(("aspect", aspect))
        description += f" in {aspect}"
    return _Reading(description, updates, claims=tuple(claims))


def _max_duration(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    length = _seconds(found["length"])
    return _Reading(
        f"keep the result under {_time(length)} (the best moments)",
        {"max_duration": length},
        claims=(("length", _time(length)),),
    )


# ---- speed -----------------------------------------------------------------------------------


def _speed(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    return _speed_reading(_times(found["factor"]))


def _slower(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    # "slow it down 2x" and "slow down to 0.5x" both mean half speed
    factor = _times(found["factor"])
    return _speed_reading(factor if factor < 1 else 1 / factor)


def _fixed_speed(factor: float) -> _Handler:
    def handler(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
        return _speed_reading(factor)

    return handler


def _speed_reading(factor: float) -> _Reading:
    return _Reading(
        f"play at {_number(factor)}x speed", {"speed": factor}, claims=(("speed", f"{factor:g}x"),)
    )


# ---- aspect and fit --------------------------------------------------------------------------

_ASPECTS = {
    "9:16": "9:16",
    "vertical": "9:16",
    "portrait": "9:16",
    "竖屏": "9:16",
    "竖版": "9:16",
    "竖向": "9:16",
    "16:9": "16:9",
    "horizontal": "16:9",
    "landscape": "16:9",
    "widescreen": "16:9",
    "横屏": "16:9",
    "横版": "16:9",
    "横向": "16:9",
    "1:1": "1:1",
    "square": "1:1",
    "方形": "1:1",
    "正方形": "1:1",
    "4:5": "4:5",
    "4:5 portrait": "4:5",
    "portrait 4:5": "4:5",
}
# "instagram" alone is left out on purpose: its feed is square, its reels vertical.
_PLATFORMS = {
    "tiktok": "9:16",
    "reels": "9:16",
    "instagram reels": "9:16",
    "shorts": "9:16",
    "youtube shorts": "9:16",
    "stories": "9:16",
    "instagram stories": "9:16",
    "instagram feed": "1:1",
    "the instagram feed": "1:1",
    "youtube": "16:9",
    "抖音": "9:16",
    "快手": "9:16",
    "视频号": "9:16",
}
_PLATFORM = (
    r"(?P<platform>tiktok|(?:instagram )?reels|(?:youtube )?shorts|(?:instagram )?stories"
    r"|(?:the )?instagram feed|youtube)"
)
_FIT_TAIL = (
    r"(?: (?P<fit>with (?:a )?(?:blurred|blurry|blur) (?:background|sides|edges)|with black bars"
    r"|with (?:letterboxing|letterbox|padding)|(?:cropped|crop) to fill|by cropping|letterboxed"
    r"|padded))?"
)
_FIT_WORDS = {
    "blur": "with a blurred background",
    "crop": "cropped to fill",
    "pad": "with black bars",
}
_Fit = Literal["crop", "blur", "pad"]


def _fit_of(text: str) -> _Fit:
    if "blur" in text or "模糊" in text:
        return "blur"
    if "crop" in text or "裁" in text:
        return "crop"
    return "pad"  # black bars, letterbox, padding, 黑边


def _aspect(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    word, platform = _group(found, "aspect"), _group(found, "platform")
    aspect = _ASPECTS[word] if word else _PLATFORMS[platform or ""]
    updates: dict[str, object] = {"aspect": aspect}
    claims = [("aspect", aspect)]
    # "crop to 9:16" and "9:16 with black bars" say how, too
    verb = _group(found, "verb")
    how = _group(found, "fit") or (verb if verb in ("crop", "pad", "letterbox") else None)
    fit = _fit_of(how) if how else edit.fit
    if how:
        updates["fit"] = fit
        claims.append(("fit", fit))
    return _Reading(f"reframe to {aspect} {_FIT_WORDS[fit]}", updates, claims=tuple(claims))


def _fit(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    fit = _fit_of(found.string)
    return _Reading(
        f"fill a new frame shape {_FIT_WORDS[fit]}", {"fit": fit}, claims=(("fit", fit),)
    )


# ---- titles and text -------------------------------------------------------------------------

_OVERLAY_VERB = r"(?:add|put|show|display|insert|use|include|overlay|with|set|write|place)"
_POSITIONS = {
    "top": "top",
    "顶部": "top",
    "上方": "top",
    "顶端": "top",
    "上面": "top",
    "bottom": "bottom",
    "底部": "bottom",
    "下方": "bottom",
    "底端": "bottom",
    "下面": "bottom",
}  # anything else named is the center
_SIZES = {"tiny": 0.04, "small": 0.05, "large": 0.1, "big": 0.1, "huge": 0.14}
_OptionReader = Callable[[re.Match[str]], dict[str, object]]


def _overlay_options() -> tuple[tuple[re.Pattern[str], _OptionReader], ...]:
    def position(found: re.Match[str]) -> dict[str, object]:
        return {"position": _POSITIONS.get(found["position"], "center")}

    def start(found: re.Match[str]) -> dict[str, object]:
        return {"start": _seconds(found["start"])}

    def duration(found: re.Match[str]) -> dict[str, object]:
        return {"duration": _seconds(found["duration"])}

    def size(found: re.Match[str]) -> dict[str, object]:
        return {"size": _SIZES[found["size"]]}

    def at_start(found: re.Match[str]) -> dict[str, object]:
        return {"start": 0.0}

    options: list[tuple[str, _OptionReader]] = [
        (
            r"\s*(?:(?:at|on|in|to|across) )?(?:the )?(?P<position>top|bottom|center|centre|middle)"
            r"(?: of the (?:screen|frame|video))?",
            position,
        ),
        (r"\s*(?:(?:at|in) )?the (?:start|beginning)(?: of the video)?", at_start),
        (r"\s*(?:from|starting at|starting from|beginning at|at|after) <dur:start>", start),
        (r"\s*(?:for(?: the first)?|lasting|during) <dur:duration>", duration),
        (r"\s*<dur:duration>(?: long)?", duration),
        (r"\s*(?:in )?(?P<size>large|big|small|huge|tiny)(?: (?:text|font|letters|type))?", size),
        (r"\s*(?:显示|持续|停留|展示)<dur:duration>", duration),
        (
            r"\s*(?:在|放在|位于|显示在)?(?:画面)?"
            r"(?P<position>顶部|上方|顶端|上面|底部|下方|底端|下面|中间|中央|居中|正中)",
            position,
        ),
        (r"\s*从第?<dur:start>(?:开始)?", start),
    ]
    return tuple((_pattern(option), reader) for option, reader in options)


_OVERLAY_OPTIONS = _overlay_options()


def _options(
    text: str, options: Sequence[tuple[re.Pattern[str], _OptionReader]]
) -> dict[str, object] | None:
    """The values a run of options gives ("at the top for 3 seconds"); None if any is unknown."""
    text = text.rstrip()
    values: dict[str, object] = {}
    position = 0
    while position < len(text):
        for option, reader in options:
            found = option.match(text, position)
            if found is not None and found.end() > position:
                values.update(reader(found))
                position = found.end()
                break
        else:
            return None
    return values


def _overlay(text: str, tail: str) -> TextOverlay | None:
    options = _options(tail, _OVERLAY_OPTIONS)
    if options is None:
        return None
    try:
        return TextOverlay.model_validate({"text": text, **options})
    except ValidationError:
        return None  # empty, or longer than a title can be


def _title(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    overlay = _overlay(clause.quoted[0], _group(found, "tail") or "")
    if overlay is None:
        return None
    return _Reading(
        _describe_overlay("the title ", overlay),
        {"title": overlay},
        claims=(("title", f'"{overlay.text}"'),),
    )


_AFTER_COLON = re.compile(r"(?:title|标题)\s*[:：]\s*", re.IGNORECASE)


def _unquoted_title(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    # "title: Urban Dreams": the text is the rest of the phrase as written, case and all
    after = _AFTER_COLON.search(clause.phrase)
    if after is None:
        return None
    overlay = _overlay(clause.phrase[after.end() :].strip(), "")
    if overlay is None:
        return None
    return _Reading(
        _describe_overlay("the title ", overlay),
        {"title": overlay},
        claims=(("title", f'"{overlay.text}"'),),
    )


def _text(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    overlay = _overlay(clause.quoted[0], _group(found, "tail") or "")
    if overlay is None:
        return None
    # Overlays add up: several captions are not a contradiction.
    return _Reading(_describe_overlay("", overlay), {"texts": (*edit.texts, overlay)})


def _describe_overlay(what: str, overlay: TextOverlay) -> str:
    where = "in the center" if overlay.position == "center" else f"at the {overlay.position}"
    return (
        f'show {what}"{overlay.text}" {where}'
        f" from {_time(overlay.start)} for {_time(overlay.duration)}"
    )


# ---- music -----------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_MOODS = {  # a word for a kind of music -> the built-in mood closest to it
    **dict.fromkeys(_words("lofi lo-fi chill chilled chillhop 低保真"), "lofi"),
    **dict.fromkeys(
        _words("upbeat energetic happy fun lively uplifting cheerful exciting")
        + _words("欢快 动感 活泼 激昂 快节奏 热闹 欢乐"),
        "upbeat",
    ),
    **dict.fromkeys(
        _words("calm relaxing relaxed soft gentle ambient peaceful soothing mellow quiet")
        + _words("轻松 舒缓 安静 放松 柔和 平静 抒情"),
        "calm",
    ),
}

_MOOD = "(?P<mood>{})".format(
    "|".join(sorted((mood for mood in _MOODS if mood.isascii()), key=len, reverse=True))
)
_MOOD_ZH = "(?P<mood>{}|lofi|lo-fi|chill)".format(
    "|".join(mood for mood in _MOODS if not mood.isascii())
)
_MUSIC_VERB = r"(?:add|play|put|use|include|insert|lay|put on|give it|with|set|throw in|put in)"
_MUSIC_VOLUME = r"(?: at <pct:volume>(?: volume)?)?"
_NEGATION = re.compile(r"\b(?:without|no|not)\b")
_SPEECH = r"(?:speech|the voice|voices?|talking|dialogue|someone (?:speaks|talks)|people talk)"


def _music(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    mood = _group(found, "mood")
    path = clause.quoted[0] if clause.quoted else None
    # "add background music" names no mood: it keeps one named elsewhere
    music = path or (_MOODS[mood] if mood else edit.music or DEFAULT_MOOD)
    updates: dict[str, object] = {"music": music}
    claims = [("music", music)] if path or mood else []
    volume_text, duck_text = _group(found, "volume"), _group(found, "duck")
    volume, duck = edit.music_volume, edit.duck
    if volume_text:
        volume = updates["music_volume"] = _fraction(volume_text)
        claims.append(("music volume", _percent(volume)))
    if duck_text:
        duck = updates["duck"] = _NEGATION.search(duck_text) is None
        claims.append(("ducking", "on" if duck else "off"))
    return _Reading(_describe_music(music, volume, duck), updates, claims=tuple(claims))


def _music_volume(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    # a volume for music that was not asked for yet still asks for it
    music, volume = edit.music or DEFAULT_MOOD, _fraction(found["volume"])
    return _Reading(
        _describe_music(music, volume, edit.duck),
        {"music": music, "music_volume": volume},
        claims=(("music volume", _percent(volume)),),
    )


def _duck(duck: bool) -> _Handler:
    def handler(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
        description = "lower the music under speech" if duck else "keep the music at one level"
        return _Reading(description, {"duck": duck}, claims=(("ducking", "on" if duck else "off"),))

    return handler


def _describe_music(music: str, volume: float, duck: bool) -> str:
    what = f"{music} music" if music in _MOODS.values() else f'music from "{music}"'
    ducked = "ducked under speech" if duck else "not ducked"
    return f"add {what} at {_percent(volume)}, {ducked}"


# ---- fades -----------------------------------------------------------------------------------


def _fade(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    direction = found["direction"]
    both = any(word in direction for word in ("and", "/", "&", "淡入淡出", "淡入和淡出"))
    fade_in = both or direction in ("in", "from black", "淡入")
    spoken = _group(found, "length") or _group(found, "length2")
    lengths: dict[str, float] = {}
    claims: list[tuple[str, str]] = []
    for name, wanted in (("fade_in", fade_in), ("fade_out", both or not fade_in)):
        if not wanted:
            continue
        earlier: float | None = getattr(edit, name)
        # A fade that names no length keeps one named elsewhere, else lasts a second.
        lengths[name] = _seconds(spoken) if spoken else earlier or DEFAULT_FADE
        if spoken:
            claims.append((name.replace("_", " "), _time(lengths[name])))
    if len(lengths) == 2 and lengths["fade_in"] == lengths["fade_out"]:
        description = f"fade in and out over {_time(lengths['fade_in'])}"
    else:
        description = "fade " + " and ".join(
            f"{name.removeprefix('fade_')} over {_time(length)}" for name, length in lengths.items()
        )
    return _Reading(description, lengths, claims=tuple(claims))


# ---- the source's audio ----------------------------------------------------------------------


def _mute(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    return _Reading("mute the original audio", {"mute": True})


def _volume(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    level = _group(found, "level")
    change = _group(found, "change")
    if level:
        gain = _fraction(level)
    elif _group(found, "down") is not None:
        gain = 1.0 - (_fraction(change) if change else 1.0 - QUIETER)
    else:
        gain = 1.0 + (_fraction(change) if change else LOUDER - 1.0)
    gain = round(gain, 4)
    return _Reading(
        f"play the original audio at {_percent(gain)}",
        {"volume": gain},
        claims=(("volume", _percent(gain)),),
    )


def _normalize(on: bool) -> _Handler:
    def handler(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
        description = "normalize loudness to -14 LUFS" if on else "leave the loudness as recorded"
        return _Reading(
            description, {"normalize": on}, claims=(("normalize", "on" if on else "off"),)
        )

    return handler


# ---- export ----------------------------------------------------------------------------------

_RESOLUTION_NAMES = {
    "4k": "2160p",
    "uhd": "2160p",
    "2k": "1440p",
    "qhd": "1440p",
    "full hd": "1080p",
    "fhd": "1080p",
}
_FORMAT_NAMES = {"h264": "mp4", "h.264": "mp4", "quicktime": "mov"}
_QUALITIES = {
    **dict.fromkeys(("high", "higher", "best", "top", "max", "maximum", "good", "高"), "high"),
    **dict.fromkeys(("medium", "normal", "standard", "中"), "medium"),
    **dict.fromkeys(("low", "lower", "低"), "low"),
}


def _export_options() -> tuple[tuple[re.Pattern[str], _OptionReader], ...]:
    def resolution(found: re.Match[str]) -> dict[str, object]:
        name = found["resolution"]
        return {"resolution": _RESOLUTION_NAMES.get(name, name)}

    def export_format(found: re.Match[str]) -> dict[str, object]:
        name = found["format"]
        return {"format": _FORMAT_NAMES.get(name, name)}

    def fps(found: re.Match[str]) -> dict[str, object]:
        return {"fps": _value(found["fps"])}

    def quality(found: re.Match[str]) -> dict[str, object]:
        return {"quality": _QUALITIES[found["quality"]]}

    def nothing(found: re.Match[str]) -> dict[str, object]:
        return {}

    options: list[tuple[str, _OptionReader]] = [
        (
            r"\s*(?:(?:as|in|at|to|into|with) )?(?:an? )?(?:(?:resolution|res)(?: of|:)? )?"
            r"(?P<resolution>240p|360p|480p|720p|1080p|1440p|2160p|4k|uhd|2k|qhd|full hd|fhd)"
            r"(?: (?:resolution|res|video))?",
            resolution,
        ),
        (
            r"\s*(?:(?:as|in|to|into) )?(?:an? )?(?:animated )?"
            r"(?P<format>mp4|mov|webm|gif|h\.?264|quicktime)"
            r"(?: (?:file|video|format|clip|animation))?(?:格式|文件)?",
            export_format,
        ),
        (
            r"\s*(?:(?:at|in|with) )?(?:an? )?(?:(?:frame ?rate|帧率)(?: of|:)? ?)?"
            r"<num:fps> ?(?:fps|frames per second|frames/s|帧(?:每秒)?)",
            fps,
        ),
        (r"\s*(?:(?:at|in|with) )?(?:an? )?(?:frame ?rate|帧率)(?: of|:)? ?<num:fps>", fps),
        (
            r"\s*(?:(?:in|at|with) )?(?P<quality>high|higher|best|top|max|maximum|good|medium"
            r"|normal|standard|low|lower)(?:est)? ?quality",
            quality,
        ),
        (r"\s*(?P<quality>高|中|低)(?:画质|质量)", quality),
        (r"\s*(?:画质|质量)(?P<quality>高|中|低)", quality),
        (r"\s*(?:导出|输出)", nothing),  # "1080p导出": the verb after what it exports
    ]
    return tuple((_pattern(option), reader) for option, reader in options)


_EXPORT_OPTIONS = _export_options()


def _export(found: re.Match[str], clause: _Clause, edit: EditSpec) -> _Reading | None:
    settings = _options(found["tail"], _EXPORT_OPTIONS)
    if settings is None or (not settings and not _group(found, "verb")):
        return None
    claims = tuple((name, str(value)) for name, value in settings.items())
    return _Reading(_describe_export(settings), export=settings, claims=claims)


def _describe_export(settings: Mapping[str, object]) -> str:
    """E.g. "export as 1080p MP4 at 30 fps in high quality"."""
    named = [str(settings["resolution"])] if "resolution" in settings else []
    if "format" in settings:
        named.append(str(settings["format"]).upper())
    text = "export as " + " ".join(named) if named else "export"
    if "fps" in settings:
        text += f" at {settings['fps']:g} fps"
    if "quality" in settings:
        text += f" in {settings['quality']} quality"
    return text if text != "export" else "export the video"


# ---- the grammar -----------------------------------------------------------------------------


def _rules(
    handler: _Handler, *patterns: str | re.Pattern[str]
) -> list[tuple[re.Pattern[str], _Handler]]:
    return [
        (pattern if isinstance(pattern, re.Pattern) else _pattern(pattern), handler)
        for pattern in patterns
    ]


_ASPECT_LEAD = (
    r"(?:(?P<verb>make|turn|convert|change|reframe|resize|format|crop|pad|letterbox|set|switch"
    r"|render|export|fit)(?: it| this| the (?:video|clip|frame|footage))?(?: (?:to|into|as|in))?"
    r"(?: an?)? )?"
)
_ASPECT_NAME = (
    r"(?P<aspect>4:5 portrait|portrait 4:5|9:16|16:9|1:1|4:5|vertical|portrait|horizontal"
    r"|landscape|widescreen|square)"
)
_ASPECT_SUFFIX = (
    r"(?: (?:video|format|aspect(?: ratio)?|ratio|mode|orientation|frame|version))?"
    # with the shape named, any platform is just a remark: "square for instagram"
    rf"(?: (?:for|on) (?:{_PLATFORM}|instagram|facebook))?{_FIT_TAIL}"
)

# First match that gives a valid reading wins; every pattern must match the whole clause.
_GRAMMAR: tuple[tuple[re.Pattern[str], _Handler], ...] = (
    *_rules(_cut_silences, _SILENCE_CUT, _MORE_AGGRESSIVE, _SILENCE_CUT_ZH, _MORE_AGGRESSIVE_ZH),
    # trim: start, end, both
    *_rules(
        _trim,
        rf"{_TRIM_VERB} (?:the )?first <dur:start>{_OF_SOURCE}",
        rf"{_TRIM_VERB} <dur:start> (?:from|at|off) the (?:start|beginning|front){_OF_SOURCE}",
        r"(?:start|begin)(?: the video| it| playback| the clip)? (?:at|from) <dur:start>",
        r"(?:skip|jump) (?:ahead )?to <dur:start>",
        r"(?:去掉|剪掉|删掉|删除|去除|跳过|剪去|不要)(?:开头|片头)?的?前<dur:start>",
        r"从<dur:start>开始",
        rf"(?:(?:keep|use|take)(?: only)? )?(?:only )?(?:the )?first <dur:end>{_OF_SOURCE}"
        r"(?: only)?",
        r"(?:end|stop|finish)(?: the video| it| playback| the clip)? (?:at|by) <dur:end>",
        r"(?:只保留|只要|只留|保留|只用)(?:开头|视频)?的?前<dur:end>",
        r"在?<dur:end>处?结束",
        r"(?:(?:keep|use|take|only keep|trim it to|trim to|cut it to|cut to)(?: only)? )?"
        r"(?:only )?(?:the part )?(?:from )?<dur:start>"
        r" ?(?:to|until|till|through|-|–|—) ?<dur:end>",
        r"(?:只?保留|截取|剪出|只要)?从?<dur:start>(?:到|至|-|~)<dur:end>(?:的部分|之间)?",
    ),
    # length
    *_rules(
        _highlight,
        rf"{_MAKE}(?:an? )?(?:<dur:length> )?(?:{_ASPECT_WORD} )?"
        r"(?:highlights?|recap|supercut|best[- ]of)"
        r"(?: (?:reel|video|clip|cut|montage|version|edit))?"
        r"(?: (?:of|lasting|that is|at) <dur:length2>(?: long)?)?",
        r"(?:keep |show )?(?:only )?the best <dur:length>(?: of it)?",
        r"(?:做|剪|生成|导出|制作|剪辑|输出)?(?:成|为)?(?:一个|一段|一条)?(?:<dur:length>)?的?"
        r"(?P<aspect>竖屏|横屏|方形)?(?:精华|集锦|高光|精彩)(?:片段|视频|版|合集|剪辑|时刻)?",
    ),
    *_rules(
        _max_duration,
        r"(?:keep|make|get)(?: it| the video| the result| the edit)? (?:under|below|within"
        r"|shorter than|less than|no (?:longer|more) than|at most|up to)(?: of)? <dur:length>"
        r"(?: long| total| or less| max(?:imum)?| in length)?",
        r"(?:under|below|within|shorter than|less than|no (?:longer|more) than|at most|up to"
        r"|max(?:imum)?\.?)(?: of)?:? <dur:length>(?: long| total| or less| in length)?",
        r"<dur:length> (?:max(?:imum)?|or less|or shorter|at most|tops)",
        r"(?:(?:set )?(?:the )?)(?:max(?:imum)?|target|total) (?:length|duration|runtime)"
        r"(?: of| to| is|:)? <dur:length>",
        r"(?:limit|cap|shorten|cut down|trim down|condense|reduce)(?: it| the video| the length"
        r"| this)?(?: down)? to <dur:length>(?: or less| max(?:imum)?)?",
        r"make it <dur:length> (?:long|or less|or shorter)",
        r"(?:不超过|最多|最长|控制在|限制在|少于|压缩到|缩短到|剪到)<dur:length>(?:以内|之内|内|以下)?",
        r"(?:时长|长度|总时长)(?:不超过|控制在|最多|限制在|为)?<dur:length>(?:以内|之内|内)?",
    ),
    # speed
    *_rules(
        _speed,
        r"speed (?:it |this |the video |things )?up(?: by| to)? <times:factor>",
        r"(?:make it |play it |play |make the video )?<times:factor>"
        r" (?:faster|speed|as fast|quicker)",
        r"(?:set )?(?:the )?(?:playback )?speed(?: to|:)? <times:factor>",
        r"(?:play(?: it)? |run(?: it)? |speed (?:it )?up )?at <times:factor>(?: speed)?",
        r"<times:factor>",
        r"(?:加速|加快|调成|设为|设置为|改成|变成|用|以)?(?:到|为|成)?<times:factor>速?(?:播放)?",
    ),
    *_rules(
        _slower,
        r"slow (?:it |this |the video |things )?down(?: by| to)? <times:factor>",
        r"(?:make it |play it )?<times:factor> slower",
        r"(?:减速|放慢)(?:到|为|成)?<times:factor>",
    ),
    *_rules(
        _fixed_speed(0.5),
        r"(?:make it |put it |play it |use |in )?(?:in |at )?(?:slow[- ]?motion|slow[- ]?mo)",
        r"(?:make it |play it |play |use )?(?:at )?half[- ]speed",
        r"慢动作|慢放|慢速(?:播放)?|半速",
    ),
    *_rules(
        _fixed_speed(2.0),
        r"(?:make it |play it |play |use )?(?:at |in )?double[- ]speed|(?:make it )?twice as fast",
        r"双倍速",
    ),
    # aspect and fit
    *_rules(
        _aspect,
        _ASPECT_LEAD
        + r"(?:(?:the )?(?:aspect(?: ratio)?|ratio|format)(?: of| to| =|:)? )?"
        + _ASPECT_NAME
        + _ASPECT_SUFFIX,
        r"(?:(?:make|optimi[sz]e|format|crop|reframe|resize)(?: it| this| the video)? )?"
        rf"for {_PLATFORM}{_FIT_TAIL}",
        r"(?:改成|改为|转成|转为|变成|做成|剪成|设为|设置为|调成|调整为|裁成|裁剪成|裁剪为|切成|换成)?"
        r"(?:画面|画幅|比例)?(?P<aspect>竖屏|竖版|竖向|横屏|横版|横向|正方形|方形|9:16|16:9|1:1|4:5)"
        r"(?:比例|画幅|格式|视频|版本|版|模式)?"
        r"(?P<fit>加?模糊背景|背景模糊|加?黑边|裁剪填充|裁切填充)?",
        r"(?:适配|适合|发布到|发到|发)(?P<platform>抖音|快手|视频号)",
    ),
    *_rules(
        _fit,
        r"(?:with |use |add |fill (?:the )?(?:sides|edges|background|bars|gaps) with )?(?:an? )?"
        r"(?:blurred|blurry|blur) (?:background|sides|edges|bars|fill)",
        r"blur the (?:sides|edges|background|bars)",
        r"(?:crop|zoom)(?: it)?(?: in)? to (?:fill(?: the frame| the screen)?|fit)",
        r"fill the (?:frame|screen)",
        r"(?:letterbox|pad)(?: it| the video)?(?: with black(?: bars)?)?",
        r"(?:with |add |use )?(?:black bars|letterboxing|padding)",
        r"(?:加|用)?(?:模糊背景|背景模糊|模糊填充)",
        r"(?:加|用)?黑边(?:填充)?",
        r"(?:裁剪|裁切)(?:填充|填满|铺满)",
    ),
    # titles and text (quoted text, or "title: ..." up to the end of the clause)
    *_rules(
        _title,
        rf"(?:{_OVERLAY_VERB}(?: in)? )?(?:(?:an?|the) )?(?:(?:opening|intro|main|big|large) )?"
        r"title(?: card| text| overlay| screen)?(?: of| saying| that says| reading| called| as)?"
        r":? <q>(?P<tail>.*)",
        rf"(?:{_OVERLAY_VERB} )?<q> as (?:the|a) title(?P<tail>.*)",
        r"(?:加|添加|加上|加个|加一个|放|显示|设置|写)?(?:一个)?(?:大|开场|片头)?标题(?:为|是|:)?<q>(?P<tail>.*)",
    ),
    *_rules(
        _text,
        rf"(?:{_OVERLAY_VERB} )?(?:(?:the|a|some) )?(?:text|caption|subtitle|words?|label"
        r"|lower third)(?: of| saying| that says| reading)?:? <q>(?P<tail>.*)",
        rf"{_OVERLAY_VERB} <q>(?P<tail>.*)",
        r"(?:加|添加|加上|放|显示|写)?(?:一段|一行)?(?:文字|字幕|文本)(?:为|是|:)?<q>(?P<tail>.*)",
    ),
    *_rules(
        _unquoted_title,
        r"(?:(?:add|set|use) )?(?:(?:a|the) )?title ?: ?[^\ue000]+",
        r"(?:加|添加)?标题:[^\ue000]+",
    ),
    # music
    *_rules(
        _music,
        rf"(?:{_MUSIC_VERB}(?: in| on)? )?(?:(?:some|a|an|the) )?(?:{_MOOD} )?(?:background |bg )?"
        r"(?:music|soundtrack|bgm|music track|background track)(?: track)?"
        r"(?: (?:in the background|underneath|under it|behind it|to it|to the video))?"
        + _MUSIC_VOLUME
        + rf"(?: (?P<duck>with(?:out| no)? ducking|no ducking|ducked(?: under {_SPEECH})?"
        r"|not ducked))?",
        rf"(?:{_MUSIC_VERB} )?(?:the )?(?:background )?(?:music|soundtrack|track|song)"
        rf"(?: (?:from|file|track|at))?:? <q>{_MUSIC_VOLUME}",
        rf"{_MUSIC_VERB} <q> as (?:the )?(?:background )?(?:music|soundtrack|track){_MUSIC_VOLUME}",
        r"(?:加|添加|加上|配|配上|放|来点|加点|加入|用|使用)?(?:一段|一首|一些|点)?"
        rf"(?:{_MOOD_ZH}的?)?(?:背景)?(?:音乐|配乐|bgm)(?:音量(?:调到|设为|为)?<pct:volume>)?",
    ),
    *_rules(
        _music_volume,
        r"(?:(?:set|turn|put|bring|keep) )?(?:the )?(?:background |bg )?music(?: volume| level)?"
        r"(?: (?:down|up))?(?: to| at|:)? <pct:volume>(?: volume)?",
        r"(?:背景)?音乐(?:音量)?(?:调到|设为|设置为|为|调成)?<pct:volume>",
    ),
    *_rules(
        _duck(False),
        r"(?:no|without|disable|turn off|skip) ducking",
        rf"(?:don't|do not|dont|never) duck(?: the music)?(?: under {_SPEECH})?",
        r"(?:keep the music|music) at (?:a )?(?:constant|steady|fixed) (?:volume|level)",
    ),
    *_rules(
        _duck(True),
        r"(?:with|enable|turn on) ducking",
        rf"duck(?: the music)?(?: under| during| when| while)? {_SPEECH}",
        rf"(?:lower|dip) the music (?:under|during|when|while) {_SPEECH}",
        r"(?:人声|说话)时?(?:自动)?降低(?:背景)?音乐(?:音量)?",
    ),
    # fades
    *_rules(
        _fade,
        r"(?:(?:add|use|put|apply|with) )?(?:(?:an?|some) )?(?:<dur:length> )?fades?(?:-| )?"
        r"(?P<direction>in and out|in ?/ ?out|in & out|in|out|from black|to black)"
        r"(?: (?:over|for|of|lasting|during))?(?: <dur:length2>)?"
        r"(?: at the (?:start|beginning|end))?",
        r"(?:加|添加|加上|加个|用)?(?:<dur:length>的?)?(?P<direction>淡入淡出|淡入和淡出|淡入|淡出)"
        r"(?:效果)?(?:<dur:length2>)?",
    ),
    # the source's audio
    *_rules(
        _mute,
        r"mute(?: it| this| everything| the (?:video|clip))?",
        r"mute (?:the )?(?:original |source |camera |background |video's )?"
        r"(?:audio|sound|voice|voices)(?: track)?",
        r"(?:remove|drop|strip|delete|kill|cut|lose|turn off|get rid of|take out|disable)"
        r"(?: out)? (?:all )?(?:of )?(?:the )?(?:original |source |camera |video's )?"
        r"(?:audio|sound)(?: track)?",
        r"(?:no|without) (?:original |source )?(?:audio|sound)",
        r"make it silent",
        r"静音|(?:去掉|去除|删掉|删除|关掉|关闭|不要|移除|消除)(?:视频)?的?"
        r"(?:原声|原音|声音|音频|原始音频|原始声音)|(?:原声|声音|音频)(?:去掉|关掉|删掉|关闭)",
    ),
    *_rules(
        _volume,
        r"(?:make (?:it|the (?:audio|sound|voice|voices|video)) )?louder",
        r"(?:make (?:it|the (?:audio|sound|voice|voices|video)) )?(?P<down>quieter|softer)",
        r"(?:turn|bring|pump|crank|boost) (?:the )?(?:volume|audio|sound|it) up"
        r"(?: by)?(?: <pct:change>)?",
        r"(?:turn|crank) up the (?:volume|audio|sound)(?: by)?(?: <pct:change>)?",
        r"(?:increase|raise|boost) (?:the )?(?:volume|audio|sound|loudness|audio level)"
        r"(?: by)?(?: <pct:change>)?",
        r"volume up(?: by)?(?: <pct:change>)?",
        r"(?:turn|bring) (?:the )?(?:volume|audio|sound|it) (?P<down>down)"
        r"(?: by)?(?: <pct:change>)?",
        r"turn (?P<down>down) the (?:volume|audio|sound)(?: by)?(?: <pct:change>)?",
        r"(?P<down>decrease|lower|reduce) (?:the )?(?:volume|audio|sound|audio level)"
        r"(?: by)?(?: <pct:change>)?",
        r"volume (?P<down>down)(?: by)?(?: <pct:change>)?",
        r"(?:set )?(?:the )?(?:audio |sound |original |source |voice )?(?:volume|audio level|gain)"
        r"(?: to| at|:)? <pct:level>",
        r"(?:声音|音量)(?:调大|加大|提高|放大|增大|大)(?:一点|一些|点)?(?:<pct:change>)?",
        r"(?:调大|加大|提高|放大|增大)(?:声音|音量)(?:<pct:change>)?",
        r"(?:声音|音量)(?P<down>调小|减小|降低|小)(?:一点|一些|点)?(?:<pct:change>)?",
        r"(?P<down>调小|减小|降低)(?:声音|音量)(?:<pct:change>)?",
        r"音量(?:调到|调成|设为|设置为|为)?<pct:level>",
    ),
    *_rules(
        _normalize(True),
        r"normali[sz]e(?: the)?(?: (?:audio|loudness|volume|sound|levels|audio levels"
        r"|audio loudness))?",
        r"(?:loudness|audio|volume) normali[sz]ation",
        r"(?:even out|level|balance) (?:the )?(?:audio|volume|loudness|sound)(?: levels)?",
        r"(?:音量|响度|音频|声音)(?:标准化|归一化|均衡|统一)|(?:标准化|归一化)(?:音量|响度|音频|声音)?"
        r"|(?:统一|均衡)(?:音量|响度|音频|声音)",
    ),
    *_rules(
        _normalize(False),
        r"(?:don't|do not|dont|no need to|never) normali[sz]e(?: the)?"
        r"(?: (?:audio|loudness|volume|sound|levels))?",
        r"(?:no|skip|without|disable|turn off)(?: the)? (?:loudness |audio |volume )?"
        r"normali[sz]ation",
        r"keep the (?:original )?(?:loudness|audio levels|levels)(?: as (?:it is|is))?",
        r"(?:不要|不用|不需要|无需|关闭|取消)(?:音量|响度|音频)?(?:标准化|归一化)",
    ),
    # export settings; last, as its lead words ("export as ...") open other phrases too
    *_rules(
        _export,
        r"(?P<verb>export|save|render|output|deliver|encode):?"
        r"(?: (?:it|this|the (?:video|result|file|clip|final video|output|edit)))?"
        r"(?: (?:as|to|in|into|at))?(?: an?)?(?P<tail>(?: .*)?)",
        r"(?P<verb>导出|输出|渲染|保存)(?:为|成)?(?P<tail>.*)",
        r"(?P<tail>.+)",
    ),
)
