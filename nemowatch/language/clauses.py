"""An instruction split into clauses, and each clause normalized for matching. Pure."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SENTINEL = "\ue000"  # stands for one quoted text in a normalized clause (private use)

# An apostrophe is not a quote: a single quote opens after no Latin letter or digit and
# closes before none (so a Chinese word may touch it: 标题为'美食探店').
_QUOTED_TEXT = re.compile(
    r'"[^"]+"|“[^”]+”|「[^」]+」|『[^』]+』|(?<![a-z0-9])\'.+?\'(?![a-z0-9])|(?<![a-z0-9])‘.+?’(?![a-z0-9])',
    re.DOTALL | re.IGNORECASE,
)
_RATIO_IN_WORDS = re.compile(r"(?<!\d)(\d{1,2}) ?比 ?(\d{1,2})(?!\d)")
# A list of fillers ("the ums, uhs and ers") is one object, not three clauses: a comma or
# "and" between two filler words does not separate clauses.
_FILLER_WORDS = ("um", "ums", "umm", "umms", "uh", "uhs", "ah", "ahs", "er", "ers", "erm", "hmm")
_NEXT_FILLER = r"\s*['\"]?(?:" + "|".join(_FILLER_WORDS) + r")\b"
_AFTER_FILLER = "|".join(rf"(?<=\b{word})" for word in _FILLER_WORDS)
_AFTER_FILLER_SPACE = "|".join(rf"(?<=\b{word}\s)" for word in _FILLER_WORDS)
_CLAUSE_SEPARATOR = re.compile(
    rf"(?!(?:{_AFTER_FILLER})(?=,{_NEXT_FILLER}))[,;!?\n，、；。！？]+|\.(?=\s|$)"
    # "fade in and out", "black and white" and "the ums and uhs" are one clause each
    rf"|(?!(?:{_AFTER_FILLER_SPACE})(?=and{_NEXT_FILLER}))"
    r"\b(?<!black )and(?!\s+out\b)(?!\s+white\b)\b"
    r"|\b(?:then|also|plus)\b"
    r"|然后|并且|同时|以及|(?<!合)并",  # 合并 (merge) is a word, not "and"
    flags=re.IGNORECASE,
)
_FILLER = re.compile(
    r"^(?:please|kindly|just|and|then|also|plus|(?:can|could|would) you"
    r"|i(?:'d like| want| need)(?= an? )|i(?:'d like| want)(?: you)? to)\b\s*"
    r"|\s*\b(?:please|for me)$"
    r"|^(?:请|帮我|帮忙|麻烦|给我|给(?:这个)?视频|然后|再|并且|还要|也|把(?:这个视频|视频|它|画面)?)\s*"
    r"|\s*(?:一下|吧|哦|啊|呀)$"
)


@dataclass(frozen=True)
class Clause:
    """One clause of an instruction: as written, and as patterns match it."""

    phrase: str  # as written
    normalized: str  # lower case, single spaces, fillers dropped, quoted texts as SENTINEL
    quoted: tuple[str, ...]  # the quoted texts, exactly as written, in order

    @property
    def compact(self) -> str:
        """Without spaces: how Chinese, written without them, is matched."""
        return self.normalized.replace(" ", "")


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


def to_clause(phrase: str) -> Clause:
    """`phrase` normalized for matching, its quoted texts kept aside exactly as written."""
    quoted: list[str] = []

    def hide(found: re.Match[str]) -> str:
        quoted.append(found[0][1:-1])
        return f" {SENTINEL} "

    # NFKC folds full-width forms ("１０８０ｐ", "：", "％") into the ASCII that patterns use.
    text = unicodedata.normalize("NFKC", _QUOTED_TEXT.sub(hide, phrase)).lower()
    text = " ".join(text.replace("’", "'").split())
    text = _RATIO_IN_WORDS.sub(r"\1:\2", text)  # "9比16" is 9:16
    previous = None
    while previous != text:  # "please just cut ..." has more than one filler word
        previous = text
        text = _FILLER.sub("", text).strip()
    return Clause(phrase, text, tuple(quoted))
