"""The JSON Schema of config and rule files: shipped as generated, accepting every config
people and tests write (shorthands included), rejecting what `check` rejects where a schema
can say so."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from nemowatch.config import example_config, load_config
from nemowatch.config.schema import config_schema, rule_file_schema, schema_text, shipped_text
from nemowatch.errors import ConfigError
from tests.e2e import harness

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIGS = Draft7Validator(config_schema())
RULE_FILES = Draft7Validator(rule_file_schema())
REGENERATE = (
    "the shipped schema is stale: regenerate it with\n"
    "  nemowatch schema > nemowatch/data/schema.json\n"
    "  nemowatch schema --rule-file > nemowatch/data/rule.schema.json"
)


def schema_errors(data: object, validator: Draft7Validator = CONFIGS) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(data)
    ]


def loads(text: str, folder: Path) -> bool:
    """Whether `text`, as config.yaml in `folder`, is a config nemowatch loads."""
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError:
        return False
    return True


# ---- the shipped files -----------------------------------------------------------------------


@pytest.mark.parametrize("rule_file", [False, True], ids=["schema.json", "rule.schema.json"])
def test_the_shipped_schema_is_what_schema_generates(rule_file: bool) -> None:
    assert shipped_text(rule_file=rule_file) == schema_text(rule_file=rule_file), REGENERATE


def test_the_schemas_are_valid_draft_7_schemas() -> None:
    Draft7Validator.check_schema(config_schema())
    Draft7Validator.check_schema(rule_file_schema())


def test_the_schema_command_prints_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "schema", "--rule-file"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout)["title"] == "nemowatch rule file"


def test_the_examples_name_the_schema_on_their_first_line(tmp_path: Path) -> None:
    example = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    assert example.splitlines()[0] == "# yaml-language-server: $schema=nemowatch/data/schema.json"
    assert (ROOT / example.splitlines()[0].split("=", 1)[1]).is_file()  # from the checkout
    written = example_config(tmp_path / "config.yaml")  # what init writes, beside schema.json
    assert written.splitlines()[0] == "# yaml-language-server: $schema=schema.json"


# ---- what is accepted ------------------------------------------------------------------------


def test_the_example_config_passes() -> None:
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    assert schema_errors(data) == []


def _doc_blocks() -> Iterator[Any]:
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for index, block in enumerate(text.split("```yaml\n")[1:]):
            block = block.split("```", 1)[0]
            if not block.startswith("# sidecar: "):  # a sidecar is not a config
                yield pytest.param(block, id=f"{path.name}#{index}")


@pytest.mark.parametrize("block", list(_doc_blocks()))
def test_each_config_in_the_docs_passes(block: str) -> None:
    assert schema_errors(yaml.safe_load(block)) == []


def _written_by_tests() -> Iterator[Any]:
    """The configs the tests write: every YAML text of a test module that holds rules, and
    every config the e2e harness writes from literal arguments (`write_config`, `rule`)."""
    for module in sorted((ROOT / "tests").rglob("test_*.py")):
        source = module.read_text(encoding="utf-8")
        if "rule(" not in source and not ("rules:" in source and "inbox:" in source):
            continue  # neither below: not parsed (each worker collects this: 0.6 -> 0.3 s)
        tree = ast.parse(source)
        name = module.relative_to(ROOT / "tests")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = textwrap.dedent(node.value).lstrip("\n")
                if "rules:" in text and "inbox:" in text:
                    yield pytest.param(text, id=f"{name}:{node.lineno}")
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "rule":
                try:
                    fields = {word.arg: ast.literal_eval(word.value) for word in node.keywords}
                except ValueError:
                    continue  # an argument computed by the test
                if None not in fields:  # no **spread
                    yield pytest.param(fields, id=f"{name}:{node.lineno}:rule")


@pytest.mark.parametrize("written", list(_written_by_tests()))
def test_each_config_the_tests_write_passes_if_it_loads(written: Any, tmp_path: Path) -> None:
    if isinstance(written, dict):  # the harness's rule(...) fields
        harness.write_config(tmp_path, [harness.rule(tmp_path, **written)])
        text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    else:
        text = written
    if not loads(text, tmp_path):
        return  # a mistake the test makes on purpose: the table below covers mistakes
    assert schema_errors(yaml.safe_load(text)) == []


# Every shorthand the loader expands (rules.py, models.py, targets.py, values.py), as written.
SHORTHANDS = [
    pytest.param({"match": "*.mp4", "ignore": "*.tmp", "instructions": "cut out silences"},
                 id="one pattern or instruction"),
    pytest.param({"max_size": "500MB"}, id="size in MB"),
    pytest.param({"max_size": "2 GiB"}, id="size in GiB"),
    pytest.param({"max_size": 1000000}, id="size in bytes"),
    pytest.param({"edit": {"cut_silences": True, "captions": False, "remove_fillers": True}},
                 id="true for the defaults"),
    pytest.param({"edit": {"title": "Urban Dreams"}}, id="title as text"),
    pytest.param({"edit": {"fade_in": True, "fade_out": 2}}, id="fade true"),
    pytest.param({"edit": {"music": "lofi", "music_volume": "35%", "volume": "150 %"}},
                 id="percentages"),
    pytest.param({"edit": {"music_volume": "100%", "volume": "800%"}}, id="full percentages"),
    pytest.param({"edit": {"trim": {"last": 30, "start": 0}}}, id="trim last"),
    pytest.param({"edit": {"trim": {"start": 2, "cut_end": 5}}}, id="trim start and cut_end"),
    pytest.param({"edit": {"denoise": "light"}}, id="denoise by name"),
    pytest.param({"edit": {"denoise": True}}, id="denoise true"),
    pytest.param({"edit": {"loop": False}}, id="loop false"),
    pytest.param({"edit": {"loop": 1}}, id="loop once"),
    pytest.param({"outputs": [{"name": "shorts", "aspect": "9:16"}]}, id="several outputs"),
    pytest.param({"recursive": "yes", "poll": "Off", "edit": {"duck": "no"}},
                 id="yes and no as YAML 1.2 editors read them"),
]  # fmt: skip


@pytest.mark.parametrize("fields", SHORTHANDS)
def test_each_shorthand_loads_and_passes(fields: dict[str, Any], tmp_path: Path) -> None:
    data = {"rules": [{"name": "reels", "inbox": "in", "outbox": "out", **fields}]}
    assert loads(yaml.safe_dump(data), tmp_path)
    assert schema_errors(data) == []


@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1", "4:5"])
def test_an_unquoted_aspect_passes_as_yaml_reads_it(aspect: str, tmp_path: Path) -> None:
    # YAML 1.1 (PyYAML) reads 16:9 as the base-60 number 969; the loader turns it back
    text = f"rules:\n  - {{name: r, inbox: in, outbox: out, edit: {{aspect: {aspect}}}}}\n"
    assert loads(text, tmp_path)
    assert schema_errors(yaml.safe_load(text)) == []


def test_a_rule_file_holds_one_rule_or_a_list() -> None:
    one = {"name": "reels", "inbox": "in", "outbox": "out", "match": "*.mp4"}
    assert schema_errors(one, RULE_FILES) == []
    assert schema_errors([one, {**one, "name": "more"}], RULE_FILES) == []
    assert schema_errors({**one, "engine": "local"}, RULE_FILES)  # a setting is no rule key


# ---- what is rejected ------------------------------------------------------------------------

# Mistakes only `check` (or loading) can catch, left out of the table below:
# - two rules with one name, or sharing (or nesting) an inbox or outbox; overlapping patterns
# - a music, watermark or cover file (or rules_dir) that does not exist; $VARS not set
# - a phrase of `instructions` the local engine does not understand, or two that conflict
# - `outputs` templates naming unknown fields, two outputs with one file, outputs with their
#   own picture or `batch: combine` under the nemo engine; captions without the speech model
# - max_size: 0MB (a size of nothing); a duplicate key (YAML itself, in the parser)


def _config(top: dict[str, Any] | None = None, **rule: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"rules": [{"name": "reels", "inbox": "in", "outbox": "out"}]}
    data["rules"][0].update(rule)
    data.update(top or {})
    return data


def _without(key: str) -> dict[str, Any]:
    data = _config()
    del data["rules"][0][key]
    return data


# (the config, where check and the schema say the mistake is)
MISTAKES = [
    pytest.param(_config({"engin": "local"}), "engin", id="unknown setting"),
    pytest.param(_config(inbx="in"), "rules[0]", id="unknown rule key"),
    pytest.param(_config(edit={"titel": "x"}), "rules[0].edit", id="unknown edit key"),
    pytest.param(_config(outputs=[{"name": "a", "size": 2}]), "rules[0].outputs[0]",
                 id="unknown output key"),
    pytest.param(_config({"source": "x.yaml"}), "source", id="internal field"),
    pytest.param(_config({"engine": "cloud"}), "engine", id="engine"),
    pytest.param(_config({"log_level": "verbose"}), "log_level", id="log level"),
    pytest.param(_config(export={"format": "avi"}), "rules[0].export.format", id="format"),
    pytest.param(_config(export={"quality": "best"}), "rules[0].export.quality", id="quality"),
    pytest.param(_config(edit={"aspect": "9x16"}), "rules[0].edit.aspect", id="aspect"),
    pytest.param(_config(on_conflict="replace"), "rules[0].on_conflict", id="on_conflict"),
    pytest.param(_config(after={"success": "trash"}), "rules[0].after.success", id="after"),
    pytest.param(_config(batch="all"), "rules[0].batch", id="batch"),
    pytest.param(_config(edit={"denoise": "extreme"}), "rules[0].edit.denoise",
                 id="denoise name"),
    pytest.param(_config({"concurrency": "two"}), "concurrency", id="number as text"),
    pytest.param(_config(recursive="maybe"), "rules[0].recursive", id="yes or no as text"),
    pytest.param(_config(settle_seconds=[1]), "rules[0].settle_seconds", id="list for number"),
    pytest.param(_config(instructions={"a": "b"}), "rules[0].instructions", id="mapping"),
    pytest.param(_config({"rules": {"name": "reels"}}), "rules", id="rules not a list"),
    pytest.param(_config(edit={"music_volume": "lots"}), "rules[0].edit.music_volume",
                 id="not a percentage"),
    pytest.param(_config(max_size="500 potatoes"), "rules[0].max_size", id="not a size"),
    pytest.param(_without("name"), "rules[0].name", id="no name"),
    pytest.param(_without("inbox"), "rules[0].inbox", id="no inbox"),
    pytest.param(_without("outbox"), "rules[0].outbox", id="no outbox"),
    pytest.param({"engine": "local"}, "", id="no rules"),
    pytest.param(_config({"concurrency": 0}), "concurrency", id="below the range"),
    pytest.param(_config(edit={"speed": 10}), "rules[0].edit.speed", id="above the range"),
    pytest.param(_config(edit={"loop": 30}), "rules[0].edit.loop", id="loop too often"),
    pytest.param(_config(name="my rule"), "rules[0].name", id="rule name"),
    pytest.param(_config(outputs=[{"name": "-x"}]), "rules[0].outputs[0].name",
                 id="output name"),
    pytest.param(_config(inbox=" "), "rules[0].inbox", id="blank folder"),
    pytest.param(_config(match=[]), "rules[0].match", id="no patterns"),
    pytest.param(_config(outputs=[]), "rules[0].outputs", id="no outputs"),
    pytest.param(_config(edit={"title": ""}), "rules[0].edit.title", id="empty title"),
    pytest.param(_config(edit={"captions": {"language": "english"}}),
                 "rules[0].edit.captions.language", id="language code"),
    pytest.param(_config(edit={"audiogram": {"color": "#12"}}),
                 "rules[0].edit.audiogram.color", id="colour"),
    pytest.param(_config({"nemo": {"base_url": "ftp://x"}}), "nemo.base_url", id="url"),
    pytest.param(_config(edit={"music_volume": "150%"}), "rules[0].edit.music_volume",
                 id="percentage above the range"),
    pytest.param(_config(edit={"volume": "900 %"}), "rules[0].edit.volume",
                 id="gain above the range"),
    pytest.param(_config(edit={"trim": {"end": 10, "cut_end": 2}}), "rules[0].edit.trim",
                 id="trim end and cut_end"),
    pytest.param(_config(edit={"trim": {"last": 10, "start": 2}}), "rules[0].edit.trim",
                 id="trim last and start"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "where"), MISTAKES)
def test_each_mistake_check_rejects_the_schema_rejects(
    data: dict[str, Any], where: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    places = [problem.path for problem in caught.value.problems]
    assert any(place == where or place.startswith(f"{where}.") for place in places), places
    assert schema_errors(copy.deepcopy(data)), "the schema accepts it"


def test_every_setting_says_what_it_does() -> None:
    schema = config_schema()
    models = {**schema["$defs"], "Config": schema}
    silent = [
        f"{model}.{field}"
        for model, definition in models.items()
        for field, prop in definition.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert silent == [], "add a description=, or an entry in schema.DESCRIPTIONS"
