"""Sidecars (`clip.txt`, `clip.yaml` beside `clip.mp4`): which names are sidecars, how they
are read and checked (each problem with its file and line), and how their instructions
join the rule's (the sidecar wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.config import Rule
from nemowatch.config.sidecars import combine, read_sidecar
from nemowatch.errors import SidecarError
from nemowatch.intake import (
    SIDECAR_WAIT,
    SettleTracker,
    Snapshot,
    Verdict,
    classify,
    companions,
    is_sidecar_name,
    sidecar_floor,
)
from nemowatch.language import interpret_all


def rule_in(folder: Path, **fields: object) -> Rule:
    return Rule.model_validate(
        {"name": "clips", "inbox": folder, "outbox": folder / "out", **fields}
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sidecar"),
    [
        ("clip.txt", True),
        ("clip.YAML", True),
        ("clip.yml", True),
        (".txt", False),
        ("clip.mp4", False),
        ("clip.txt.part", False),
        ("notes.rtf", False),
    ],
)
def test_sidecar_names_go_by_extension(name: str, sidecar: bool) -> None:
    assert is_sidecar_name(name) is sidecar


def test_a_sidecar_in_an_inbox_is_classified_as_one_unless_a_rule_takes_its_name() -> None:
    inbox = Path("/srv/inbox")
    videos = Rule(name="videos", inbox=inbox, outbox=Path("/srv/out"))
    assert classify(inbox / "clip.txt", [videos]) == (Verdict.SIDECAR, videos)
    texts = videos.model_copy(update={"match": ("*.txt",)})
    assert classify(inbox / "clip.txt", [texts]) == (Verdict.TAKE, texts)


def test_the_companions_of_a_sidecar_are_its_stem_with_another_extension() -> None:
    names = ["clip.txt", "clip.yaml", "clip.mp4.part", "clipper.mp4", ".clip.mp4.x1Y2", "a.mp4"]
    assert companions("clip.txt", names) == [".clip.mp4.x1Y2", "clip.mp4.part"]
    assert companions("clip.txt", [*names, "clip.mov"]) == [
        ".clip.mp4.x1Y2",
        "clip.mov",
        "clip.mp4.part",
    ]


def test_a_close_write_settles_a_video_only_after_the_sidecar_wait() -> None:
    tracker = SettleTracker()
    clip = Path("/srv/inbox/clip.mp4")
    snap = Snapshot(size=1, mtime_ns=1, inode=1, device=1)
    floor = sidecar_floor(30.0)
    assert floor == SIDECAR_WAIT
    tracker.observe(clip, snap, 0.0, 30.0, floor)
    tracker.hint_closed(clip, 0.0)
    tracker.observe(clip, snap, 0.5, 30.0, floor)
    assert tracker.settled(0.5) == []
    tracker.observe(clip, snap, floor, 30.0, floor)
    assert tracker.settled(floor) == [clip]


def test_the_sidecar_wait_is_never_longer_than_the_settle_window() -> None:
    assert sidecar_floor(0.5) == 0.5


# ---- reading --------------------------------------------------------------------------------


def test_a_text_sidecar_holds_one_instruction_a_line(tmp_path: Path) -> None:
    text = "# for the launch\nadd the title 'Hello'\n\nmake it square\n"
    path = write(tmp_path / "clip.txt", text)
    sidecar = read_sidecar(path, rule=rule_in(tmp_path), engine="local")
    assert sidecar.instructions == ("add the title 'Hello'", "make it square")
    assert interpret_all(sidecar.instructions).edit.title is not None


def test_a_phrase_not_understood_fails_with_the_file_and_line_and_suggestions(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "clip.txt", "add the title 'Hello'\n\nmake it verticle\n")
    with pytest.raises(SidecarError) as raised:
        read_sidecar(path, rule=rule_in(tmp_path), engine="local")
    [problem] = raised.value.problems
    assert (problem.file, problem.line) == (str(path), 3)
    assert 'does not understand "make it verticle"' in problem.message
    assert '"make it vertical"' in problem.message
    assert f"{path}:3: " in str(raised.value)


def test_a_rule_that_allows_unknown_instructions_allows_them_in_its_sidecars(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "clip.txt", "make it pop like a firework\n")
    rule = rule_in(tmp_path, allow_unknown_instructions=True)
    assert read_sidecar(path, rule=rule, engine="local").instructions == (
        "make it pop like a firework",
    )


def test_the_nemo_engine_takes_any_phrase_as_written(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.txt", "make it pop like a firework\n")
    assert read_sidecar(path, rule=rule_in(tmp_path), engine="nemo").instructions


def test_contradictions_within_a_sidecar_are_problems(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.txt", "make it vertical\nmake it 16:9\n")
    with pytest.raises(SidecarError) as raised:
        read_sidecar(path, rule=rule_in(tmp_path), engine="nemo")
    [problem] = raised.value.problems
    assert problem.line == 2 and "contradicts" in problem.message


def test_an_empty_sidecar_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.txt", "\n# nothing yet\n")
    with pytest.raises(SidecarError, match="holds no instructions"):
        read_sidecar(path, rule=rule_in(tmp_path), engine="local")


def test_problems_name_the_file_as_it_was_dropped(tmp_path: Path) -> None:
    claimed = write(tmp_path / "abc123__clip.txt", "make it verticle\n")
    dropped = tmp_path / "inbox" / "clip.txt"
    with pytest.raises(SidecarError) as raised:
        read_sidecar(claimed, rule=rule_in(tmp_path), engine="local", shown_as=dropped)
    assert raised.value.problems[0].file == str(dropped)


def test_a_yaml_sidecar_holds_instructions_and_an_edit(tmp_path: Path) -> None:
    path = write(
        tmp_path / "clip.yaml",
        "instructions:\n  - add the title 'Hello'\nedit:\n  aspect: '1:1'\n  music_volume: 20%\n",
    )
    sidecar = read_sidecar(path, rule=rule_in(tmp_path), engine="local")
    assert sidecar.instructions == ("add the title 'Hello'",)
    assert sidecar.edit.aspect == "1:1" and sidecar.edit.music_volume == pytest.approx(0.2)
    assert sidecar.edit.model_fields_set == {"aspect", "music_volume"}


def test_a_yaml_sidecar_is_validated_like_a_rule_with_every_problem_and_line(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "clip.yaml",
        "instructions: add the title 'Hi'\nedit:\n  aspect: '3:2'\n  titel: Hi\nmusik: lofi\n",
    )
    with pytest.raises(SidecarError) as raised:
        read_sidecar(path, rule=rule_in(tmp_path), engine="local")
    shown = [(problem.line, problem.path) for problem in raised.value.problems]
    assert shown == [(3, "edit.aspect"), (4, "edit.titel"), (5, "musik")]
    assert 'did you mean "title"' in raised.value.problems[1].message


def test_a_yaml_sidecar_that_is_not_yaml_says_where(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.yaml", "instructions: [add the title 'Hi'\nedit: {\n")
    with pytest.raises(SidecarError) as raised:
        read_sidecar(path, rule=rule_in(tmp_path), engine="local")
    [problem] = raised.value.problems
    assert problem.file == str(path) and problem.line is not None
    assert "invalid YAML" in problem.message


def test_a_music_file_in_a_yaml_sidecar_is_found_beside_it_or_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.yaml", "edit:\n  music: song.mp3\n")
    with pytest.raises(SidecarError) as raised:
        read_sidecar(path, rule=rule_in(tmp_path), engine="local")
    [problem] = raised.value.problems
    assert problem.line == 2 and str(tmp_path / "song.mp3") in problem.message


# ---- combining with the rule ------------------------------------------------------------------


def test_the_sidecars_instructions_follow_the_rules_and_win(tmp_path: Path) -> None:
    rule = rule_in(tmp_path, instructions=["make it vertical", "add lofi music"])
    path = write(tmp_path / "clip.txt", "make it square\n")
    instructions, edit, _ = combine(rule, (read_sidecar(path, rule=rule, engine="local"),))
    assert instructions == ("make it vertical", "add lofi music", "make it square")
    reading = interpret_all(instructions).edit.merged(edit)
    assert reading.aspect == "1:1" and reading.music == "lofi"


def test_the_sidecars_text_wins_over_the_rules_edit_and_export(tmp_path: Path) -> None:
    rule = rule_in(
        tmp_path,
        edit={"title": "Rule title", "aspect": "16:9"},
        export={"resolution": "1080p", "quality": "low"},
    )
    path = write(tmp_path / "clip.txt", "add the title 'Hello'\nexport in 720p\n")
    instructions, edit, export = combine(rule, (read_sidecar(path, rule=rule, engine="local"),))
    planned = interpret_all(instructions).edit.merged(edit)
    assert planned.title is not None and planned.title.text == "Hello"
    assert planned.aspect == "16:9"  # what the sidecar does not mention stays the rule's
    assert export.merged(dict(interpret_all(instructions).export)).resolution == "720p"
    assert export.quality == "low"


def test_the_sidecars_edit_wins_over_the_rules_edit(tmp_path: Path) -> None:
    rule = rule_in(tmp_path, edit={"aspect": "16:9", "music": "calm"})
    path = write(tmp_path / "clip.yaml", "edit:\n  aspect: '9:16'\n")
    _, edit, _ = combine(rule, (read_sidecar(path, rule=rule, engine="local"),))
    assert (edit.aspect, edit.music) == ("9:16", "calm")
