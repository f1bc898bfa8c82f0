"""Loading config.yaml and rule files: shorthands, paths, and every error with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nemowatch.config import (
    DEFAULT_MATCH,
    EXAMPLE_CONFIG,
    check_report,
    example_config,
    load_config,
)
from nemowatch.errors import ConfigError, ConfigProblem
from nemowatch.rules import EditSpec

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    """Write dedented YAML whose first line is line 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def only_problem(path: Path) -> ConfigProblem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


RULE = """
rules:
  - name: reels
    inbox: in
    outbox: out
"""


# ---- the example -----------------------------------------------------------------------------


def test_example_config_loads_with_its_reels_rule() -> None:
    config = load_config(REPO / "config.example.yaml")

    (rule,) = config.rules
    assert config.engine == "local"
    assert config.state_dir == REPO / "demo" / "state"
    assert rule.name == "reels"
    assert (rule.inbox, rule.outbox) == (REPO / "demo" / "inbox", REPO / "demo" / "outbox")
    assert rule.instructions == ("cut out silences",)
    assert rule.edit.cut_silences is not None
    assert (rule.export.resolution, rule.export.quality) == ("720p", "medium")
    assert rule.outputs == "{stem}-edited.mp4"
    assert rule.settle_seconds == 2


def test_loaded_config_records_its_source_and_rule_files(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", RULE)

    config = load_config(config_path)

    assert config.source == config_path
    assert config.rule_files == (config_path,)


# ---- all errors at once ----------------------------------------------------------------------


def test_every_mistake_is_reported_at_once_with_its_file_and_line(tmp_path: Path) -> None:
    config_path = write(
        tmp_path / "config.yaml",
        """
        engine: local
        concurrency: -1
        colour: red
        rules_dir: rules.d
        rules:
          - name: reels
            inbox: in
            outbox: in/edited
            export: {resolution: 9x16}
            outputs: "{stem}-{size}.mp4"
          - name: reels
            inbox: other
        """,
    )
    rule_file = write(
        tmp_path / "rules.d" / "broken.yaml",
        """
        name: stories
        inbox: [unclosed
        """,
    )

    problems = problems_of(config_path)

    where = [(problem.file, problem.line, problem.path) for problem in problems]
    config_file = str(config_path)
    assert where == [
        (config_file, 2, "concurrency"),
        (config_file, 3, "colour"),
        (config_file, 8, "rules[0].outbox"),
        (config_file, 9, "rules[0].export.resolution"),
        (config_file, 10, "rules[0].outputs"),
        (config_file, 11, "rules[1].outbox"),
        (config_file, 11, "rules[1].name"),
        (str(rule_file), 3, ""),
    ]
    messages = [problem.message for problem in problems]
    assert messages[0] == "must be greater than or equal to 1, got -1"
    assert messages[1].startswith('unknown key "colour" (allowed: engine, state_dir,')
    assert messages[2].startswith(f"{tmp_path / 'in' / 'edited'} is inside its own inbox")
    assert messages[3] == (
        'expected "source", "240p", "360p", "480p", "720p", "1080p", "1440p" or "2160p", got "9x16"'
    )
    assert messages[4].startswith("unknown field {size}")
    assert messages[5] == "missing required key"
    assert messages[6] == 'duplicate rule name "reels" (first used at line 6)'
    assert messages[7].startswith("invalid YAML: ")


def test_config_error_lists_each_problem_as_file_line_path_message(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", RULE + "    after: {success: shred}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(config_path)

    assert str(caught.value) == (
        "invalid configuration (1 problem):\n"
        f'  {config_path}:5: rules[0].after.success: expected "archive", "keep" or "delete",'
        ' got "shred"'
    )


def test_invalid_yaml_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    config_path = write(
        tmp_path / "config.yaml",
        """
        engine: local
        rules:
          - name: reels
            inbox: in
           outbox: out
        """,
    )

    problem = only_problem(config_path)

    assert (problem.file, problem.line) == (str(config_path), 5)
    assert problem.message.startswith("invalid YAML: ")


def test_duplicate_yaml_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", RULE + "    inbox: elsewhere\n")

    problem = only_problem(config_path)

    assert problem.line == 5
    assert problem.message == 'invalid YAML: duplicate key "inbox" (first at line 3)'


def test_yaml_tags_that_build_objects_are_rejected(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "engine: !!python/object:os.system {}\n")

    problem = only_problem(config_path)

    assert problem.line == 1
    assert "python/object" in problem.message


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "absent.yaml")

    assert problem.message == "file not found"


def test_unknown_key_suggests_the_closest_allowed_key(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", RULE + "    instructons: [cut]\n")

    problem = only_problem(config_path)

    assert problem.path == "rules[0].instructons"
    assert problem.message.startswith('unknown key "instructons" (did you mean "instructions"?')


def test_unknown_nested_key_lists_the_keys_of_that_mapping(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", RULE + "    edit: {sparkles: red}\n")

    problem = only_problem(config_path)

    assert (
        problem.message == f'unknown key "sparkles" (allowed: {", ".join(EditSpec.model_fields)})'
    )


def test_missing_required_key_points_at_its_rule(tmp_path: Path) -> None:
    config_path = write(
        tmp_path / "config.yaml",
        """
        rules:
          - name: reels
            inbox: in
        """,
    )

    problem = only_problem(config_path)

    assert (problem.line, problem.path, problem.message) == (
        2,
        "rules[0].outbox",
        "missing required key",
    )


def test_settings_set_by_the_loader_cannot_be_written(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "source: elsewhere.yaml\n" + RULE.lstrip("\n"))

    problem = only_problem(config_path)

    assert (problem.line, problem.path) == (1, "source")


def test_config_without_rules_is_an_error(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "engine: local\n")

    problem = only_problem(config_path)

    assert problem.message == "no rules: add rules: or rules_dir:"


# ---- shorthands ------------------------------------------------------------------------------


def test_single_strings_mean_lists_of_one(tmp_path: Path) -> None:
    config_path = write(
        tmp_path / "config.yaml",
        RULE + '    match: "*.mp4"\n    ignore: "draft-*"\n    instructions: cut out silences\n',
    )

    (rule,) = load_config(config_path).rules

    assert rule.match == ("*.mp4",)
    assert rule.ignore == ("draft-*",)
    assert rule.instructions == ("cut out silences",)


def test_match_defaults_to_common_video_extensions(tmp_path: Path) -> None:
    (rule,) = load_config(write(tmp_path / "config.yaml", RULE)).rules

    assert rule.match == DEFAULT_MATCH


def test_yaml_merge_keys_share_settings_between_rules(tmp_path: Path) -> None:
    config_path = write(
        tmp_path / "config.yaml",
        """
        rules:
          - &reels
            name: reels
            inbox: in
            outbox: out
            export: {resolution: 720p}
          - <<: *reels
            name: stories
            inbox: in2
        """,
    )

    reels, stories = load_config(config_path).rules

    assert stories.export.resolution == "720p"
    assert stories.outbox == reels.outbox
    assert stories.inbox == tmp_path / "in2"


# ---- rules_dir -------------------------------------------------------------------------------


def test_rules_dir_files_hold_one_rule_or_a_list_read_in_name_order(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: rules.d\n")
    list_file = write(
        tmp_path / "rules.d" / "a-list.yml",
        """
        - {name: first, inbox: in1, outbox: out1}
        - {name: second, inbox: in2, outbox: out2}
        """,
    )
    single_file = write(
        tmp_path / "rules.d" / "b-single.yaml", "{name: third, inbox: in3, outbox: out3}\n"
    )
    write(tmp_path / "rules.d" / "notes.txt", "not a rule\n")

    config = load_config(config_path)

    assert [rule.name for rule in config.rules] == ["first", "second", "third"]
    assert config.rules_dir == tmp_path / "rules.d"
    assert config.rule_files == (config_path, list_file, single_file)


def test_rules_dir_and_inline_rules_combine(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: rules.d\n" + RULE.lstrip("\n"))
    write(tmp_path / "rules.d" / "more.yaml", "{name: more, inbox: in2, outbox: out2}\n")

    config = load_config(config_path)

    assert [rule.name for rule in config.rules] == ["reels", "more"]


def test_paths_in_a_rule_file_are_relative_to_that_file(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: nested/rules.d\n")
    write(
        tmp_path / "nested" / "rules.d" / "reels.yaml", "{name: reels, inbox: in, outbox: ../out}\n"
    )

    (rule,) = load_config(config_path).rules

    assert rule.inbox == tmp_path / "nested" / "rules.d" / "in"
    assert rule.outbox == tmp_path / "nested" / "out"


def test_problem_in_a_rule_file_names_that_file_and_line(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: rules.d\n")
    rule_file = write(
        tmp_path / "rules.d" / "reels.yaml",
        """
        - name: ok
          inbox: in
          outbox: out
        - name: reels
          inbox: in2
          outbox: out2
          on_conflict: replace
        """,
    )

    problem = only_problem(config_path)

    assert (problem.file, problem.line, problem.path) == (
        str(rule_file),
        7,
        "rules[1].on_conflict",
    )
    assert problem.message == 'expected "rename", "overwrite" or "skip", got "replace"'


def test_rules_dir_beside_the_config_does_not_read_the_config_as_a_rule(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: .\n")
    write(tmp_path / "reels.yaml", "{name: reels, inbox: in, outbox: out}\n")

    config = load_config(config_path)

    assert config.rule_files == (config_path, tmp_path / "reels.yaml")


def test_rule_file_that_is_not_a_rule_is_an_error(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: rules.d\n")
    rule_file = write(tmp_path / "rules.d" / "reels.yaml", "just text\n")

    problem = only_problem(config_path)

    assert (problem.file, problem.line) == (str(rule_file), 1)
    assert problem.message.endswith('got "just text"')


def test_missing_rules_dir_is_an_error(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "concurrency: 1\nrules_dir: absent\n")

    problem = only_problem(config_path)

    assert (problem.line, problem.path) == (2, "rules_dir")
    assert problem.message == f"{tmp_path / 'absent'} does not exist"


def test_rules_dir_without_rule_files_is_an_error(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", "rules_dir: rules.d\n")
    (tmp_path / "rules.d").mkdir()
    write(tmp_path / "rules.d" / ".#reels.yaml", "an editor's lock file\n")

    problem = only_problem(config_path)

    assert problem.path == "rules_dir"
    assert problem.message.startswith("no rules: ")


# ---- paths -----------------------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    config_path = write(tmp_path / "conf" / "config.yaml", "state_dir: state\n" + RULE.lstrip("\n"))

    config = load_config(config_path)

    assert config.state_dir == tmp_path / "conf" / "state"
    assert config.rules[0].inbox == tmp_path / "conf" / "in"


def test_tilde_and_environment_variables_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIA", str(tmp_path / "media"))
    config_path = write(
        tmp_path / "config.yaml",
        """
        state_dir: ~/state
        rules:
          - name: reels
            inbox: $MEDIA/inbox
            outbox: ${MEDIA}/outbox
        """,
    )

    config = load_config(config_path)

    assert config.state_dir == tmp_path / "home" / "state"
    assert config.rules[0].inbox == tmp_path / "media" / "inbox"
    assert config.rules[0].outbox == tmp_path / "media" / "outbox"


def test_unset_environment_variable_in_a_path_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEMOWATCH_TEST_UNSET", raising=False)
    config_path = write(
        tmp_path / "config.yaml",
        RULE.replace("inbox: in", "inbox: $NEMOWATCH_TEST_UNSET/in"),
    )

    problem = only_problem(config_path)

    assert (problem.line, problem.path) == (3, "rules[0].inbox")
    assert problem.message == "environment variable $NEMOWATCH_TEST_UNSET is not set"


def test_empty_path_is_an_error_not_the_current_folder(tmp_path: Path) -> None:
    config_path = write(tmp_path / "config.yaml", RULE.replace("outbox: out", 'outbox: ""'))

    problem = only_problem(config_path)

    assert problem.path == "rules[0].outbox"
    assert problem.message.startswith("must not be empty")


def test_state_dir_defaults_to_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))

    config = load_config(write(tmp_path / "config.yaml", RULE))

    assert config.state_dir == tmp_path / "xdg-state" / "nemowatch"


def test_state_dir_defaults_to_local_state_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    config = load_config(write(tmp_path / "config.yaml", RULE))

    assert config.state_dir == tmp_path / "home" / ".local" / "state" / "nemowatch"


def test_explicit_state_dir_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))

    config = load_config(write(tmp_path / "config.yaml", "state_dir: mine\n" + RULE.lstrip("\n")))

    assert config.state_dir == tmp_path / "mine"


# ---- check report ----------------------------------------------------------------------------


def test_check_report_warns_that_a_missing_inbox_will_be_created(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.yaml", RULE))

    assert check_report(config) == [
        f'rule "reels": inbox {tmp_path / "in"} does not exist yet; it will be created'
    ]


def test_check_report_is_empty_when_inboxes_exist(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()

    assert check_report(load_config(write(tmp_path / "config.yaml", RULE))) == []


def test_check_report_says_the_nemo_engine_reads_no_edit_block(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    text = "engine: nemo\n" + RULE + "    edit: {captions: true, cut_silences: true}\n"

    assert check_report(load_config(write(tmp_path / "config.yaml", text))) == [
        'rule "reels": edit: captions, cut_silences is not read by the nemo engine (it edits'
        " from `instructions`): say it there, or use engine: local"
    ]


def test_an_unquoted_aspect_ratio_is_understood(tmp_path: Path) -> None:
    # YAML 1.1 reads 9:16 without quotes as the number 556 (base 60)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"rules:\n  - name: r\n    inbox: {tmp_path}/in\n    outbox: {tmp_path}/out\n"
        "    edit:\n      aspect: 9:16\n",
        encoding="utf-8",
    )
    assert load_config(config).rules[0].edit.aspect == "9:16"


def test_a_relative_music_path_is_relative_to_the_rule_file(tmp_path: Path) -> None:
    (tmp_path / "tracks").mkdir()
    (tmp_path / "tracks" / "theme.mp3").write_bytes(b"")  # the folder must hold a track
    config = tmp_path / "config.yaml"
    config.write_text(
        f"rules:\n  - name: r\n    inbox: {tmp_path}/in\n    outbox: {tmp_path}/out\n"
        "    edit:\n      music: tracks/\n  - name: s\n"
        f"    inbox: {tmp_path}/in2\n    outbox: {tmp_path}/out2\n    edit: {{music: lofi}}\n",
        encoding="utf-8",
    )
    first, second = load_config(config).rules
    assert first.edit.music == str(tmp_path / "tracks")
    assert second.edit.music == "lofi"


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ("1000", 1000),
        ("500MB", 500_000_000),
        ("1.5 GB", 1_500_000_000),
        ("2GiB", 2 * 1024**3),
        ("700 mib", 700 * 1024**2),
    ],
)
def test_max_size_is_bytes_or_a_size_with_its_unit(tmp_path: Path, written: str, size: int) -> None:
    config = write(tmp_path / "config.yaml", RULE + f"    max_size: {written}\n")
    assert load_config(config).rules[0].max_size == size


def test_max_size_defaults_to_no_limit(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "config.yaml", RULE)).rules[0].max_size is None


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("lots", 'expected a size such as 500MB, 2GB or 2GiB, or a number of bytes, got "lots"'),
        ("5 XB", 'expected a size such as 500MB, 2GB or 2GiB, or a number of bytes, got "5 XB"'),
        ("true", "expected a size such as 500MB, 2GB or 2GiB, or a number of bytes, got true"),
        ("0", "must be greater than 0, got 0"),
    ],
)
def test_a_max_size_that_is_not_a_size_is_reported_at_its_line(
    tmp_path: Path, written: str, message: str
) -> None:
    config = write(tmp_path / "config.yaml", RULE + f"    max_size: {written}\n")
    problem = only_problem(config)
    assert (problem.line, problem.path, problem.message) == (5, "rules[0].max_size", message)


def test_the_packaged_example_is_the_repositorys_config_example(tmp_path: Path) -> None:
    # `nemowatch init` writes the packaged copy; the README points at the repository's
    packaged = (REPO / "nemowatch" / EXAMPLE_CONFIG).read_bytes()
    assert packaged == (REPO / "config.example.yaml").read_bytes()


def test_the_example_made_for_another_folder_loads_with_its_folders_there(tmp_path: Path) -> None:
    # a folder whose own name holds "demo/" must come through unchanged
    folder = tmp_path / "demo" / "mine"
    folder.mkdir(parents=True)
    path = folder / "config.yaml"
    path.write_text(example_config(path), encoding="utf-8")
    config = load_config(path)
    assert config.state_dir == folder / "state"
    assert [(rule.inbox, rule.outbox) for rule in config.rules] == [
        (folder / "inbox", folder / "outbox")
    ]
    assert f"then drop a video into {folder}/inbox/" in path.read_text(encoding="utf-8")
