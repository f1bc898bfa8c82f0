"""The table of phrasings (tests/data/phrasings.yaml): each is understood whole, and sets
exactly the EditSpec fields and export settings the table says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nemowatch.language import interpret
from nemowatch.rules import EditSpec, ExportSpec

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "tests" / "data" / "phrasings.yaml"
DOCS = ROOT / "docs" / "editing.md"
BEGIN = "<!-- phrasings: generated from tests/data/phrasings.yaml -->"
END = "<!-- end of phrasings -->"


def load_table() -> list[dict[str, Any]]:
    """Every entry of the table, each with its `kind`."""
    # libyaml's loader where PyYAML has it: each worker reads the table as it collects
    # (0.17 s of CPU in Python, 0.02 s in C), and both read it alike
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    groups = yaml.load(TABLE.read_text(encoding="utf-8"), Loader=loader)
    return [{"kind": group["kind"], **entry} for group in groups for entry in group["phrasings"]]


ENTRIES = load_table()


def docs_section(entries: list[dict[str, Any]]) -> str:
    """The docs' list of understood phrasings, by kind, as `python -m tests.unit.test_phrasings`
    writes it into docs/editing.md between BEGIN and END."""
    lines = [BEGIN]
    for kind in dict.fromkeys(entry["kind"] for entry in entries):
        lines += ["", f"**{kind}**", "", "| phrase | sets |", "|---|---|"]
        for entry in entries:
            if entry["kind"] != kind:
                continue
            sets = {
                **entry.get("edit", {}),
                **{f"export.{k}": v for k, v in entry.get("export", {}).items()},
            }
            shown = yaml.safe_dump(sets, default_flow_style=True, allow_unicode=True, width=1000)
            lines.append(f"| `{entry['say']}` | `{shown.strip()[1:-1]}` |")
    lines += ["", END]
    return "\n".join(lines)


def test_the_docs_list_the_table() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    listed = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert listed == docs_section(ENTRIES), (
        "docs/editing.md is out of date: python -m tests.unit.test_phrasings"
    )


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= character <= "\u9fff" for character in text)


def test_the_table_is_broad() -> None:
    phrases = [entry["say"] for entry in ENTRIES]
    assert len(phrases) >= 200
    assert sum(map(is_chinese, phrases)) >= 60
    assert len(set(phrases)) == len(phrases), "a phrasing is in the table twice"


# The examples of the issue that asked for this table (issue 12): the table is written from
# how people talk, not from them.
ISSUE_EXAMPLES = [
    "vertical 9:16 for TikTok",
    "add jazz background music",
    "make it 60 seconds",
    "cut the last 10 seconds",
    "convert to gif",
    "make it 30 fps",
    "做一个60秒的精彩集锦",
    "转成9:16竖屏",
    "一分半",
    "1 min",
    "90s",
    "cut out silences, add background music, and export as a 60-second highlight reel",
    "A 60-second highlight reel",
    "remove background noise",
    "increase brightness",
    "make it warmer",
    "add a watermark",
    "make it look better",
    "enhance it",
    "润色一下",
]


def test_no_phrasing_is_copied_from_the_issue() -> None:
    examples = {example.lower() for example in ISSUE_EXAMPLES}
    assert [entry["say"] for entry in ENTRIES if entry["say"].lower() in examples] == []


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["say"] for entry in ENTRIES])
def test_phrasing(entry: dict[str, Any]) -> None:
    interpretation = interpret(entry["say"])
    assert interpretation.not_understood == ()
    expected_edit = EditSpec.model_validate(entry.get("edit", {}))
    edit = interpretation.edit
    assert edit.model_fields_set == expected_edit.model_fields_set
    for name in expected_edit.model_fields_set:
        assert getattr(edit, name) == getattr(expected_edit, name), name
    expected_export = ExportSpec.model_validate(entry.get("export", {}))
    assert set(interpretation.export) == expected_export.model_fields_set
    for name, value in interpretation.export.items():
        assert value == getattr(expected_export, name), name


@pytest.mark.parametrize(
    "phrase",
    [
        "vertical 16:9",  # a ratio and a name that disagree
        "竖屏16:9",
        "square 9:16 for TikTok",
        "make it",  # a lead with nothing after it
        "convert",
        "make it 30 m fps",
    ],
)
def test_phrasings_that_disagree_or_say_nothing_are_not_understood(phrase: str) -> None:
    assert interpret(phrase).not_understood == (phrase,)


def test_a_platform_beside_a_named_shape_is_a_remark() -> None:
    assert interpret("square for TikTok").edit.aspect == "1:1"


@pytest.mark.parametrize(
    ("phrase", "genre"), [("add jazz background music", "jazz"), ("加钢琴音乐", "钢琴")]
)
def test_a_genre_says_which_mood_stands_in_for_it(phrase: str, genre: str) -> None:
    (operation,) = interpret(phrase).operations
    assert operation.description.endswith(f"(the built-in mood nearest to {genre})")


def test_a_mood_word_needs_no_stand_in() -> None:
    (operation,) = interpret("add calm music").operations
    assert "nearest" not in operation.description


if __name__ == "__main__":  # rewrite the docs' list from the table
    text = DOCS.read_text(encoding="utf-8")
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    DOCS.write_text(before + docs_section(load_table()) + after, encoding="utf-8")
