"""`outputs:` as a list of targets: what loads, what each target means, and every mistake
reported with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.config import load_config
from nemowatch.config.targets import SINGLE
from nemowatch.engines.base import Frame
from nemowatch.errors import ConfigError, ConfigProblem
from nemowatch.outputs import targets_of
from nemowatch.rules import ExportSpec


def config_with_outputs(tmp_path: Path, outputs: str, engine: str = "local") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"engine: {engine}\n"
        "rules:\n"
        "  - name: reels\n"
        "    inbox: in\n"
        "    outbox: out\n"
        "    export: {format: mp4, quality: low}\n"
        "    outputs:\n" + outputs,
        encoding="utf-8",
    )
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


YOUTUBE_AND_SHORTS = """\
      - name: youtube
        aspect: 16:9
        resolution: 1080p
      - name: shorts
        file: "shorts/{stem}.mp4"
        aspect: "9:16"
        fit: crop
        resolution: 720p
"""


def test_a_list_of_outputs_loads_as_targets_with_their_own_frame_and_export(
    tmp_path: Path,
) -> None:
    (rule,) = load_config(config_with_outputs(tmp_path, YOUTUBE_AND_SHORTS)).rules

    youtube, shorts = targets_of(rule.outputs, rule.export)

    assert (youtube.name, youtube.template) == ("youtube", "{stem}-youtube.mp4")
    assert youtube.frame == Frame(output="youtube", aspect="16:9")  # unquoted 16:9 read back
    assert youtube.export == ExportSpec(format="mp4", quality="low", resolution="1080p")
    assert (shorts.template, shorts.frame) == (
        "shorts/{stem}.mp4",
        Frame(output="shorts", aspect="9:16", fit="crop"),
    )
    assert shorts.export.resolution == "720p" and shorts.export.quality == "low"


def test_a_target_leaves_unset_what_the_rule_leaves_to_the_instructions() -> None:
    rule_export = ExportSpec.model_validate({"quality": "low"})
    from nemowatch.config.targets import OutputTarget

    spec = OutputTarget(name="web", format="webm").export_spec(rule_export)

    assert spec.model_fields_set == {"quality", "format"}  # resolution: still the text's to say


def test_a_template_is_one_output_named_single(tmp_path: Path) -> None:
    (rule,) = load_config(config_with_outputs(tmp_path, '      "{stem}-edited.mp4"\n')).rules

    (only,) = targets_of(rule.outputs, rule.export)

    assert (only.name, only.template, only.frame) == (SINGLE, "{stem}-edited.mp4", Frame())


def test_an_unknown_key_in_an_output_names_the_key_and_its_line(tmp_path: Path) -> None:
    path = config_with_outputs(tmp_path, "      - name: youtube\n        colour: red\n")

    (problem,) = problems_of(path)

    assert (problem.file, problem.line) == (str(path), 9)
    assert problem.path == "rules[0].outputs[0].colour"
    assert problem.message.startswith('unknown key "colour" (allowed: name, file, aspect, fit,')


def test_two_outputs_with_one_name_are_rejected_at_the_second(tmp_path: Path) -> None:
    path = config_with_outputs(
        tmp_path, "      - name: youtube\n      - {name: youtube, aspect: '9:16'}\n"
    )

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (9, "rules[0].outputs[1].name")
    assert problem.message == 'duplicate output name "youtube" (first used at line 8)'


def test_two_outputs_writing_one_file_are_rejected(tmp_path: Path) -> None:
    path = config_with_outputs(
        tmp_path,
        "      - {name: wide, file: '{stem}.mp4'}\n      - {name: tall, file: '{stem}.mp4'}\n",
    )

    (problem,) = problems_of(path)

    assert (problem.line, problem.path) == (9, "rules[0].outputs[1].file")
    assert "is the file of output 0 too" in problem.message


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "{name: web, format: webm, file: '{stem}.mp4'}",
            '"{stem}.mp4" must end in ".webm" (outputs[0].format is webm)',
        ),
        ("{name: wide, file: '{stem}.webm'}", 'must end in ".mp4" (export.format is mp4)'),
        ("{name: wide, file: '../{stem}.mp4'}", 'leads out of the outbox (".."); remove the ".."'),
        ("{name: wide, file: '/tmp/{stem}.mp4'}", "is absolute; outputs are named inside"),
        ("{name: wide, file: '{title}.mp4'}", "unknown field {title}"),
        ("{name: 'a/b'}", "use letters, digits"),
        ("{name: wide, resolution: 999p}", 'expected "source", "240p"'),
    ],
)
def test_a_bad_output_is_reported_at_its_line(tmp_path: Path, output: str, message: str) -> None:
    path = config_with_outputs(tmp_path, f"      - {output}\n")

    (problem,) = problems_of(path)

    assert problem.line == 8 and problem.path.startswith("rules[0].outputs[0]")
    assert message in problem.message


def test_an_empty_list_of_outputs_is_rejected(tmp_path: Path) -> None:
    (problem,) = problems_of(config_with_outputs(tmp_path, "      []\n"))

    assert problem.path == "rules[0].outputs"
    assert "at least one output" in problem.message


def test_the_nemo_engine_refuses_an_output_with_its_own_picture(tmp_path: Path) -> None:
    path = config_with_outputs(tmp_path, YOUTUBE_AND_SHORTS, engine="nemo")

    problems = problems_of(path)

    # an output's own resolution and fps are made locally after the download (conform.py)
    assert [(problem.line, problem.path) for problem in problems] == [
        (9, "rules[0].outputs[0].aspect"),
        (13, "rules[0].outputs[1].aspect"),
        (14, "rules[0].outputs[1].fit"),
    ]
    assert "render request says only format and quality" in problems[0].message


def test_the_nemo_engine_takes_outputs_that_differ_in_format_and_quality(tmp_path: Path) -> None:
    outputs = "      - {name: high, quality: high}\n      - {name: web, format: webm}\n"

    (rule,) = load_config(config_with_outputs(tmp_path, outputs, engine="nemo")).rules

    assert [target.export.format for target in targets_of(rule.outputs, rule.export)] == [
        "mp4",
        "webm",
    ]
