"""The table of phrasings (tests/data/phrasings.yaml): each is understood whole, and sets
exactly the EditSpec fields and export settings the table says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nemowatch.language import interpret
from nemowatch.rules import EditSpec, ExportSpec

TABLE = Path(__file__).resolve().parents[1] / "data" / "phrasings.yaml"


def load_table() -> list[dict[str, Any]]:
    """Every entry of the table, each with its `kind`."""
    groups = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    return [{"kind": group["kind"], **entry} for group in groups for entry in group["phrasings"]]


ENTRIES = load_table()


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= character <= "\u9fff" for character in text)


def test_the_table_is_broad() -> None:
    phrases = [entry["say"] for entry in ENTRIES]
    assert len(phrases) >= 200
    assert sum(map(is_chinese, phrases)) >= 60
    assert len(set(phrases)) == len(phrases), "a phrasing is in the table twice"


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
