"""`status`, `jobs` and `check` in-process: a real ledger, real folders, the daemon's pid
file, and `nemowatch.cli.main` as the user."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nemowatch import liveness
from nemowatch.cli import main
from nemowatch.config import load_config
from nemowatch.ledger import JobState, Ledger, new_job_id
from tests.e2e.harness import rule, write_config
from tests.ledgers import walk_to


def cli(config: Path, *arguments: str) -> int:
    return main([*arguments, "--config", str(config)])


def output(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [rule(tmp_path)])


def add_job(
    state_dir: Path, name: str, state: JobState, inbox: Path | None = None, **fields: object
) -> str:
    """A job in the ledger, as the daemon would record it (the file need not exist)."""
    job_id = new_job_id()
    source = (inbox or state_dir.parent / "inbox" / "clips") / name
    with Ledger.in_state_dir(state_dir) as ledger:
        ledger.create(job_id=job_id, rule="clips", engine="local", source=source, claimed=None)
        if state is not JobState.CLAIMED:
            walk_to(ledger, job_id, state, **fields)
    return job_id


# ---- a state directory that does not exist --------------------------------------------------


@pytest.mark.parametrize("command", ["status", "jobs"])
@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_looking_at_a_missing_state_dir_says_so_and_creates_nothing(
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    json_flag: tuple[str, ...],
) -> None:
    state_dir = tmp_path / "state"
    assert cli(config, command, *json_flag) == 1
    out, err = output(capsys)
    assert out == ""
    assert f"the state directory {state_dir} does not exist" in err
    assert "hint: no job has run with this config yet" in err
    assert not state_dir.exists()


@pytest.mark.parametrize("command", ["status", "jobs"])
def test_a_state_dir_made_by_init_but_never_used_has_no_jobs_yet_and_stays_empty(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    assert cli(config, command) == 0
    assert "no jobs yet: the job ledger is made when the daemon" in output(capsys)[0]
    assert cli(config, command, "--json") == 0
    assert list(state_dir.iterdir()) == []


def test_check_notes_the_missing_ledger_and_still_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_config(tmp_path, [rule(tmp_path)])
    assert cli(good, "check") == 0
    out, _ = output(capsys)
    assert f"{good}: ok (1 rule, engine local)" in out
    assert f"note: no job ledger in {tmp_path / 'state'} yet" in out
    assert not (tmp_path / "state").exists()
    bad = write_config(tmp_path, [rule(tmp_path, export={"format": "avi-ish"})])
    assert cli(bad, "check") == 78
    assert not (tmp_path / "state").exists()


def test_check_says_nothing_about_a_ledger_that_exists(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Ledger.in_state_dir(tmp_path / "state").close()
    assert cli(config, "check") == 0
    assert "note:" not in output(capsys)[0]


def test_open_existing_reads_a_ledger_another_connection_writes(tmp_path: Path) -> None:
    job_id = add_job(tmp_path / "state", "clip.mp4", JobState.DONE)
    with Ledger.open_existing(tmp_path / "state") as ledger:
        assert ledger.get(job_id).state is JobState.DONE


# ---- the daemon ------------------------------------------------------------------------------


def test_status_says_no_daemon_runs_when_there_is_no_pid_file(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_job(tmp_path / "state", "clip.mp4", JobState.DONE)
    assert cli(config, "status", "--json") == 0
    assert json.loads(output(capsys)[0])["daemon"] == {"running": False, "pid": None}
    assert cli(config, "status") == 0
    assert output(capsys)[0].startswith("daemon: not running;")


def test_status_names_the_pid_of_the_daemon_holding_the_state_dir(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_job(tmp_path / "state", "clip.mp4", JobState.DONE)
    lock = liveness.hold(tmp_path / "state")
    try:
        assert cli(config, "status", "--json") == 0
        daemon = json.loads(output(capsys)[0])["daemon"]
        assert daemon == {"running": True, "pid": os.getpid()}
        assert cli(config, "status") == 0
        assert output(capsys)[0].startswith(f"daemon: running (pid {os.getpid()})\n")
    finally:
        lock.release()
    assert cli(config, "status", "--json") == 0
    assert json.loads(output(capsys)[0])["daemon"]["running"] is False


# ---- files no rule takes ---------------------------------------------------------------------


def test_status_counts_the_files_no_rule_takes_and_only_those(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_job(tmp_path / "state", "old.mp4", JobState.DONE)
    inbox = load_config(config).rules[0].inbox
    (inbox / "processing").mkdir(parents=True)
    (inbox / "processing" / "abc__notes.txt").write_text("the daemon's own folder")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "deep.txt").write_text("not at the top (the rule is not recursive)")
    for name in ("notes.rtf", "b.doc", "a.zip", "z.pdf", ".hidden.txt", "clip.mp4.part"):
        (inbox / name).write_text("x")
    (inbox / "clip.mp4").write_text("a rule takes this one")
    (inbox / "link.rtf").symlink_to(inbox / "notes.rtf")
    assert cli(config, "status", "--json") == 0
    unmatched = json.loads(output(capsys)[0])["unmatched"]
    assert unmatched == [
        {"path": str(inbox / name), "reason": "no_rule"}
        for name in ("a.zip", "b.doc", "notes.rtf", "z.pdf")
    ]
    assert cli(config, "status") == 0
    lines = output(capsys)[0].splitlines()
    assert f"4 files in {inbox} match no rule (a.zip, b.doc, notes.rtf and 1 more): " in (lines[2])


def test_a_name_that_is_not_utf8_is_reported_with_how_to_rename_it(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_job(tmp_path / "state", "old.mp4", JobState.DONE)
    inbox = load_config(config).rules[0].inbox
    inbox.mkdir(parents=True)
    with open(os.path.join(os.fsencode(inbox), b"caf\xe9.mp4"), "wb") as handle:
        handle.write(b"x")
    assert cli(config, "status", "--json") == 0
    assert json.loads(output(capsys)[0])["unmatched"] == [
        {"path": f"{inbox}/caf\\xe9.mp4", "reason": "bad_name"}
    ]
    assert cli(config, "status") == 0
    text = output(capsys)[0]
    assert f"1 file in {inbox} has a name that is not UTF-8 (caf\\xe9.mp4): " in text
    assert "convmv" in text


def test_a_missing_inbox_has_nothing_waiting(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_job(tmp_path / "state", "old.mp4", JobState.DONE)
    assert cli(config, "status", "--json") == 0
    assert json.loads(output(capsys)[0])["unmatched"] == []
    assert not (tmp_path / "inbox").exists()


# ---- retried jobs ----------------------------------------------------------------------------


def test_a_retried_failure_counts_once_as_its_new_job(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    old = add_job(state_dir, "clip.mp4", JobState.FAILED, error="uploading: broken")
    add_job(state_dir, "other.mp4", JobState.FAILED, error="uploading: broken too")
    with Ledger.in_state_dir(state_dir) as ledger:
        ledger.mark_retried(old)  # what `nemowatch retry` records
    add_job(state_dir, "clip.mp4", JobState.DONE)  # the daemon took the file again
    assert cli(config, "status", "--json") == 0
    status = json.loads(output(capsys)[0])
    assert (status["done"], status["failed"], status["retried"]) == (1, 1, 1)
    assert status["states"] == {"done": 1, "failed": 2}
    assert cli(config, "status") == 0
    assert "queued: 0, running: 0, done: 1, failed: 1, skipped: 0" in output(capsys)[0]


# ---- progress of running jobs ----------------------------------------------------------------


def test_status_and_jobs_show_a_running_jobs_stage_and_percent(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    running = add_job(state_dir, "clip.mp4", JobState.EXPORTING)
    waiting = add_job(state_dir, "next.mp4", JobState.UPLOADING)
    with Ledger.in_state_dir(state_dir) as ledger:
        ledger.progress(running, "rendering", 42.37)
    assert cli(config, "status") == 0
    text = output(capsys)[0]
    assert f"{running}  rendering 42 % clips        clip.mp4" in text
    assert f"{waiting}  uploading   clips        next.mp4" in text
    assert cli(config, "jobs", "--state", "running") == 0
    assert f"{running}  rendering 42 % clips" in output(capsys)[0]
    assert cli(config, "jobs", "--json") == 0
    listed = {job["id"]: job for job in json.loads(output(capsys)[0])}
    assert (listed[running]["stage"], listed[running]["percent"]) == ("rendering", 42.4)
    assert (listed[waiting]["stage"], listed[waiting]["percent"]) == (None, None)
    assert cli(config, "status", "--json") == 0
    recent = {job["id"]: job for job in json.loads(output(capsys)[0])["recent"]}
    assert (recent[running]["stage"], recent[running]["percent"]) == ("rendering", 42.4)


def test_a_stage_without_a_percent_shows_the_stage_alone(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    job_id = add_job(state_dir, "clip.mp4", JobState.UPLOADING)
    with Ledger.in_state_dir(state_dir) as ledger:
        ledger.progress(job_id, "analysing", None)
    assert cli(config, "jobs") == 0
    assert f"{job_id}  analysing   clips        clip.mp4" in output(capsys)[0]


def test_a_finished_job_shows_its_state_not_its_last_stage(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    job_id = add_job(state_dir, "clip.mp4", JobState.EXPORTING)
    with Ledger.in_state_dir(state_dir) as ledger:
        ledger.progress(job_id, "rendering", 99.9)
        walk_to(ledger, job_id, JobState.DONE, output=tmp_path / "outbox" / "clip.mp4")
    assert cli(config, "jobs") == 0
    assert f"{job_id}  done        clips        clip.mp4 -> " in output(capsys)[0]


def test_removing_the_state_dir_after_a_run_is_noticed(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_job(tmp_path / "state", "clip.mp4", JobState.DONE)
    shutil.rmtree(tmp_path / "state")
    assert cli(config, "jobs") == 1
    assert "does not exist" in output(capsys)[1]
    assert not (tmp_path / "state").exists()
