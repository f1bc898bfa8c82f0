"""What a clause reads as (`Reading`), and the helpers every kind of phrase is read with:
a table row per phrasing (`rules`), named groups, and runs of options. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from nemowatch.language.clauses import Clause
from nemowatch.language.numbers import compile_pattern
from nemowatch.rules import EditSpec


@dataclass(frozen=True)
class Reading:
    """What one clause does."""

    description: str
    edit: Mapping[str, object] = field(default_factory=dict)  # EditSpec fields it sets
    export: Mapping[str, object] = field(default_factory=dict)  # ExportSpec fields it sets
    # (setting, value) pairs the phrase states outright, for finding contradictions;
    # a default filled in ("highlight reel" -> 60 s) is not stated, so it never contradicts
    claims: tuple[tuple[str, str], ...] = ()


# Reads a clause that a pattern matched, given the edit the earlier clauses made.
Handler = Callable[[re.Match[str], Clause, EditSpec], Reading | None]


def rules(
    handler: Handler, *patterns: str | re.Pattern[str]
) -> list[tuple[re.Pattern[str], Handler]]:
    """Rows of a grammar table: each of `patterns` (macros expanded) read by `handler`."""
    return [
        (pattern if isinstance(pattern, re.Pattern) else compile_pattern(pattern), handler)
        for pattern in patterns
    ]


def group(found: re.Match[str], name: str) -> str | None:
    """A named group's text, or None when the pattern has no such group or it did not match."""
    value = found.groupdict().get(name)
    return value if isinstance(value, str) else None


OptionReader = Callable[[re.Match[str]], dict[str, object]]


def read_options(
    text: str, options: Sequence[tuple[re.Pattern[str], OptionReader]]
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
