"""`nemowatch doctor`, run as a user runs it: on this machine's real FFmpeg, folders and
kernel, with a fake FFmpeg only where a lacking build is the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nemowatch.engines.local.ffmpeg import choose_ffmpeg
from nemowatch.ledger import Ledger
from nemowatch.mounts import filesystem_type, needs_polling, read_mountinfo
from tests.e2e.harness import rule, write_config
from tests.fakes.ffmpeg import DRAWTEXT_5_1, fake_ffmpeg

pytestmark = pytest.mark.e2e

TOKEN = "nw-doctor-secret-7f3a9c1e5b"  # must never be printed, not even in part


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without what would change the verdicts, plus `extra`."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in ("NEMOWATCH_FFMPEG", "NEMO_TOKEN", "NEMOWATCH_CONFIG")
    }
    return {**kept, **extra}


def doctor(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "doctor", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=environment() if env is None else env,
    )


def lines_marked(output: str, mark: str) -> list[str]:
    return [line for line in output.splitlines() if line.split(" ", 1)[0] == mark]


def test_a_healthy_config_passes_and_names_the_chosen_ffmpeg_and_its_version(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    (tmp_path / "inbox" / "clips").mkdir(parents=True)
    expected = choose_ffmpeg(None, environ=environment())

    result = doctor("--config", str(config))

    assert result.returncode == 0, result.stdout + result.stderr
    assert lines_marked(result.stdout, "PROBLEM") == []
    chosen = [line for line in result.stdout.splitlines() if line.startswith("ok        ffmpeg:")]
    assert len(chosen) == 1, result.stdout
    assert str(expected.ffmpeg.path) in chosen[0]
    assert expected.ffmpeg.version in chosen[0]
    assert result.stdout.splitlines()[-1] == "everything nemowatch needs works here"


def test_doctor_changes_nothing_it_looks_at(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    inbox = tmp_path / "inbox" / "clips"
    inbox.mkdir(parents=True)

    result = doctor("--config", str(config))

    assert result.returncode == 0, result.stdout
    # the ledger is not created, the outbox and state_dir are not made, no probe file is left
    assert "created on the first run" in result.stdout
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "outbox").exists()
    assert list(inbox.iterdir()) == []


def test_json_output_has_the_verdict_and_the_chosen_ffmpeg(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    expected = choose_ffmpeg(None, environ=environment())

    result = doctor("--config", str(config), "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    chosen = next(check for check in report["checks"] if check["name"] == "ffmpeg")
    assert chosen["facts"]["path"] == str(expected.ffmpeg.path)
    assert chosen["facts"]["version"] == expected.ffmpeg.version
    inbox = next(check for check in report["checks"] if check["name"].startswith("inbox "))
    fstype = filesystem_type(tmp_path.resolve(), read_mountinfo())
    assert inbox["facts"]["filesystem"] == fstype
    assert inbox["facts"]["watched_by"] == ("polling" if needs_polling(fstype) else "events")


def test_an_outbox_that_cannot_be_written_is_a_problem_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    outbox = tmp_path / "outbox" / "clips"
    outbox.parent.mkdir()
    # A regular file where the folder should be: nothing can be written *in* it, even by
    # root (the tests run as root, where a chmod 0o500 folder would still take files).
    outbox.write_bytes(b"not a folder")

    result = doctor("--config", str(config))

    assert result.returncode == 1, result.stdout
    (problem,) = lines_marked(result.stdout, "PROBLEM")
    assert f"outbox {outbox}" in problem
    assert "not a folder" in problem
    following = result.stdout.splitlines()[result.stdout.splitlines().index(problem) + 1]
    assert following.strip().startswith("what to do:")


def test_an_outbox_under_a_file_cannot_be_created_and_is_a_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_bytes(b"a file where a folder of the path should be")
    config = write_config(tmp_path, [rule(tmp_path)])  # outbox: tmp_path/outbox/clips

    result = doctor("--config", str(config))

    assert result.returncode == 1, result.stdout
    (problem,) = lines_marked(result.stdout, "PROBLEM")
    assert f"outbox {blocker / 'clips'}" in problem
    assert f"cannot be created: {blocker} is a regular file" in problem


def test_a_pinned_ffmpeg_lacking_an_option_is_a_problem_naming_the_option(
    tmp_path: Path,
) -> None:
    lacking = DRAWTEXT_5_1.replace("   textfile ", "   textfilx ")
    fake = fake_ffmpeg(tmp_path / "bin", version="5.1.9", drawtext_help=lacking)
    config = write_config(tmp_path, [rule(tmp_path)])

    result = doctor("--config", str(config), env=environment(NEMOWATCH_FFMPEG=str(fake)))

    assert result.returncode == 1, result.stdout
    problems = lines_marked(result.stdout, "PROBLEM")
    assert len(problems) == 1, result.stdout
    assert "drawtext:textfile" in problems[0]
    assert str(fake) in problems[0]


def test_the_configs_ffmpeg_setting_is_what_doctor_checks_as_the_daemon_would(
    tmp_path: Path,
) -> None:
    lacking = DRAWTEXT_5_1.replace("   textfile ", "   textfilx ")
    fake = fake_ffmpeg(tmp_path / "bin", version="5.1.9", drawtext_help=lacking)
    config = write_config(tmp_path, [rule(tmp_path)], ffmpeg=str(fake))

    result = doctor("--config", str(config))

    assert result.returncode == 1, result.stdout
    (problem,) = lines_marked(result.stdout, "PROBLEM")
    assert (
        "the ffmpeg chosen by the config's ffmpeg: setting" in problem
        and "drawtext:textfile" in problem
    )


def test_without_any_config_the_machine_is_checked_and_init_is_suggested(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        name: value
        for name, value in environment(HOME=str(home)).items()
        if not name.startswith("XDG_")
    }

    result = doctor(env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "nemowatch init DIR" in result.stdout
    assert any(line.startswith("ok        ffmpeg:") for line in result.stdout.splitlines())
    assert not any(line.split()[1].startswith("inbox") for line in result.stdout.splitlines()[:-1])


def test_an_invalid_config_is_a_problem_and_the_machine_is_still_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("engine: lokal\n", encoding="utf-8")

    result = doctor("--config", str(config))

    assert result.returncode == 1
    (problem,) = lines_marked(result.stdout, "PROBLEM")
    assert problem.startswith("PROBLEM   config:") and str(config) in problem
    assert "engine" in result.stdout
    assert any(line.startswith("ok        pyav:") for line in result.stdout.splitlines())


def test_a_damaged_ledger_is_a_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "ledger.sqlite3").write_bytes(b"this is not an SQLite database" * 100)

    result = doctor("--config", str(config))

    assert result.returncode == 1
    (problem,) = lines_marked(result.stdout, "PROBLEM")
    assert problem.startswith("PROBLEM   ledger:")
    assert "nemowatch ledger recover" in result.stdout


def test_a_ledger_missing_where_a_daemon_ran_is_a_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "daemon.pid").write_text("")  # left by every daemon that ran

    result = doctor("--config", str(config))

    assert result.returncode == 1
    (problem,) = lines_marked(result.stdout, "PROBLEM")
    assert problem.startswith("PROBLEM   ledger:") and "a daemon ran" in problem
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()


def test_a_real_ledger_passes_its_integrity_check(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        ledger.create(
            job_id="abc123",
            rule="clips",
            engine="local",
            source=tmp_path / "a.mp4",
            claimed=tmp_path / "a.mp4",
        )

    result = doctor("--config", str(config))

    assert result.returncode == 0, result.stdout
    assert "intact, 1 job" in result.stdout


def test_nemo_with_a_token_in_the_environment_says_so_and_never_prints_it(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, [rule(tmp_path)], engine="nemo")

    for arguments in (("--config", str(config)), ("--config", str(config), "--json")):
        result = doctor(*arguments, env=environment(NEMO_TOKEN=TOKEN))

        assert result.returncode == 0, result.stdout + result.stderr
        assert "a token is present in $NEMO_TOKEN" in result.stdout
        for text in (result.stdout, result.stderr):
            assert TOKEN not in text
            assert TOKEN[-8:] not in text and TOKEN[:8] not in text


def test_nemo_with_a_kept_anonymous_token_says_so_and_never_prints_it(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)], engine="nemo")
    state = tmp_path / "state"
    state.mkdir()
    kept = state / "nemo-auth.json"
    kept.write_text(
        json.dumps(
            {"client_id": "c-1", "token": TOKEN, "user_id": "u-1", "expires_at": "2999-01-01"}
        ),
        encoding="utf-8",
    )
    kept.chmod(0o600)

    result = doctor("--config", str(config))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"an anonymous token is kept in {kept}" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert TOKEN[-8:] not in result.stdout + result.stderr
