"""GUI-speak is never shown to the user as an instruction."""

from __future__ import annotations

import pytest

from nemowatch.engines.nemo.speech import Spoken, without_gui_speak


@pytest.mark.parametrize(
    "text",
    [
        "Click Export to download your video.",
        "When you're happy, hit the Export button.",
        "Press the export button in the top-right corner to render it.",
        "点击导出按钮即可下载。",
    ],
)
def test_an_export_hint_means_the_draft_is_ready(text: str) -> None:
    spoken = without_gui_speak(text)
    assert spoken.export_ready
    assert spoken.shown == ""
    assert spoken.gui


@pytest.mark.parametrize(
    "text",
    [
        "Open the panel on the left to adjust the music.",
        "Drag the clip to reorder it.",
        "Double-click the title to edit it.",
        "You can find it in the media library.",
        "Scroll down to see the captions.",
        "Tap on the clip to select it.",
    ],
)
def test_other_gui_directions_are_left_out(text: str) -> None:
    assert without_gui_speak(text) == Spoken(shown="", export_ready=False, gui=(text,))


@pytest.mark.parametrize(
    "text",
    [
        "I removed 4 silent pauses and added lofi music at 35 %.",
        "The video is now 58 seconds long, in 9:16.",
        "There was a drop in audio level at 0:12; I evened it out.",
        "Your draft is ready; the highlight reel starts with the opening shot.",
    ],
)
def test_ordinary_text_is_shown_unchanged(text: str) -> None:
    assert without_gui_speak(text) == Spoken(shown=text)


def test_only_the_gui_sentences_of_a_message_are_left_out() -> None:
    spoken = without_gui_speak(
        "I trimmed the intro and added a title. Click Export when you are ready!\n"
        "Drag the music clip to move it. The reel is 60 s long."
    )
    assert spoken.shown == "I trimmed the intro and added a title.\nThe reel is 60 s long."
    assert spoken.export_ready
    assert spoken.gui == ("Click Export when you are ready!", "Drag the music clip to move it.")


@pytest.mark.parametrize(
    ("text", "shown", "export_ready"),
    [
        # looking at something there is no window for: left out (the turn then reads the
        # session's state and summarises the draft, when nothing else was said)
        ("You can preview it in the timeline.", "", False),
        ("Preview the result in the timeline.", "", False),
        ("Check the timeline to see the cuts.", "", False),
        ("Open the preview to check it.", "", False),
        ("打开预览查看效果。", "", False),
        ("在时间线中预览。", "", False),
        # telling its user to export: the daemon exports by itself
        ("I added music. You can now export the video.", "I added music.", True),
        ("Export the video when you are happy.", "", True),
        ("请导出视频。", "", True),
        # what the agent did, or what the draft is, is shown
        ("The timeline now has 3 tracks.", "The timeline now has 3 tracks.", False),
        ("我已经去掉了静音。", "我已经去掉了静音。", False),
    ],
)
def test_the_missing_gui_phrases_become_actions_not_text(
    text: str, shown: str, export_ready: bool
) -> None:
    spoken = without_gui_speak(text)
    assert spoken.shown == shown
    assert spoken.export_ready is export_ready
