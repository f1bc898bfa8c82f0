"""Cross-field checks: rule names, inboxes and outboxes, match overlap, output templates,
music that must exist, and match patterns the engine cannot take."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.config import check_report, load_config, outputs_problems
from nemowatch.config.models import DEFAULT_MATCH, NEMO_DEFAULT_MATCH
from nemowatch.errors import ConfigError, ConfigProblem


def rule_yaml(name: str, inbox: str, outbox: str, **extra: str) -> str:
    lines = [f"  - name: {name}", f"    inbox: {inbox}", f"    outbox: {outbox}"]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def config_of(tmp_path: Path, *rules: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("rules:\n" + "".join(rules), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


# ---- names -----------------------------------------------------------------------------------


def test_duplicate_rule_names_are_rejected_at_the_second_name(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in1", "out1"), rule_yaml("reels", "in2", "out2"))

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (5, "rules[1].name")
    assert problem.message == 'duplicate rule name "reels" (first used at line 2)'


def test_duplicate_rule_name_in_another_file_names_where_it_was_first_used(
    tmp_path: Path,
) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in1", "out1"))
    path.write_text("rules_dir: rules.d\n" + path.read_text(), encoding="utf-8")
    (tmp_path / "rules.d").mkdir()
    (tmp_path / "rules.d" / "more.yaml").write_text("{name: reels, inbox: in2, outbox: out2}\n")

    (problem,) = problems_of(path)

    assert problem.file == str(tmp_path / "rules.d" / "more.yaml")
    assert problem.message == 'duplicate rule name "reels" (first used at config.yaml:3)'


def test_distinct_rule_names_are_accepted(tmp_path: Path) -> None:
    path = config_of(
        tmp_path, rule_yaml("reels", "in1", "out1"), rule_yaml("stories", "in2", "out2")
    )

    assert [rule.name for rule in load_config(path).rules] == ["reels", "stories"]


# ---- same inbox, overlapping match -----------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('"*.mp4"', '"*.mp4"'),  # identical
        ('"*.mp4"', '"*.MP4"'),  # matching ignores case
        ('"*"', '"*.mov"'),  # a bare * takes everything
        ('"*.mp4"', '"clip-*.mp4"'),  # same extension
        ('"*.mp4"', '"intro.mp4"'),  # a literal name the other pattern matches
    ],
)
def test_same_inbox_with_overlapping_match_is_rejected(
    tmp_path: Path, first: str, second: str
) -> None:
    path = config_of(
        tmp_path,
        rule_yaml("a", "in", "out1", match=first),
        rule_yaml("b", "in", "out2", match=second),
    )

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (9, "rules[1].match")
    assert problem.message.startswith(f'{second} overlaps {first} of rule "a", which watches')


def test_same_inbox_overlaps_the_default_match(tmp_path: Path) -> None:
    path = config_of(
        tmp_path, rule_yaml("a", "in", "out1"), rule_yaml("b", "in", "out2", match='"*.mkv"')
    )

    (problem,) = problems_of(path)

    assert problem.message.startswith('"*.mkv" overlaps "*.mkv" of rule "a"')


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('"*.mp4"', '"*.mov"'),
        ('["*.mp4", "*.m4v"]', '["*.mov", "*.mkv"]'),
        ('"intro.mp4"', '"outro.mp4"'),
    ],
)
def test_same_inbox_with_disjoint_match_is_accepted(
    tmp_path: Path, first: str, second: str
) -> None:
    path = config_of(
        tmp_path,
        rule_yaml("a", "in", "out1", match=first),
        rule_yaml("b", "in", "out2", match=second),
    )

    assert len(load_config(path).rules) == 2


def test_different_inboxes_may_match_the_same_files(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("a", "in1", "out1"), rule_yaml("b", "in2", "out2"))

    assert len(load_config(path).rules) == 2


# ---- inboxes and outboxes --------------------------------------------------------------------


def test_outbox_inside_its_own_inbox_is_rejected(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "in/edited"))

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (4, "rules[0].outbox")
    assert problem.message == (
        f"{tmp_path / 'in' / 'edited'} is inside its own inbox ({tmp_path / 'in'});"
        " finished videos would be taken as new footage"
    )


def test_outbox_equal_to_its_inbox_is_one_problem(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "videos", "./videos"))

    (problem,) = problems_of(path)

    assert problem.path == "rules[0].outbox"
    assert problem.message.startswith(f"{tmp_path / 'videos'} is its own inbox;")


def test_outbox_inside_another_rules_inbox_is_rejected(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("a", "in-a", "out-a"), rule_yaml("b", "in-b", "in-a/b"))

    (problem,) = problems_of(path)

    assert problem.path == "rules[1].outbox"
    assert 'inside rule "a"\'s inbox' in problem.message


def test_inbox_inside_an_outbox_is_rejected(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("a", "in-a", "out"), rule_yaml("b", "out/again", "out-b"))

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (6, "rules[1].inbox")
    assert 'inside rule "a"\'s outbox' in problem.message


def test_chained_rules_with_separate_folders_are_accepted(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("a", "raw", "cut"), rule_yaml("b", "other", "final"))

    assert len(load_config(path).rules) == 2


# ---- outputs templates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["{stem}.mp4", "{stem}-edited.mp4", "{date}/{rule}-{stem}.mp4", "{stem}.{ext}.mp4"],
)
def test_good_output_templates_are_accepted(template: str) -> None:
    assert outputs_problems(template) == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("../{stem}.mp4", '"../{stem}.mp4" leads out of the outbox (".."); remove the ".."'),
        ("{date}/../../{stem}.mp4", '"{date}/../../{stem}.mp4" leads out of the outbox'),
        ("/tmp/{stem}.mp4", '"/tmp/{stem}.mp4" is absolute; outputs are named inside the outbox'),
    ],
)
def test_output_templates_escaping_the_outbox_are_rejected(template: str, message: str) -> None:
    (problem,) = outputs_problems(template)

    assert problem.startswith(message)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{stem}-{size}.mp4", "unknown field {size}"),
        ("{}.mp4", "unknown field {}"),
        ("{stem.upper}.mp4", "unknown field {stem.upper}"),
        ("{date:%Y}/{stem}.mp4", "{date} takes no format or conversion"),
        ("{stem.mp4", "is not a valid template"),
        ("{stem}.mov", 'must end in ".mp4"'),
        ("{stem}.{ext}", 'must end in ".mp4"'),
        ("{date}/", "names no file"),
    ],
)
def test_bad_output_templates_are_rejected(template: str, message: str) -> None:
    (problem,) = outputs_problems(template)

    assert message in problem


def test_output_template_problem_points_at_the_outputs_line(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", outputs='"../{stem}.mp4"'))

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (5, "rules[0].outputs")
    assert problem.message == '"../{stem}.mp4" leads out of the outbox (".."); remove the ".."'


def test_rule_with_a_field_error_still_gets_its_cross_field_checks(tmp_path: Path) -> None:
    path = config_of(
        tmp_path,
        rule_yaml("reels", "in", "in/out", settle_seconds="soon", outputs='"{stem}.mov"'),
    )

    paths = [problem.path for problem in problems_of(path)]

    assert paths == ["rules[0].outbox", "rules[0].settle_seconds", "rules[0].outputs"]


# ---- contradicting instructions --------------------------------------------------------------

INSTRUCTIONS = """\
rules:
  - name: reels
    inbox: in
    outbox: out
    instructions:
      - make it vertical
      - add background music
      - "16:9"
"""


def test_contradicting_instructions_are_an_error_at_the_later_instruction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(INSTRUCTIONS, encoding="utf-8")

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (8, "rules[0].instructions[2]")
    assert problem.message == (
        '"16:9" contradicts "make it vertical" (aspect 9:16 vs 16:9); keep one'
    )


def test_a_contradiction_inside_one_instruction_points_at_that_instruction(
    tmp_path: Path,
) -> None:
    path = config_of(
        tmp_path, rule_yaml("reels", "in", "out", instructions='"2x speed, half speed"')
    )

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (5, "rules[0].instructions[0]")
    assert problem.message == '"half speed" contradicts "2x speed" (speed 2x vs 0.5x); keep one'


def test_contradicting_instructions_are_an_error_for_the_nemo_engine_too(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("engine: nemo\n" + INSTRUCTIONS, encoding="utf-8")

    (problem,) = problems_of(path)

    assert problem.path == "rules[0].instructions[2]"


# ---- phrases the local engine does not understand --------------------------------------------

UNKNOWN = """\
rules:
  - name: reels
    inbox: in
    outbox: out
    instructions:
      - cut out silences
      - make it verticle, add kazoo music
"""


def test_a_phrase_not_understood_is_an_error_at_its_instruction_with_suggestions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(UNKNOWN, encoding="utf-8")

    first, second = problems_of(path)

    assert (first.line, first.path) == (7, "rules[0].instructions[1]")
    assert first.message.startswith(
        'the local engine does not understand "make it verticle"; did you mean "make it vertical", '
    )
    assert first.message.endswith(
        "? (or set allow_unknown_instructions: true on the rule to have it ignored)"
    )
    assert (second.line, second.path) == (7, "rules[0].instructions[1]")
    assert 'not understand "add kazoo music"; did you mean "add calm music"' in second.message


def test_a_rule_may_allow_unknown_instructions_and_check_warns_instead(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(UNKNOWN + "    allow_unknown_instructions: true\n", encoding="utf-8")

    config = load_config(path)
    warnings = [text for text in check_report(config) if "instructions" in text]

    assert config.rules[0].allow_unknown_instructions
    assert len(warnings) == 2
    assert warnings[0].startswith(
        'rule "reels": instructions[1]: the local engine does not understand "make it verticle";'
        ' did you mean "make it vertical"'
    )
    assert warnings[0].endswith("(ignored: the rule sets allow_unknown_instructions)")


def test_phrases_are_not_checked_for_the_nemo_engine(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("engine: nemo\n" + UNKNOWN, encoding="utf-8")

    config = load_config(path)

    assert not [text for text in check_report(config) if "instructions" in text]


def test_a_structured_edit_may_override_the_text_without_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        INSTRUCTIONS.replace('      - "16:9"\n', "") + '    edit: {aspect: "16:9"}\n',
        encoding="utf-8",
    )

    (rule,) = load_config(path).rules

    assert rule.edit.aspect == "16:9"


# ---- music the local engine could not find ---------------------------------------------------


def test_edit_music_naming_a_missing_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit="{music: tracks/theme.mp3}"))

    (problem,) = problems_of(path)

    assert (problem.file, problem.line, problem.path) == (str(path), 5, "rules[0].edit.music")
    assert str(tmp_path / "tracks" / "theme.mp3") in problem.message


def test_edit_music_naming_no_built_in_mood_says_which_moods_there_are(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit="{music: jazz}"))

    (problem,) = problems_of(path)

    assert problem.path == "rules[0].edit.music"
    assert problem.message.startswith('"jazz" is not a built-in mood (lofi, upbeat, calm)')


def test_a_music_folder_without_audio_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tracks").mkdir()
    (tmp_path / "tracks" / "notes.txt").write_text("no music here")
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit="{music: tracks}"))

    (problem,) = problems_of(path)

    assert "holds no audio files" in problem.message


@pytest.mark.parametrize("music", ["calm", "UPBEAT", "theme.mp3", "tracks"])
def test_music_that_exists_or_is_a_built_in_mood_is_accepted(tmp_path: Path, music: str) -> None:
    (tmp_path / "tracks").mkdir()
    (tmp_path / "tracks" / "one.flac").write_bytes(b"")
    (tmp_path / "theme.mp3").write_bytes(b"")
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit=f"{{music: {music}}}"))

    assert load_config(path).rules[0].edit.music


def test_music_named_in_the_instructions_is_checked_at_its_instruction(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "song.mp3"
    instructions = f'["cut out silences", "add music \\"{missing}\\""]'
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", instructions=instructions))

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (5, "rules[0].instructions[1]")
    assert f"no music file or folder at {missing}" in problem.message


def test_music_in_edit_wins_over_missing_music_in_the_instructions(tmp_path: Path) -> None:
    instructions = '["add music \\"/nowhere/song.mp3\\""]'
    path = config_of(
        tmp_path, rule_yaml("reels", "in", "out", instructions=instructions, edit="{music: calm}")
    )

    assert load_config(path).rules[0].edit.music == "calm"


def test_the_nemo_engine_does_not_check_music_it_never_reads(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit="{music: jazz}"))
    path.write_text("engine: nemo\n" + path.read_text(), encoding="utf-8")

    assert load_config(path).engine == "nemo"


# ---- match patterns the engine cannot take (warnings) ----------------------------------------


def pattern_warnings(tmp_path: Path, match: str, engine: str = "local") -> list[str]:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", match=match))
    path.write_text(f"engine: {engine}\n" + path.read_text(), encoding="utf-8")
    (tmp_path / "in").mkdir()  # no "does not exist yet" warning
    return check_report(load_config(path))


def test_a_pattern_for_files_the_local_engine_cannot_edit_warns(tmp_path: Path) -> None:
    (warning,) = pattern_warnings(tmp_path, '["*.mp4", "notes-*.PDF"]')

    assert warning.startswith('rule "reels": match pattern "notes-*.PDF" only catches .pdf')
    assert "local engine cannot edit; such files will fail" in warning
    assert "the local engine takes" in warning and " mp3 " in warning


@pytest.mark.parametrize("match", ['"IMG_*.JPG"', '"*.wav"', '["*.mp4", "*.gif", "*.webp"]'])
def test_photos_and_sound_files_do_not_warn_with_the_local_engine(
    tmp_path: Path, match: str
) -> None:
    assert pattern_warnings(tmp_path, match) == []


def test_a_pattern_without_an_extension_warns_that_it_catches_anything(tmp_path: Path) -> None:
    (warning,) = pattern_warnings(tmp_path, '"clip-*"')

    assert 'match pattern "clip-*" can also catch files the local engine cannot edit' in warning
    assert '"clip-*.mp4"' in warning


def test_a_match_that_catches_nothing_the_engine_takes_says_so(tmp_path: Path) -> None:
    warnings = pattern_warnings(tmp_path, '["*.txt", "*.pdf"]')

    assert len(warnings) == 3
    assert warnings[-1].startswith('rule "reels": its match catches nothing the local engine')


def test_the_nemo_engine_warns_about_extensions_it_does_not_accept(tmp_path: Path) -> None:
    (warning,) = pattern_warnings(tmp_path, '["*.jpg", "*.m4v"]', engine="nemo")

    assert 'match pattern "*.m4v" only catches .m4v files, which the nemo engine' in warning


@pytest.mark.parametrize(
    ("engine", "expected"), [("local", DEFAULT_MATCH), ("nemo", NEMO_DEFAULT_MATCH)]
)
def test_the_default_match_is_what_the_engine_takes(
    tmp_path: Path, engine: str, expected: tuple[str, ...]
) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out"))
    path.write_text(f"engine: {engine}\n" + path.read_text(), encoding="utf-8")
    (tmp_path / "in").mkdir()

    config = load_config(path)

    assert config.rules[0].match == expected
    assert {"*.jpg", "*.png", "*.gif", "*.mp3", "*.wav", "*.mp4", "*.mkv"} <= set(expected)
    assert check_report(config) == []  # the defaults never warn


# ---- watermark images the local engine could not find ----------------------------------------


@pytest.mark.parametrize(
    "edit", ["{watermark: art/logo.png}", "{watermark: {file: art/logo.png, corner: top-left}}"]
)
def test_a_missing_watermark_image_is_an_error_at_its_line(tmp_path: Path, edit: str) -> None:
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit=edit))

    (problem,) = problems_of(path)

    assert (problem.file, problem.line) == (str(path), 5)
    assert problem.path == "rules[0].edit.watermark"
    assert f"no watermark image at {tmp_path / 'art' / 'logo.png'}" in problem.message


def test_a_watermark_image_is_found_beside_the_rule_file(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "logo.png").write_bytes(b"")
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", edit="{watermark: art/logo.png}"))

    mark = load_config(path).rules[0].edit.watermark

    assert mark is not None and mark.file == str(tmp_path / "art" / "logo.png")


def test_a_watermark_named_in_the_instructions_is_checked_at_its_instruction(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "gone" / "logo.png"
    instructions = f'["reverse it", "add watermark \\"{missing}\\" in the top right"]'
    path = config_of(tmp_path, rule_yaml("reels", "in", "out", instructions=instructions))

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (5, "rules[0].instructions[1]")
    assert f"no watermark image at {missing}" in problem.message


# ---- timelines for editors -------------------------------------------------------------------


def test_a_rule_exporting_timelines_loads_with_each_format_once(tmp_path: Path) -> None:
    path = config_of(
        tmp_path, rule_yaml("talks", "in", "out", export="{timelines: [otio, edl, otio]}")
    )

    (rule,) = load_config(path).rules

    assert rule.export.timelines == ("otio", "edl")


def test_an_unknown_timeline_format_is_rejected(tmp_path: Path) -> None:
    path = config_of(tmp_path, rule_yaml("talks", "in", "out", export="{timelines: [aaf]}"))

    (problem,) = problems_of(path)

    assert problem.path.startswith("rules[0].export.timelines")
    assert "otio" in problem.message


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"export": "{timelines: [kdenlive]}"}, "rules[0].export.timelines"),
        ({"instructions": '["export for Kdenlive"]'}, "rules[0].instructions"),
    ],
)
def test_timelines_without_their_adapter_installed_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], where: str
) -> None:
    from nemowatch import timelines

    # as if the Kdenlive adapter were not installed: its module is one that does not exist
    monkeypatch.setitem(timelines._PLUGINS, "kdenlive", "nemowatch_no_such_adapter")
    path = config_of(tmp_path, rule_yaml("talks", "in", "out", **extra))

    (problem,) = problems_of(path)

    assert problem.path == where
    assert "pip install 'nemowatch[timelines]'" in problem.message
