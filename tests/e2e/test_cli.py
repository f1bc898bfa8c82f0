"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nemowatch.config import load_config
from nemowatch.probe import probe
from tests.e2e.harness import files, rule, write_config

pytestmark = pytest.mark.e2e


REPO = Path(__file__).resolve().parents[2]


def nemowatch(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_init_writes_the_commented_example_with_its_folders_in_dir(tmp_path: Path) -> None:
    result = nemowatch("init", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    for folder in ("inbox", "outbox", "state"):
        assert (tmp_path / "mine" / folder).is_dir()
    written = (tmp_path / "mine" / "config.yaml").read_text(encoding="utf-8")
    example = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    # the example line for line, but for the lines that name the checkout's demo/ or itself,
    # and the editor's schema: the schema.json written beside it
    assert len(written.splitlines()) == len(example.splitlines())
    assert written.splitlines()[0] == "# yaml-language-server: $schema=schema.json"
    for mine, theirs in list(zip(written.splitlines(), example.splitlines(), strict=True))[1:]:
        assert mine == theirs or "demo/" in theirs or "config.example.yaml" in theirs
    schema = json.loads((tmp_path / "mine" / "schema.json").read_text(encoding="utf-8"))
    assert schema["title"] == "nemowatch config"
    assert "demo" not in written and "config.example.yaml" not in written
    assert f"nemowatch run --config {tmp_path / 'mine' / 'config.yaml'}" in written
    config = load_config(tmp_path / "mine" / "config.yaml")
    (rule,) = config.rules
    assert (rule.inbox, rule.outbox) == (tmp_path / "mine" / "inbox", tmp_path / "mine" / "outbox")
    assert config.state_dir == tmp_path / "mine" / "state"
    check = nemowatch("check", "--config", str(tmp_path / "mine" / "config.yaml"))
    assert check.returncode == 0, check.stdout + check.stderr


def test_init_never_overwrites_a_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("mine")
    result = nemowatch("init", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'config.yaml'} exists; not overwriting it" in result.stderr
    assert (tmp_path / "config.yaml").read_text() == "mine"
    assert not (tmp_path / "inbox").exists()  # nothing made beside someone else's config


def test_without_a_config_the_error_says_to_run_init_and_init_makes_it_work(
    tmp_path: Path,
) -> None:
    environment = {**os.environ, "HOME": str(tmp_path)}
    for name in ("NEMOWATCH_CONFIG", "XDG_CONFIG_HOME"):
        environment.pop(name, None)
    default = tmp_path / ".config" / "nemowatch"
    result = nemowatch("check", env=environment)
    assert result.returncode == 78
    assert f"{default / 'config.yaml'}: no config file here" in result.stderr
    assert f"write one with `nemowatch init {default}`, or pass --config FILE" in result.stderr
    assert nemowatch("init", str(default), env=environment).returncode == 0
    again = nemowatch("check", env=environment)
    assert again.returncode == 0, again.stderr


def test_a_missing_config_named_by_the_environment_says_how_to_make_one(tmp_path: Path) -> None:
    environment = {**os.environ, "NEMOWATCH_CONFIG": str(tmp_path / "mine.yaml")}
    result = nemowatch("status", env=environment)
    assert result.returncode == 78
    assert "(named by $NEMOWATCH_CONFIG)" in result.stderr
    assert "`nemowatch init DIR` and pass --config DIR/config.yaml" in result.stderr


def test_check_fails_on_music_that_does_not_exist_naming_file_and_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path, edit={"music": "sounds/theme.mp3"})])
    line = next(
        number
        for number, text in enumerate(config.read_text().splitlines(), start=1)
        if "theme.mp3" in text
    )
    result = nemowatch("check", "--config", str(config))
    assert result.returncode == 78
    assert f"{config}:{line}: rules[0].edit.music: there is no music file or folder at" in (
        result.stderr
    )


def test_check_warns_about_patterns_for_files_the_engine_cannot_edit(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path, match=["*.mp4", "*.png", "*.pdf"])])
    result = nemowatch("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert 'match pattern "*.pdf" only catches .pdf files' in result.stdout
    assert "*.png" not in result.stdout  # photos are what the local engine takes


def test_process_edits_one_file_and_leaves_it_in_place(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, edit={"cut_silences": True})])
    source = tmp_path / "talk.mp4"
    shutil.copy(clips.silences, source)
    result = nemowatch("process", str(source), "--rule", "clips", "--config", str(config))
    assert result.returncode == 0, result.stderr
    output = Path(result.stdout.strip().splitlines()[-1])
    assert output == tmp_path / "outbox" / "clips" / "talk.mp4"
    assert probe(output).duration < probe(source).duration - 3
    assert source.exists()


def test_process_reports_a_bad_file_and_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    source = tmp_path / "broken.mp4"
    source.write_bytes(b"\x00" * 4096)
    result = nemowatch("process", str(source), "--rule", "clips", "--config", str(config))
    assert result.returncode == 1
    assert "broken.mp4" in result.stderr
    assert source.exists()


def test_process_with_an_unknown_rule_names_the_rules(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    result = nemowatch("process", str(clips.basic), "--rule", "nope", "--config", str(config))
    assert result.returncode == 2
    assert "clips" in result.stderr


def test_process_without_rule_uses_the_one_rule_whose_patterns_take_the_file(
    tmp_path: Path, clips
) -> None:
    config = write_config(
        tmp_path,
        [rule(tmp_path, "photos", match=["*.mov"]), rule(tmp_path, "clips", match=["*.mp4"])],
    )
    source = tmp_path / "talk.mp4"
    shutil.copy(clips.basic, source)
    result = nemowatch("process", str(source), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]).parent == tmp_path / "outbox" / "clips"


def test_process_without_rule_lists_the_rules_when_several_take_the_file(
    tmp_path: Path, clips
) -> None:
    config = write_config(tmp_path, [rule(tmp_path, "reels"), rule(tmp_path, "stories")])
    result = nemowatch("process", str(clips.basic), "--config", str(config))
    assert result.returncode == 2
    assert "basic.mp4 matches 2 rules (reels, stories): pass --rule NAME" in result.stderr
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()  # no job was made


def test_process_without_rule_says_so_when_no_rule_takes_the_file(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, "clips", match=["*.mov"])])
    result = nemowatch("process", str(clips.basic), "--config", str(config))
    assert result.returncode == 2
    assert "basic.mp4 matches no rule's patterns (clips: *.mov): pass --rule NAME" in (
        result.stderr
    )


def test_status_counts_jobs_from_the_ledger(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    good, bad = tmp_path / "good.mp4", tmp_path / "bad.mp4"
    shutil.copy(clips.basic, good)
    bad.write_bytes(b"junk" * 100)
    nemowatch("process", str(good), "--rule", "clips", "--config", str(config))
    nemowatch("process", str(bad), "--rule", "clips", "--config", str(config))
    result = nemowatch("status", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert (status["done"], status["failed"], status["running"]) == (1, 1, 0)
    failed = next(job for job in status["recent"] if job["state"] == "failed")
    assert "bad.mp4" in failed["error"] and failed["retryable"] is False
    text = nemowatch("status", "--config", str(config))
    assert "done: 1" in text.stdout and "failed: 1" in text.stdout


def test_check_refuses_a_phrase_the_local_engine_does_not_understand(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, [rule(tmp_path, instructions=["cut out silences", "make it verticle"])]
    )
    result = nemowatch("check", "--config", str(config))
    assert result.returncode == 78
    line = next(
        number
        for number, text in enumerate(config.read_text().splitlines(), start=1)
        if "make it verticle" in text
    )
    assert f"{config}:{line}: rules[0].instructions[1]: " in result.stderr
    assert 'does not understand "make it verticle"; did you mean "make it vertical"' in (
        result.stderr
    )
    assert "ok" not in result.stdout


def test_run_refuses_what_check_refuses(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path, instructions=["make it verticle"])])
    result = nemowatch("run", "--config", str(config))
    assert result.returncode == 78
    assert 'did you mean "make it vertical"' in result.stderr


def test_check_only_warns_when_the_rule_allows_unknown_instructions(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        [
            rule(
                tmp_path,
                instructions=["cut out silences, and make it sparkle", "撒点魔法"],
                allow_unknown_instructions=True,
            )
        ],
    )
    result = nemowatch("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert 'instructions[0]: the local engine does not understand "make it sparkle"' in (
        result.stdout
    )
    assert "instructions[1]" in result.stdout
    assert ": ok (1 rule, engine local)" in result.stdout


def test_a_missing_config_is_a_config_error(tmp_path: Path) -> None:
    result = nemowatch("run", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 78
    assert "nope.yaml" in result.stderr


def test_explain_shows_the_plan_without_rendering(tmp_path: Path, clips) -> None:
    config = write_config(
        tmp_path,
        [
            rule(
                tmp_path,
                instructions=[
                    "cut out silences, add background music, and make it sparkle",
                    'add the title "Urban Dreams" for 3 seconds',
                ],
                edit={"aspect": "9:16"},
                allow_unknown_instructions=True,
            )
        ],
    )
    result = nemowatch("explain", str(clips.silences), "--config", str(config))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Rule:  clips" in text
    assert "'make it sparkle': not understood" in text
    assert "silences: 2," in text  # the clip's two pauses
    assert "Timeline (4 tracks): video 0–6.3 s from 3 pieces" in text
    assert "music lofi 35 %" in text and "title 0–3 s" in text
    assert not files(tmp_path / "outbox")
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()  # nothing recorded
