"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nemowatch.probe import probe
from tests.e2e.harness import files, rule, write_config

pytestmark = pytest.mark.e2e


def nemowatch(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_init_writes_a_valid_starter_config_and_its_folders(tmp_path: Path) -> None:
    result = nemowatch("init", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    for folder in ("inbox", "outbox", "state"):
        assert (tmp_path / "mine" / folder).is_dir()
    assert nemowatch("check", "--config", str(tmp_path / "mine" / "config.yaml")).returncode == 0


def test_init_never_overwrites_a_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("mine")
    result = nemowatch("init", str(tmp_path))
    assert result.returncode == 1
    assert "not overwriting" in result.stderr
    assert (tmp_path / "config.yaml").read_text() == "mine"


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


def test_check_warns_about_phrases_the_local_engine_ignores(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, [rule(tmp_path, instructions=["cut out silences, and make it sparkle"])]
    )
    result = nemowatch("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "make it sparkle" in result.stdout


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
