"""The local engine's reading of free-text instructions, in English and Chinese."""

from __future__ import annotations

import pytest

from nemowatch.language import (
    Conflict,
    find_conflicts,
    interpret,
    interpret_all,
    parse_instruction,
    parse_instructions,
    split_clauses,
)
from nemowatch.rules import (
    ENHANCE_DESCRIPTION,
    ColorAdjust,
    EditSpec,
    ExportSpec,
    SilenceCut,
    TextOverlay,
    Trim,
)

AGGRESSIVE = SilenceCut(threshold_db=-24.0, margin=0.1)

# phrasing -> the EditSpec fields it sets (and only those), the export settings it sets
PHRASINGS: list[tuple[str, dict[str, object], dict[str, object]]] = [
    # silences
    ("cut out silences", {"cut_silences": SilenceCut()}, {}),
    ("cut more aggressively", {"cut_silences": AGGRESSIVE}, {}),
    ("remove the long pauses and cut more aggressively", {"cut_silences": AGGRESSIVE}, {}),
    ("去掉静音", {"cut_silences": SilenceCut()}, {}),
    ("剪掉停顿", {"cut_silences": SilenceCut()}, {}),
    ("去掉视频中的停顿", {"cut_silences": SilenceCut()}, {}),
    # trim (source seconds, from the start)
    ("trim the first 5 seconds", {"trim": Trim(start=5.0)}, {}),
    ("start at 0:10", {"trim": Trim(start=10.0)}, {}),
    ("keep only the first 30 seconds", {"trim": Trim(end=30.0)}, {}),
    ("first 45 seconds", {"trim": Trim(end=45.0)}, {}),
    ("from 0:05 to 1:30", {"trim": Trim(start=5.0, end=90.0)}, {}),
    ("trim the first 5 seconds, keep only the first 30s", {"trim": Trim(start=5.0, end=30.0)}, {}),
    ("去掉前5秒", {"trim": Trim(start=5.0)}, {}),
    ("只保留前30秒", {"trim": Trim(end=30.0)}, {}),
    # length
    ("export as a 60-second highlight reel", {"max_duration": 60.0}, {}),
    ("make a 30 second highlight", {"max_duration": 30.0}, {}),
    ("keep it under 60 seconds", {"max_duration": 60.0}, {}),
    ("max 45s", {"max_duration": 45.0}, {}),
    ("1 minute highlight", {"max_duration": 60.0}, {}),
    ("highlight reel", {"max_duration": 60.0}, {}),
    ("export as a 60-second 9:16 highlight reel", {"max_duration": 60.0, "aspect": "9:16"}, {}),
    ("60秒精华", {"max_duration": 60.0}, {}),
    ("三十秒精华", {"max_duration": 30.0}, {}),
    ("一分钟集锦", {"max_duration": 60.0}, {}),
    ("不超过45秒", {"max_duration": 45.0}, {}),
    # speed
    ("speed it up 2x", {"speed": 2.0}, {}),
    ("make it 1.5x faster", {"speed": 1.5}, {}),
    ("slow motion", {"speed": 0.5}, {}),
    ("half speed", {"speed": 0.5}, {}),
    ("double speed", {"speed": 2.0}, {}),
    ("slow it down 2x", {"speed": 0.5}, {}),
    ("2倍速", {"speed": 2.0}, {}),
    ("两倍速播放", {"speed": 2.0}, {}),
    ("慢动作", {"speed": 0.5}, {}),
    # aspect and fit
    ("make it vertical", {"aspect": "9:16"}, {}),
    ("vertical for TikTok", {"aspect": "9:16"}, {}),
    ("for YouTube Shorts", {"aspect": "9:16"}, {}),
    ("square", {"aspect": "1:1"}, {}),
    ("for Instagram feed", {"aspect": "1:1"}, {}),
    ("4:5 portrait", {"aspect": "4:5"}, {}),
    ("16:9", {"aspect": "16:9"}, {}),
    ("widescreen", {"aspect": "16:9"}, {}),
    ("for YouTube", {"aspect": "16:9"}, {}),
    ("with blurred background", {"fit": "blur"}, {}),
    ("blur the sides", {"fit": "blur"}, {}),
    ("crop to fill", {"fit": "crop"}, {}),
    ("letterbox", {"fit": "pad"}, {}),
    ("crop to 9:16", {"aspect": "9:16", "fit": "crop"}, {}),
    ("make it vertical with black bars", {"aspect": "9:16", "fit": "pad"}, {}),
    ("竖屏", {"aspect": "9:16"}, {}),
    ("帮我把视频改成竖屏", {"aspect": "9:16"}, {}),
    ("9:16", {"aspect": "9:16"}, {}),
    ("横屏", {"aspect": "16:9"}, {}),
    ("方形", {"aspect": "1:1"}, {}),
    ("适配抖音", {"aspect": "9:16"}, {}),
    ("加黑边", {"fit": "pad"}, {}),
    # titles and text
    (
        "add the title 'Urban Dreams' for 3 seconds",
        {"title": TextOverlay(text="Urban Dreams", duration=3.0)},
        {},
    ),
    ('add a title "Urban Dreams"', {"title": TextOverlay(text="Urban Dreams")}, {}),
    ("title: Urban Dreams", {"title": TextOverlay(text="Urban Dreams")}, {}),
    ('put "Hello" at the top', {"texts": (TextOverlay(text="Hello", position="top"),)}, {}),
    (
        'add text "Subscribe!" at the bottom from 5s for 4 seconds',
        {"texts": (TextOverlay(text="Subscribe!", start=5.0, duration=4.0, position="bottom"),)},
        {},
    ),
    ("标题“城市之梦”", {"title": TextOverlay(text="城市之梦")}, {}),
    ("加标题「城市之梦」3秒", {"title": TextOverlay(text="城市之梦", duration=3.0)}, {}),
    # music
    ("add background music", {"music": "lofi"}, {}),
    ("add lofi music", {"music": "lofi"}, {}),
    ("add some upbeat music", {"music": "upbeat"}, {}),
    ("calm music", {"music": "calm"}, {}),
    ("music at 35%", {"music": "lofi", "music_volume": 0.35}, {}),
    ("background music at 20% volume", {"music": "lofi", "music_volume": 0.2}, {}),
    ("no ducking", {"duck": False}, {}),
    (
        "add upbeat music at 30% without ducking",
        {"music": "upbeat", "music_volume": 0.3, "duck": False},
        {},
    ),
    ('use music "~/Music/track.mp3"', {"music": "~/Music/track.mp3"}, {}),
    ("加背景音乐", {"music": "lofi"}, {}),
    ("加轻松的音乐", {"music": "calm"}, {}),
    ("配乐", {"music": "lofi"}, {}),
    # fades
    ("fade in", {"fade_in": 1.0}, {}),
    ("fade out", {"fade_out": 1.0}, {}),
    ("fade in and out", {"fade_in": 1.0, "fade_out": 1.0}, {}),
    ("2 second fade out", {"fade_out": 2.0}, {}),
    ("淡入淡出", {"fade_in": 1.0, "fade_out": 1.0}, {}),
    # the source's audio
    ("mute the original audio", {"mute": True}, {}),
    ("remove the audio", {"mute": True}, {}),
    ("静音", {"mute": True}, {}),
    ("make it louder", {"volume": 1.5}, {}),
    ("turn the volume up 50%", {"volume": 1.5}, {}),
    ("turn the volume down 20%", {"volume": 0.8}, {}),
    ("volume 80%", {"volume": 0.8}, {}),
    ("音量80%", {"volume": 0.8}, {}),
    ("normalize the audio", {"normalize": True}, {}),
    ("normalize loudness", {"normalize": True}, {}),
    ("don't normalize", {"normalize": False}, {}),
    # export
    ("export 1080p", {}, {"resolution": "1080p"}),
    ("export as 720p mp4", {}, {"resolution": "720p", "format": "mp4"}),
    ("in 4k", {}, {"resolution": "2160p"}),
    ("webm", {}, {"format": "webm"}),
    ("as a gif", {}, {"format": "gif"}),
    ("60 fps", {}, {"fps": 60.0}),
    ("high quality", {}, {"quality": "high"}),
    (
        "export as 1080p mp4 at 30 fps in high quality",
        {},
        {"resolution": "1080p", "format": "mp4", "fps": 30.0, "quality": "high"},
    ),
    ("导出1080p", {}, {"resolution": "1080p"}),
    ("导出为gif", {}, {"format": "gif"}),
    ("60帧", {}, {"fps": 60.0}),
    # timelines for editors, beside the output: each editor the format it imports best
    ("also export a Premiere timeline", {}, {"timelines": ("xml",)}),
    ("export a Resolve timeline", {}, {"timelines": ("fcpxml",)}),
    ("export a Final Cut Pro project", {}, {"timelines": ("fcpxml",)}),
    ("export a Premiere/Resolve/Final Cut timeline", {}, {"timelines": ("xml", "fcpxml")}),
    ("export an EDL", {}, {"timelines": ("edl",)}),
    ("export for Kdenlive", {}, {"timelines": ("kdenlive",)}),
    ("export an OTIO timeline too", {}, {"timelines": ("otio",)}),
    ("export a timeline for editing", {}, {"timelines": ("otio", "fcpxml", "xml")}),
    ("导出剪辑工程", {}, {"timelines": ("otio", "fcpxml", "xml")}),
    ("导出Premiere工程", {}, {"timelines": ("xml",)}),
    ("导出达芬奇时间线", {}, {"timelines": ("fcpxml",)}),
    ("导出EDL", {}, {"timelines": ("edl",)}),
    ("export a Premiere timeline and an EDL", {}, {"timelines": ("xml", "edl")}),
]


@pytest.mark.parametrize(("text", "edit", "export"), PHRASINGS)
def test_each_phrasing_sets_exactly_its_fields(
    text: str, edit: dict[str, object], export: dict[str, object]
) -> None:
    parsed = interpret(text)

    assert parsed.not_understood == ()
    assert {name: getattr(parsed.edit, name) for name in parsed.edit.model_fields_set} == edit
    assert parsed.export == export
    assert len(parsed.operations) == len(split_clauses(text))


@pytest.mark.parametrize(
    "text",
    [
        "make it pop",
        "add a watermark",  # which image?
        "loop it 1.5 times",  # a pass is played whole
        "brighten it by 150%",  # beyond the brightness scale
        "speed it up 10x",  # beyond 4x
        "music at 150%",  # beyond full scale
        "cut silences below -95 dB",
        "from 1:30 to 0:05",  # ends before it starts
        "for instagram",  # feed (square) or reels (vertical)?
        "blur",
        "添加特效",
        "trim the video to 30 seconds without pauses",
        "don't remove the pauses",
    ],
)
def test_phrases_not_understood_are_reported_not_guessed(text: str) -> None:
    parsed = interpret(text)

    assert parsed.edit == EditSpec()
    assert parsed.export == {}
    assert parsed.operations == ()
    assert parsed.not_understood == (text,)


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


def test_the_design_example_is_understood_whole() -> None:
    parsed = interpret(
        "cut out silences, add background music, and export as a 60-second highlight reel"
    )

    assert parsed.not_understood == ()
    assert parsed.edit == EditSpec(cut_silences=SilenceCut(), music="lofi", max_duration=60.0)
    assert [item.description for item in parsed.operations] == [
        "cut silences below -28 dB",
        "add lofi music at 35 %, ducked under speech",
        "make a 60 s highlight reel",
    ]


def test_each_understood_clause_is_described() -> None:
    parsed = interpret("cut out silences")

    assert [(item.phrase, item.description) for item in parsed.operations] == [
        ("cut out silences", "cut silences below -28 dB")
    ]


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("music at 20% with no ducking", "add lofi music at 20 %, not ducked"),
        ("add the title 'Hi' at the top for 2s", 'show the title "Hi" at the top from 0 s for 2 s'),
        ("from 0:05 to 1:30", "keep the source from 0:05 to 1:30"),
        (
            "make it vertical",
            "reframe to 9:16 with a blurred background;"
            " titles and captions inside the safe zones of the apps",
        ),
        ("fade in and out over 2 seconds", "fade in and out over 2 s"),
        ("speed it up 2x", "play at 2x speed"),
        ("export as 720p mp4", "export as 720p MP4"),
    ],
)
def test_descriptions_say_what_will_happen(text: str, description: str) -> None:
    assert [item.description for item in interpret(text).operations] == [description]


def test_unknown_phrases_are_reported_verbatim_beside_understood_ones_in_order() -> None:
    parsed = interpret("Cut out silences, make it POP! Add lofi music and sprinkle some magic")

    assert parsed.edit == EditSpec(cut_silences=SilenceCut(), music="lofi")
    assert parsed.not_understood == ("make it POP", "sprinkle some magic")
    assert [item.phrase for item in parsed.operations] == ["Cut out silences", "Add lofi music"]


def test_an_instruction_understood_nowhere_is_reported_whole() -> None:
    parsed = interpret("  Add a title card  ")

    assert parsed.edit == EditSpec()
    assert parsed.operations == ()
    assert parsed.not_understood == ("Add a title card",)


# ---- quoted text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("add the title \"She said 'hi': 100% \\o/\"", "She said 'hi': 100% \\o/"),
        ("add a title “Don't stop: 50% off”", "Don't stop: 50% off"),
        ("add a title ‘It’s “here”’", "It’s “here”"),
        (
            "add the title 'Rock, Paper and Scissors. Then; more'",
            "Rock, Paper and Scissors. Then; more",
        ),
        ("标题「雨、风和『光』」", "雨、风和『光』"),
        ("加标题『C:\\片头\\Intro』", "C:\\片头\\Intro"),
        ('title "🎬 Café  Ünïcode ＡＢＣ"', "🎬 Café  Ünïcode ＡＢＣ"),
        ("title: Urban DREAMS №5", "Urban DREAMS №5"),
    ],
)
def test_quoted_text_is_kept_exactly(text: str, title: str) -> None:
    parsed = interpret(text)

    assert parsed.not_understood == ()
    assert parsed.edit.title is not None
    assert parsed.edit.title.text == title


def test_clauses_do_not_split_inside_quoted_text() -> None:
    text = 'add a title "Rock, Paper and Scissors", then add music; put 「左、右」 at the top'

    assert split_clauses(text) == [
        'add a title "Rock, Paper and Scissors"',
        "add music",
        "put 「左、右」 at the top",
    ]


def test_apostrophes_are_not_quotes() -> None:
    assert split_clauses("don't normalize, add the title 'Paper, Rock' and it's done") == [
        "don't normalize",
        "add the title 'Paper, Rock'",
        "it's done",
    ]


def test_clauses_split_at_punctuation_and_conjunctions_but_not_inside_numbers() -> None:
    text = "cut silences below -30.5 dB; then add music. Also a title and a logo"

    assert split_clauses(text) == [
        "cut silences below -30.5 dB",
        "add music",
        "a title",
        "a logo",
    ]


def test_fade_in_and_out_is_one_clause() -> None:
    assert split_clauses("fade in and out and mute") == ["fade in and out", "mute"]


def test_chinese_clauses_split_at_chinese_punctuation_and_conjunctions() -> None:
    assert split_clauses("去掉静音并加背景音乐，然后导出1080p。合并片段") == [
        "去掉静音",
        "加背景音乐",
        "导出1080p",
        "合并片段",
    ]


# ---- several clauses and instructions --------------------------------------------------------


def test_cutting_more_aggressively_raises_the_threshold_and_narrows_the_margin() -> None:
    parsed = interpret("cut out silences and cut more aggressively")

    assert parsed.edit.cut_silences == AGGRESSIVE
    assert parsed.not_understood == ()


def test_a_plain_request_after_a_refinement_keeps_the_refinement() -> None:
    parsed = interpret_all(["cut more aggressively, add upbeat music", "cut out silences, music"])

    assert parsed.edit.cut_silences == AGGRESSIVE
    assert parsed.edit.music == "upbeat"


def test_a_threshold_in_decibels_is_taken_as_negative() -> None:
    parsed = interpret("cut silences below 30.5 dB")

    assert parsed.edit.cut_silences == SilenceCut(threshold_db=-30.5)
    assert parsed.operations[0].description == "cut silences below -30.5 dB"


@pytest.mark.parametrize("text", ["export as mp4", "Export it as an MP4 file", "save as mp4"])
def test_exporting_as_mp4_is_understood_and_changes_no_edit(text: str) -> None:
    parsed = interpret(text)

    assert parsed.edit == EditSpec()
    assert parsed.export == {"format": "mp4"}
    assert parsed.not_understood == ()
    assert [item.description for item in parsed.operations] == ["export as MP4"]


def test_filler_words_alone_are_neither_operations_nor_complaints() -> None:
    parsed = interpret("please")

    assert parsed.operations == ()
    assert parsed.not_understood == ()


def test_later_instructions_win_and_every_complaint_is_kept() -> None:
    parsed = interpret_all(["remove the pauses, add a logo", "cut more aggressively", "sparkles"])

    assert parsed.edit.cut_silences == AGGRESSIVE
    assert parsed.not_understood == ("add a logo", "sparkles")
    assert len(parsed.operations) == 2


def test_export_settings_from_text_merge_later_wins_and_yield_to_the_rule() -> None:
    parsed = interpret_all(["export 720p mp4", "export 1080p webm at 30 fps"])

    assert parsed.export == {"resolution": "1080p", "format": "webm", "fps": 30.0}
    assert ExportSpec(resolution="720p").merged(parsed.export) == ExportSpec(
        resolution="720p", format="webm", fps=30.0
    )


def test_the_text_sets_only_the_fields_it_names_so_a_structured_edit_can_win() -> None:
    from_text = interpret("make it vertical, add music").edit
    structured = EditSpec(aspect="16:9")

    assert from_text.merged(structured) == EditSpec(aspect="16:9", music="lofi")


def test_the_short_form_gives_the_edit_and_the_phrases_not_understood() -> None:
    assert parse_instruction("remove the pauses, add a logo") == (
        EditSpec(cut_silences=SilenceCut()),
        ["add a logo"],
    )
    assert parse_instructions(["add a logo", "cut more aggressively"]) == (
        EditSpec(cut_silences=AGGRESSIVE),
        ["add a logo"],
    )


# ---- contradictions --------------------------------------------------------------------------


def test_two_values_for_one_setting_are_a_conflict_at_the_later_phrase() -> None:
    (conflict,) = find_conflicts(["cut out silences, make it vertical", "add music, 16:9"])

    assert conflict == Conflict(
        instruction=1,
        phrase="16:9",
        earlier_instruction=0,
        earlier_phrase="make it vertical",
        setting="aspect",
        earlier_value="9:16",
        value="16:9",
    )
    assert (
        conflict.message == '"16:9" contradicts "make it vertical" (aspect 9:16 vs 16:9); keep one'
    )


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (
            ["2x speed and half speed"],
            '"half speed" contradicts "2x speed" (speed 2x vs 0.5x); keep one',
        ),
        (
            ["add lofi music", "加欢快的音乐"],
            '"加欢快的音乐" contradicts "add lofi music" (music lofi vs upbeat); keep one',
        ),
        (
            ["normalize the audio", "don't normalize"],
            '"don\'t normalize" contradicts "normalize the audio" (normalize on vs off); keep one',
        ),
        (
            ["export 1080p", "in 4k"],
            '"in 4k" contradicts "export 1080p" (resolution 1080p vs 2160p); keep one',
        ),
        (
            ["title 'A'", "title 'B'"],
            '"title \'B\'" contradicts "title \'A\'" (title "A" vs "B"); keep one',
        ),
    ],
)
def test_contradictions_name_both_phrases_and_values(texts: list[str], message: str) -> None:
    assert [conflict.message for conflict in find_conflicts(texts)] == [message]


@pytest.mark.parametrize(
    "texts",
    [
        ["cut out silences", "cut more aggressively"],
        ["add background music", "add upbeat music", "music at 20%"],
        ["highlight reel", "keep it under 45 seconds"],
        ["fade out", "2 second fade out"],
        ["make it vertical", "竖屏", "9:16"],  # the same value, said three ways
        ["trim the first 5 seconds", "keep only the first 30 seconds"],
        ["add text 'A'", "add text 'B'"],  # captions add up
        ["make it vertical", "add a logo", "16:9 is what I want"],  # not understood: no claim
    ],
)
def test_refinements_and_repetitions_are_not_conflicts(texts: list[str]) -> None:
    assert find_conflicts(texts) == []


@pytest.mark.parametrize("text", ["make it look nicer", "美化一下视频", "give it a polish"])
def test_a_vague_request_is_the_enhance_preset_said_in_full(text: str) -> None:
    (operation,) = interpret(text).operations

    assert interpret(text).edit.enhance
    assert operation.description == ENHANCE_DESCRIPTION
    for part in ("contrast x1.05", "saturation x1.1", "video denoise", "6 dB hiss", "-14 LUFS"):
        assert part in operation.description


def test_colour_clauses_refine_one_another_and_contradictions_are_found() -> None:
    assert interpret("make it brighter, more contrast").edit.color == ColorAdjust(
        brightness=0.1, contrast=1.2
    )
    (conflict,) = find_conflicts(["make it brighter", "make it darker"])
    assert conflict.setting == "brightness"


def test_play_it_n_times_is_a_loop_and_n_x_a_speed() -> None:
    assert interpret("play it 3 times").edit.loop == 3
    assert interpret("play it 3x").edit.speed == 3.0


def test_a_cut_from_the_end_keeps_an_earlier_start_and_an_end_replaces_it() -> None:
    assert interpret("skip the first 2 s, cut the last 4 s").edit.trim == Trim(start=2, cut_end=4)
    assert interpret("cut the last 4 s, stop at 0:30").edit.trim == Trim(end=30)
