"""'Did you mean ...': the canonical phrasings offered for a clause that is not understood."""

from __future__ import annotations

import pytest

from nemowatch.language import interpret
from nemowatch.language.suggest import CANONICAL_PHRASES, MAX_SUGGESTIONS, all_phrases, suggest


@pytest.mark.parametrize("phrase", all_phrases())
def test_every_canonical_phrase_is_understood(phrase: str) -> None:
    assert interpret(phrase).not_understood == ()


def test_every_kind_of_edit_has_english_and_chinese_phrasings() -> None:
    for kind, phrases in CANONICAL_PHRASES.items():
        chinese = [phrase for phrase in phrases if any("\u4e00" <= c <= "\u9fff" for c in phrase)]
        assert chinese, kind
        assert len(chinese) < len(phrases), kind


@pytest.mark.parametrize(
    ("phrase", "first"),
    [
        ("make it verticle", "make it vertical"),
        ("fade inn", "fade in"),
        ("cut the silence", "cut out silences"),
        ("add jazz music", "add calm music"),
        ("Normalise the sound please", "normalize the audio"),
    ],
)
def test_a_misspelt_or_near_english_phrase_gets_the_closest_first(phrase: str, first: str) -> None:
    assert suggest(phrase)[0] == first


@pytest.mark.parametrize(
    ("phrase", "first"),
    [
        ("转成竖平", "改成竖屏"),
        ("静音一下下下", "静音"),
        ("加背景音乐吧要欢快", "加背景音乐"),
        ("去掉静音部分片段吧", "去掉静音"),
    ],
)
def test_a_near_chinese_phrase_gets_the_closest_first(phrase: str, first: str) -> None:
    assert suggest(phrase)[0] == first


def test_a_phrase_sharing_a_word_gets_phrasings_with_that_word() -> None:
    suggestions = suggest("put some music with saxophones behind everything")
    assert suggestions
    assert all("music" in suggestion for suggestion in suggestions)


def test_at_most_three_suggestions_and_none_for_nonsense() -> None:
    assert len(suggest("make it")) <= MAX_SUGGESTIONS
    assert suggest("sprinkle some magic") == []
    assert suggest("please") == []


def test_quoted_text_does_not_steer_the_suggestion() -> None:
    assert suggest('add a banner "music music music"') == suggest("add a banner")
