"""Honest outcomes: a highlight reel as long as asked when the material allows, and a job
that falls short says so, with numbers, in its report, `jobs`, `status` and `explain`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nemowatch.cli import main
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.probe import probe
from tests.e2e.harness import rule, write_config
from tests.ledgers import walk_to
from tests.media import Clips

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REEL = ["cut out silences", "export as a 60-second highlight reel"]
SHORT = "the reel lasts 42.0 s: 42.0 s of speech left after cutting silences; asked 60 s"


def nemowatch(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def process(tmp_path: Path, clip: Path) -> tuple[Path, Path, dict[str, object], str]:
    """`nemowatch process` of `clip` under a rule asking for the reel: the config, the
    output, its report and what the command said on stderr."""
    # (no loudness passes: the reel's length is planned without them, and they took a
    # third of the CPU of these jobs; -14 LUFS is tested in tests/integration)
    edit = {"normalize": False}
    config = write_config(tmp_path, [rule(tmp_path, instructions=REEL, edit=edit, report=True)])
    source = tmp_path / "talk.mp4"
    shutil.copy(clip, source)
    result = nemowatch("process", str(source), "--rule", "clips", "--config", str(config))
    assert result.returncode == 0, result.stderr
    output = Path(result.stdout.strip().splitlines()[-1])
    report = json.loads(output.with_name(output.name + ".json").read_text(encoding="utf-8"))
    return config, output, report, result.stderr


def test_a_60_second_reel_from_85_s_of_speech_lasts_57_to_60_s(
    tmp_path: Path, clips: Clips, capsys: pytest.CaptureFixture[str]
) -> None:
    config, output, report, _ = process(tmp_path, clips.layout("talk_85").path)

    assert 57.0 <= probe(output).duration <= 60.1
    assert report["warnings"] == []
    assert main(["jobs", "--config", str(config)]) == 0
    assert "done        clips" in capsys.readouterr().out


def test_a_reel_from_42_s_of_speech_lasts_42_s_and_the_job_says_why(
    tmp_path: Path, clips: Clips, capsys: pytest.CaptureFixture[str]
) -> None:
    config, output, report, said = process(tmp_path, clips.layout("talk_39").path)

    assert probe(output).duration == pytest.approx(42.0, abs=0.3)
    assert report["warnings"] == [SHORT]
    assert said.splitlines()[-1] == f"nemowatch: talk.mp4: warning: {SHORT}"
    for command in ("jobs", "status"):
        assert main([command, "--config", str(config)]) == 0
        assert "done with 1 warning " in capsys.readouterr().out
    assert main(["jobs", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["warnings"] == [SHORT]
    explained = nemowatch("explain", str(output), "--rule", "clips", "--config", str(config))
    assert f"  ! {SHORT}" in explained.stdout.splitlines(), explained.stderr


def test_jobs_counts_the_warnings_of_a_job_done_with_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        for name, warnings in (("plain.mp4", []), ("odd.mp4", ["one", "two"])):
            job_id = new_job_id()
            source = tmp_path / "inbox" / "clips" / name
            ledger.create(job_id=job_id, rule="clips", engine="local", source=source, claimed=None)
            walk_to(ledger, job_id, JobState.DONE, warnings=warnings, output=source)

    assert main(["jobs", "--config", str(config)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert any("done with 2 warnings clips" in line and "odd.mp4" in line for line in lines)
    assert any("done        clips" in line and "plain.mp4" in line for line in lines)
