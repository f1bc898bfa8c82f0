"""Numbers, durations and percentages in English and Chinese: the regex fragments that
find them, what they are worth, and how they are said back. Pure."""

from __future__ import annotations

import re
import sys
from typing import cast

from nemowatch.language.clauses import SENTINEL

_UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORDS = (
    {word: float(value) for value, word in enumerate(_UNITS, start=1)}
    | {word: float(value) for value, word in enumerate(_TEENS, start=10)}
    | {word: float(value) for value, word in enumerate(_TENS, start=2)}
)
for _word in _TENS:  # "twenty-five", "forty five"
    _NUMBER_WORDS[_word] *= 10
_CHINESE_DIGITS = {digit: value for value, digit in enumerate("零一二三四五六七八九")} | {
    "〇": 0,
    "两": 2,
}
_WORD_NUMBER = "(?:{})(?:[- ](?:{}))?|{}".format(
    "|".join(_TENS), "|".join(_UNITS), "|".join(sorted(_TEENS + _UNITS, key=len, reverse=True))
)
_NUMBER = rf"\d+(?:\.\d+)?|{_WORD_NUMBER}|[零〇一二两三四五六七八九十百]+"
_UNIT = r"seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|秒钟?|分钟|分"
_SIMPLE_DURATION = rf"(?:{_NUMBER}|an?) ?-?(?:{_UNIT})(?![a-z])"
_FRAGMENTS = {
    "num": _NUMBER,
    # "5 seconds", "60-second", "a minute", "一分钟", or a clock time "1:30"
    # "1 min 30 s", "一分半" (a minute and a half), "半分钟" (half a minute)
    "dur": rf"{_SIMPLE_DURATION}(?: (?:and )?{_SIMPLE_DURATION}|{_SIMPLE_DURATION})?"
    rf"|(?:{_NUMBER})分钟?半钟?|半分钟|half (?:an? )?(?:minute|min|second|sec|hour)"
    rf"|(?:(?<=first )|(?<=last )|(?<=final ))(?:minute|hour)|\d+:\d{{2}}(?::\d{{2}})?(?:\.\d+)?",
    "pct": r"\d+(?:\.\d+)? ?(?:%|percent|per cent)"
    r"|百分之(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+)",
    "times": rf"(?:{_NUMBER}) ?(?:x|×|times|倍)(?![a-z])",
}
_DURATION_PARTS = re.compile(rf"(?P<number>{_NUMBER}|an?) ?-?(?P<unit>{_UNIT})")
_LEADING_NUMBER = re.compile(r"^(\d+(?:\.\d+)?).*$")
_MACRO = re.compile(r"<(num|dur|pct|times):(\w+)>")


def compile_pattern(text: str) -> re.Pattern[str]:
    """A regex with macros: `<dur:length>` is a named duration, `<q>` one quoted text.

    Compiled on first use: the grammar's patterns, each holding the long duration and
    number fragments, take most of a second of CPU to compile at once, and every process
    (each CLI call, each daemon) would pay it though most clauses match early ones."""
    expanded = _MACRO.sub(lambda found: f"(?P<{found[2]}>{_FRAGMENTS[found[1]]})", text)
    outline = _MACRO.sub(lambda found: f"(?P<{found[2]}>{_ANYTHING})", text)
    return cast(
        re.Pattern[str],
        _OnFirstUse(
            expanded.replace("<q>", SENTINEL),
            outline.replace("<q>", SENTINEL) if outline != expanded else None,
        ),
    )


# What an outline has in place of a macro's fragment: any text, at least one character
# (each fragment needs one), so whatever the full pattern matches, the outline matches too.
_ANYTHING = r"[\s\S]+?"


class _OnFirstUse:
    """A regex compiled when first matched against; otherwise it reads as `re.Pattern`.

    A pattern with macros first tries its outline: the pattern with each number, duration
    or percentage fragment replaced by "any text", which compiles in a fraction of the time
    (the fragments are most of the grammar's text). When the outline does not match, the
    pattern cannot either, so a clause only compiles the few patterns that might fit it,
    not every pattern the grammar tries before the one that reads it."""

    __slots__ = ("_compiled", "_outline", "_outline_text", "pattern")

    def __init__(self, pattern: str, outline: str | None = None) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None
        self._outline_text = outline
        self._outline: re.Pattern[str] | None = None

    def _regex(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def _cannot_match(self, string: str, pos: int, endpos: int, how: str) -> bool:
        """True when the outline already rules `string` out (never wrong the other way)."""
        if self._compiled is not None or self._outline_text is None:
            return False
        if self._outline is None:
            self._outline = re.compile(self._outline_text)
        return getattr(self._outline, how)(string, pos, endpos) is None

    def fullmatch(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> re.Match[str] | None:
        if self._cannot_match(string, pos, endpos, "fullmatch"):
            return None
        return self._regex().fullmatch(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        if self._cannot_match(string, pos, endpos, "match"):
            return None
        return self._regex().match(string, pos, endpos)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        if self._cannot_match(string, pos, endpos, "search"):
            return None
        return self._regex().search(string, pos, endpos)

    def __getattr__(self, name: str) -> object:
        return getattr(self._regex(), name)


def number_value(text: str) -> float:
    """A number written in digits, English words or Chinese numerals."""
    if text[0].isdigit():
        return float(text)
    if text in ("a", "an"):
        return 1.0
    if text in _NUMBER_WORDS:
        return _NUMBER_WORDS[text]
    if text.split("-")[0].split(" ")[0] in _TENS:  # "twenty-five"
        tens, units = re.split("[- ]", text)
        return _NUMBER_WORDS[tens] + _NUMBER_WORDS[units]
    total, current = 0, 0
    for character in text:  # 三十五 = 3 * 10 + 5; 一百二十 = 100 + 20
        if character in _CHINESE_DIGITS:
            current = _CHINESE_DIGITS[character]
        else:
            total += (current or 1) * (100 if character == "百" else 10)
            current = 0
    return float(total + current)


def seconds(text: str) -> float:
    """Seconds from "1:30", "90s", "1 minute", "60-second", "一分钟"."""
    if ":" in text:
        total = 0.0
        for part in text.split(":"):
            total = total * 60 + float(part)
        return total
    if text == "半分钟":
        return 30.0
    if text.startswith("half"):  # "half a second", "half minute"
        return seconds("1 " + text.split()[-1]) / 2
    if text in ("minute", "hour"):  # "the first minute"
        return seconds("1 " + text)
    if text.rstrip("钟").endswith("半"):  # "一分半": a minute and a half
        return number_value(text.split("分")[0]) * 60.0 + 30.0
    total = 0.0
    for found in _DURATION_PARTS.finditer(text):  # "1 min 30 s" is two parts
        unit = found["unit"]
        scale = 3600.0 if unit.startswith("h") else 60.0 if unit[0] in "m分" else 1.0
        total += number_value(found["number"]) * scale
    return total


def fraction(text: str) -> float:
    """0.35 from "35%", "35 percent" or "百分之三十五"."""
    if text.startswith("百分之"):
        return number_value(text.removeprefix("百分之")) / 100.0
    return float(_LEADING_NUMBER.sub(r"\1", text)) / 100.0


def times(text: str) -> float:
    """2.0 from "2x", "2 times", "两倍"."""
    return number_value(re.sub(r" ?(?:x|×|times|倍)$", "", text))


def number(value: float) -> str:
    """A number as people write it: "3", "0.5", "-28"."""
    return f"{value:g}"


def duration_text(seconds: float) -> str:
    """A length: "3 s", "90 s"."""
    return f"{number(seconds)} s"


def clock(seconds: float) -> str:
    """A position in the source: "0:05", "1:30", "1:02:03.5"."""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{hours}:{minutes:02d}:" if hours else f"{minutes}:"
    return text + (f"{rest:04.1f}" if rest % 1 else f"{int(rest):02d}")


def percent(fraction: float) -> str:
    """A gain or volume as a percentage: "35 %"."""
    return f"{number(round(fraction * 100, 2))} %"
