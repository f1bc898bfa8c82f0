"""The local engine's reading of free-text instructions."""

from __future__ import annotations

import pytest

from nemowatch.engines.local.instructions import (
    interpret,
    interpret_all,
    parse_instruction,
    parse_instructions,
    split_clauses,
)
from nemowatch.rules import EditSpec, SilenceCut


@pytest.mark.parametrize(
    "text",
    [
        "cut out silences",
        "Remove the pauses.",
        "remove silence",
        "cut the dead air",
        "trim silent parts",
        "please remove all the long pauses from the video",
        "get rid of the silent bits",
        "edit out the quiet parts",
    ],
)
def test_silence_phrasings_ask_for_the_default_silence_cut(text: str) -> None:
    parsed = interpret(text)

    assert parsed.edit == EditSpec(cut_silences=SilenceCut())
    assert parsed.not_understood == ()


def test_each_understood_clause_is_described() -> None:
    parsed = interpret("cut out silences")

    assert [(item.phrase, item.description) for item in parsed.operations] == [
        ("cut out silences", "cut silences below -28 dB")
    ]


def test_clauses_not_understood_are_reported_verbatim_in_order() -> None:
    parsed = interpret(
        "cut out silences, add background music, and export as a 60-second highlight reel"
    )

    assert parsed.edit.cut_silences == SilenceCut()
    assert parsed.not_understood == ("add background music", "export as a 60-second highlight reel")


def test_an_instruction_understood_nowhere_is_reported_whole() -> None:
    parsed = interpret("  Add a title card  ")

    assert parsed.edit == EditSpec()
    assert parsed.operations == ()
    assert parsed.not_understood == ("Add a title card",)


def test_a_clause_with_more_than_a_silence_cut_is_not_half_understood() -> None:
    parsed = interpret("trim the video to 30 seconds without pauses")

    assert parsed.edit == EditSpec()
    assert parsed.not_understood == ("trim the video to 30 seconds without pauses",)


def test_a_negated_request_is_not_taken_as_the_request() -> None:
    parsed = interpret("don't remove the pauses")

    assert parsed.edit == EditSpec()
    assert parsed.not_understood == ("don't remove the pauses",)


def test_cutting_more_aggressively_raises_the_threshold_and_narrows_the_margin() -> None:
    parsed = interpret("cut out silences and cut more aggressively")

    assert parsed.edit.cut_silences == SilenceCut(threshold_db=-24.0, margin=0.1)
    assert parsed.not_understood == ()


def test_a_threshold_in_decibels_is_taken_as_negative() -> None:
    parsed = interpret("cut silences below 30.5 dB")

    assert parsed.edit.cut_silences == SilenceCut(threshold_db=-30.5)
    assert parsed.operations[0].description == "cut silences below -30.5 dB"


@pytest.mark.parametrize("text", ["export as mp4", "Export it as an MP4 file", "save as mp4"])
def test_exporting_as_mp4_is_understood_and_changes_nothing(text: str) -> None:
    parsed = interpret(text)

    assert parsed.edit == EditSpec()
    assert parsed.not_understood == ()
    assert [item.description for item in parsed.operations] == ["export as MP4"]


def test_filler_words_alone_are_neither_operations_nor_complaints() -> None:
    parsed = interpret("please")

    assert parsed.operations == ()
    assert parsed.not_understood == ()


def test_clauses_split_at_punctuation_and_conjunctions_but_not_inside_numbers() -> None:
    text = "cut silences below -30.5 dB; then add music. Also a title and a logo"

    assert split_clauses(text) == [
        "cut silences below -30.5 dB",
        "add music",
        "a title",
        "a logo",
    ]


def test_later_instructions_win_and_every_complaint_is_kept() -> None:
    parsed = interpret_all(["remove the pauses, add music", "cut more aggressively"])

    assert parsed.edit.cut_silences == SilenceCut(threshold_db=-24.0, margin=0.1)
    assert parsed.not_understood == ("add music",)
    assert len(parsed.operations) == 2


def test_the_short_form_gives_the_edit_and_the_phrases_not_understood() -> None:
    assert parse_instruction("remove the pauses, add music") == (
        EditSpec(cut_silences=SilenceCut()),
        ["add music"],
    )
    assert parse_instructions(["add music", "cut more aggressively"]) == (
        EditSpec(cut_silences=SilenceCut(threshold_db=-24.0, margin=0.1)),
        ["add music"],
    )
