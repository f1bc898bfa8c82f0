"""The operator commands in-process: a real ledger kept open (as a running daemon keeps it),
real folders, failures made by the real pipeline, and `nemowatch.cli.main` as the user."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nemowatch.cli import main
from nemowatch.config import Config, Rule, load_config
from nemowatch.engines.local import LocalEngine
from nemowatch.files import claim, snapshot
from nemowatch.ledger import JobRecord, JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from tests.e2e.harness import rule, write_config
from tests.ledgers import FIRST_RELEASE_JOBS, walk_to

JUNK = b"not a video at all " * 500  # fails at the first probe, fast


@dataclass
class World:
    """A config with one rule, its ledger held open, and a pipeline to make real failures."""

    tmp: Path
    config_path: Path
    config: Config
    ledger: Ledger  # the "daemon's" connection; the CLI opens its own beside it
    pipeline: Pipeline

    @property
    def rule(self) -> Rule:
        return self.config.rules[0]

    @property
    def inbox(self) -> Path:
        return self.rule.inbox

    @property
    def failed(self) -> Path:
        return self.inbox / "failed"

    def cli(self, *arguments: str) -> int:
        return main([*arguments, "--config", str(self.config_path)])

    async def fail(self, name: str, data: bytes = JUNK, job_id: str | None = None) -> JobRecord:
        """Drop `data` as `name`, claim it as the daemon does, and run it to failure."""
        source = self.inbox / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
        # written a while ago, as most failed files were: the pipeline does not watch it
        # for STALL_FACTOR settle times as a copy that may still be under way (stalled.py;
        # tests/integration/test_stalled_copy.py proves that), and each test saves 2.5 s
        written = time.time() - 3600
        os.utime(source, (written, written))
        current = snapshot(source)
        assert current is not None
        job_id = job_id or new_job_id()
        claimed = claim(source, self.inbox, job_id)
        assert claimed is not None
        self.ledger.create(
            job_id=job_id,
            rule=self.rule.name,
            engine="local",
            source=source,
            claimed=claimed,
            source_size=current.size,
            source_mtime_ns=current.mtime_ns,
            source_inode=current.inode,
        )
        record = await self.pipeline.run(job_id, self.rule)
        assert record.state is JobState.FAILED
        return record

    def known(self, path: Path) -> bool:
        """Whether the daemon would leave `path` alone as already taken."""
        current = snapshot(path)
        assert current is not None
        return self.ledger.knows_source(path, current.size, current.mtime_ns, current.inode)


def make_world(tmp_path: Path, **rule_fields: Any) -> World:
    config_path = write_config(tmp_path, [rule(tmp_path, **rule_fields)])
    config = load_config(config_path)
    config.rules[0].inbox.mkdir(parents=True)
    ledger = Ledger.in_state_dir(config.state_dir)
    pipeline = Pipeline(LocalEngine(), ledger, state_dir=config.state_dir)
    return World(tmp_path, config_path, config, ledger, pipeline)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = make_world(tmp_path)
    yield made
    made.ledger.close()


@pytest.fixture
def keep_world(tmp_path: Path) -> Iterator[World]:
    made = make_world(tmp_path, after={"failure": "keep"})
    yield made
    made.ledger.close()


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.is_file())


# ---- the ledger: control table and retried column -------------------------------------------


def test_a_ledger_without_the_control_table_or_retried_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:  # the schema as the first release wrote it
        db.execute(FIRST_RELEASE_JOBS)
        db.execute(
            "INSERT INTO jobs (id, rule, engine, source, source_size, source_mtime_ns,"
            " source_inode, state, created_at, updated_at)"
            " VALUES ('old', 'r', 'local', '/in/a.mp4', 10, 123, 7, 'failed', 1, 1)"
        )
    ledger = Ledger(path)
    try:
        control = ledger.control()
        assert (control.paused, control.paused_at, control.scan_requested) == (False, None, 0.0)
        assert ledger.get("old").retried_at is None
        assert ledger.knows_source(Path("/in/a.mp4"), 10, 123, 7)
        assert ledger.mark_retried("old").retried
        assert not ledger.knows_source(Path("/in/a.mp4"), 10, 123, 7)
    finally:
        ledger.close()


def test_pausing_twice_keeps_the_time_of_the_first_pause(tmp_path: Path) -> None:
    now = [1000.0]
    ledger = Ledger.in_state_dir(tmp_path, clock=lambda: now[0])
    try:
        assert ledger.set_paused(True).paused_at == 1000.0
        now[0] = 2000.0
        assert ledger.set_paused(True).paused_at == 1000.0
        resumed = ledger.set_paused(False)
        assert (resumed.paused, resumed.paused_at) == (False, None)
    finally:
        ledger.close()


def test_each_scan_request_is_later_than_the_one_before_even_within_one_clock_tick(
    tmp_path: Path,
) -> None:
    ledger = Ledger.in_state_dir(tmp_path, clock=lambda: 1000.0)
    try:
        ledger.request_scan()
        first = ledger.control().scan_requested
        ledger.request_scan()
        assert first >= 1000.0
        assert ledger.control().scan_requested > first
    finally:
        ledger.close()


# ---- pause and resume ----------------------------------------------------------------------


def test_pause_sets_the_flag_a_running_daemon_reads_and_status_shows_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.cli("pause") == 0
    assert "new jobs won't start" in capsys.readouterr().out
    assert world.ledger.control().paused  # seen through the other connection
    assert world.cli("status") == 0
    assert capsys.readouterr().out.startswith("paused since ")
    assert world.cli("status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["paused"] is True


def test_resume_clears_the_flag_and_asks_for_a_rescan(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.cli("pause")
    before = world.ledger.control().scan_requested
    assert world.cli("resume") == 0
    assert "resumed" in capsys.readouterr().out
    control = world.ledger.control()
    assert not control.paused
    assert control.scan_requested > before
    assert world.cli("status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["paused"] is False


def test_resume_when_not_paused_says_so(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.cli("resume") == 0
    assert "not paused" in capsys.readouterr().out


# ---- retry ---------------------------------------------------------------------------------


async def test_retry_by_job_id_moves_the_source_back_and_removes_its_error_report(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    assert names(world.failed) == ["clip.mp4", "clip.mp4.error.json"]
    scan_before = world.ledger.control().scan_requested
    assert world.cli("retry", record.id) == 0
    out = capsys.readouterr().out
    assert f"requeued {record.id}: {world.failed / 'clip.mp4'} -> {world.inbox / 'clip.mp4'}" in out
    assert "if none is running, it waits in the inbox" in out
    assert names(world.failed) == []
    assert (world.inbox / "clip.mp4").read_bytes() == JUNK
    assert world.ledger.get(record.id).retried
    assert world.ledger.get(record.id).state is JobState.FAILED  # history stays as it was
    assert not world.known(world.inbox / "clip.mp4")  # the daemon takes it as new work
    assert world.ledger.control().scan_requested > scan_before


async def test_retry_by_a_unique_prefix_of_the_job_id(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    assert world.cli("retry", record.id[:5]) == 0
    assert f"requeued {record.id}" in capsys.readouterr().out
    assert (world.inbox / "clip.mp4").exists()


async def test_an_ambiguous_prefix_lists_the_candidates_and_retries_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await world.fail("one.mp4", job_id="abc111")
    await world.fail("two.mp4", job_id="abc222")
    assert world.cli("retry", "abc") == 1
    err = capsys.readouterr().err
    assert "abc111" in err and "one.mp4" in err
    assert "abc222" in err and "two.mp4" in err
    assert names(world.failed) == [
        "one.mp4",
        "one.mp4.error.json",
        "two.mp4",
        "two.mp4.error.json",
    ]


async def test_retry_by_the_path_of_the_file_in_failed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    assert world.cli("retry", str(world.failed / "clip.mp4")) == 0
    assert f"requeued {record.id}" in capsys.readouterr().out
    assert names(world.inbox) == ["clip.mp4"]


async def test_retry_by_the_original_path_in_the_inbox(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    assert world.cli("retry", str(world.inbox / "clip.mp4")) == 0
    assert f"requeued {record.id}" in capsys.readouterr().out
    assert names(world.inbox) == ["clip.mp4"]


async def test_retry_by_the_error_report_path(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    assert world.cli("retry", str(world.failed / "clip.mp4.error.json")) == 0
    assert f"requeued {record.id}" in capsys.readouterr().out
    assert names(world.inbox) == ["clip.mp4"]
    assert names(world.failed) == []


async def test_a_file_and_its_error_report_named_together_are_one_retry(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    targets = [str(world.failed / "clip.mp4"), str(world.failed / "clip.mp4.error.json")]
    assert world.cli("retry", *targets) == 0
    assert capsys.readouterr().out.count(f"requeued {record.id}") == 1


async def test_retry_failed_requeues_every_failed_job_not_yet_retried(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await world.fail("a.mp4")
    second = await world.fail("b.mp4")
    third = await world.fail("c.mp4")
    assert world.cli("retry", first.id) == 0
    (world.inbox / "a.mp4").rename(world.tmp / "a.mp4")  # as if the daemon had taken it
    capsys.readouterr()
    assert world.cli("retry", "--failed") == 0
    out = capsys.readouterr().out
    assert first.id not in out
    assert f"requeued {second.id}" in out and f"requeued {third.id}" in out
    assert names(world.inbox) == ["b.mp4", "c.mp4"]
    assert names(world.failed) == []
    assert world.cli("retry", "--failed") == 0
    assert "no failed jobs to retry" in capsys.readouterr().out


async def test_retry_never_overwrites_a_file_of_the_same_name_in_the_inbox(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    (world.inbox / "clip.mp4").write_bytes(b"a newer clip, dropped since")
    assert world.cli("retry", record.id) == 0
    assert f"-> {world.inbox / 'clip (2).mp4'}" in capsys.readouterr().out
    assert (world.inbox / "clip.mp4").read_bytes() == b"a newer clip, dropped since"
    assert (world.inbox / "clip (2).mp4").read_bytes() == JUNK


async def test_a_source_kept_in_the_inbox_stays_there_and_is_taken_again(
    keep_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world = keep_world
    record = await world.fail("clip.mp4")
    assert names(world.inbox) == ["clip.mp4"]  # after.failure: keep
    assert names(world.failed) == ["clip.mp4.error.json"]
    assert world.known(world.inbox / "clip.mp4")  # the daemon leaves it alone...
    assert world.cli("retry", record.id) == 0
    assert "(kept in the inbox)" in capsys.readouterr().out
    assert not world.known(world.inbox / "clip.mp4")  # ...until it is retried
    assert names(world.inbox) == ["clip.mp4"]
    assert names(world.failed) == []


async def test_a_retried_job_cannot_be_retried_again(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    world.cli("retry", record.id)
    capsys.readouterr()
    assert world.cli("retry", record.id) == 1
    assert f"job {record.id} was already retried" in capsys.readouterr().err
    assert names(world.inbox) == ["clip.mp4"]


def test_a_done_job_is_refused_with_nothing_to_retry(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    source = world.inbox / "good.mp4"
    world.ledger.create(
        job_id="d0e1", rule=world.rule.name, engine="local", source=source, claimed=source
    )
    walk_to(world.ledger, "d0e1", JobState.DONE, output=world.tmp / "good-out.mp4")
    assert world.cli("retry", "d0e1") == 1
    assert "job d0e1 is done; nothing to retry" in capsys.readouterr().err
    assert not world.ledger.get("d0e1").retried


def test_an_unknown_job_is_an_error_that_points_at_jobs(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.cli("retry", "feedbeef") == 1
    err = capsys.readouterr().err
    assert "no job 'feedbeef'" in err
    assert "nemowatch jobs" in err


def test_a_path_no_failed_job_had_is_an_error_naming_it(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = world.failed / "stray.mp4"
    assert world.cli("retry", str(stray)) == 1
    assert f"no failed job in the ledger {world.ledger.path} has the file {stray}" in (
        capsys.readouterr().err
    )


async def test_a_source_gone_from_failed_is_reported_and_the_others_still_retried(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = await world.fail("gone.mp4")
    other = await world.fail("other.mp4")
    (world.failed / "gone.mp4").unlink()
    assert world.cli("retry", "--failed") == 1
    captured = capsys.readouterr()
    assert f"{world.failed / 'gone.mp4'} is gone: job {gone.id}" in captured.err
    assert f"requeued {other.id}" in captured.out
    assert names(world.inbox) == ["other.mp4"]
    assert not world.ledger.get(gone.id).retried


async def test_a_job_whose_rule_left_the_config_is_refused_with_the_rules_named(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    write_config(world.tmp, [rule(world.tmp, name="renamed")])
    assert world.cli("retry", record.id) == 1
    err = capsys.readouterr().err
    assert f"job {record.id}'s rule 'clips' is not in the config" in err
    assert "(rules: renamed)" in err
    assert names(world.failed) == ["clip.mp4", "clip.mp4.error.json"]


async def test_a_source_from_a_subfolder_goes_back_into_that_subfolder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path, recursive=True)
    try:
        record = await world.fail("day1/clip.mp4")
        assert names(world.failed) == ["clip.mp4", "clip.mp4.error.json"]
        assert world.cli("retry", record.id) == 0
        assert names(world.inbox / "day1") == ["clip.mp4"]
    finally:
        world.ledger.close()


async def test_a_job_whose_rule_now_watches_another_inbox_goes_to_the_new_inbox(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    elsewhere = world.tmp / "elsewhere"
    write_config(world.tmp, [rule(world.tmp, inbox=str(elsewhere))])
    assert world.cli("retry", record.id) == 0
    assert names(elsewhere) == ["clip.mp4"]
    assert names(world.failed) == []


def test_retry_needs_a_target_or_failed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.cli("retry") == 2
    assert "--failed" in capsys.readouterr().err


# ---- jobs ----------------------------------------------------------------------------------


async def test_jobs_lists_newest_first_and_filters_by_state(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = await world.fail("broken.mp4")
    source = world.inbox / "queued.mp4"
    world.ledger.create(
        job_id="q0e1", rule=world.rule.name, engine="local", source=source, claimed=source
    )
    capsys.readouterr()  # the pipeline's log
    assert world.cli("jobs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["q0e1", failed.id]
    assert world.cli("jobs", "--state", "failed") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{failed.id}  failed") and "broken.mp4" in line
    assert f"({failed.error})" in line
    assert world.cli("jobs", "--state", "queued") == 0
    assert capsys.readouterr().out.split()[0] == "q0e1"
    assert world.cli("jobs", "--state", "running") == 0
    assert capsys.readouterr().out.strip() == "no jobs in state running"


async def test_jobs_json_lists_the_jobs_with_their_retry_time(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    record = await world.fail("clip.mp4")
    world.cli("retry", record.id)
    capsys.readouterr()
    assert world.cli("jobs", "--json", "--rule", "clips") == 0
    (job,) = json.loads(capsys.readouterr().out)
    assert (job["id"], job["state"], job["retried_at"] is not None) == (record.id, "failed", True)
    assert world.cli("jobs", "--json", "--rule", "other") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_jobs_with_an_unknown_state_is_a_usage_error_listing_the_states(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.cli("jobs", "--state", "broken") == 2
    err = capsys.readouterr().err
    assert "unknown state 'broken'" in err
    for name in ("claimed", "done", "failed", "skipped", "queued", "running"):
        assert name in err
