"""The ledger: real SQLite in a temporary state directory, and the same tests against a real
PostgreSQL server (tests/pg.py), where a test is not about the SQLite file itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nemowatch.ledger import ALLOWED, IllegalTransition, JobState, Ledger, LedgerError
from tests.ledgers import BACKENDS, FIRST_RELEASE_JOBS, backend_ledger, walk_to

Reopen = Callable[[], Ledger]


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, Reopen]]:
    ledger, reopen = backend_ledger(request, tmp_path / "state")
    yield ledger, reopen
    ledger.close()


@pytest.fixture
def ledger(opened: tuple[Ledger, Reopen]) -> Ledger:
    return opened[0]


def make_job(ledger: Ledger, job_id: str = "job1", source: str = "/in/a.mp4") -> None:
    ledger.create(
        job_id=job_id,
        rule="reels",
        engine="local",
        source=Path(source),
        claimed=Path("/in/processing") / f"{job_id}__a.mp4",
        source_size=10,
        source_mtime_ns=123,
        source_inode=7,
    )


def test_the_ledger_uses_write_ahead_logging(tmp_path: Path) -> None:
    with Ledger.in_state_dir(tmp_path) as ledger, sqlite3.connect(ledger.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_job_starts_claimed_with_its_history(ledger: Ledger) -> None:
    make_job(ledger)
    record = ledger.get("job1")
    assert record.state is JobState.CLAIMED
    assert ledger.history("job1")[0][:2] == ("detected", "claimed")


def test_each_transition_is_recorded_with_its_fields(ledger: Ledger) -> None:
    make_job(ledger)
    ledger.transition("job1", JobState.UPLOADING, session={"id": "s1", "data": {}})
    record = ledger.transition("job1", JobState.EDITING, media={"name": "a.mp4"})
    assert record.session == {"id": "s1", "data": {}}
    assert record.media == {"name": "a.mp4"}
    assert [to for (_, to, _, _) in ledger.history("job1")] == [
        "claimed",
        "uploading",
        "editing",
    ]


def test_unfinished_jobs_survive_reopening(opened: tuple[Ledger, Reopen]) -> None:
    first, reopen = opened
    make_job(first, "a")
    make_job(first, "b", "/in/b.mp4")
    walk_to(first, "a", JobState.EXPORTING, render={"id": "r1", "data": {}})
    walk_to(first, "b", JobState.DONE, output=Path("/out/b.mp4"))
    second = reopen()
    unfinished = second.unfinished()
    assert [record.id for record in unfinished] == ["a"]
    assert unfinished[0].render == {"id": "r1", "data": {}}
    second.close()


def test_a_done_fingerprint_is_found_for_the_same_rule_only(ledger: Ledger) -> None:
    make_job(ledger)
    ledger.update("job1", fingerprint="abc")
    assert ledger.done_with_fingerprint("abc", "reels") is None  # not done yet
    walk_to(ledger, "job1", JobState.DONE)
    assert ledger.done_with_fingerprint("abc", "reels") is not None
    assert ledger.done_with_fingerprint("abc", "other") is None


def test_a_known_source_is_recognised_by_path_size_mtime_and_inode(ledger: Ledger) -> None:
    make_job(ledger)
    assert ledger.knows_source(Path("/in/a.mp4"), 10, 123, 7)
    assert not ledger.knows_source(Path("/in/a.mp4"), 10, 124, 7)  # touched: new work


def test_unknown_fields_are_refused(ledger: Ledger) -> None:
    make_job(ledger)
    with pytest.raises(ValueError, match="unknown ledger field"):
        ledger.update("job1", colour="red")


def test_an_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LedgerError, match="cannot open the job ledger"):
        Ledger.in_state_dir(blocker / "state")


def test_a_ledger_from_before_the_edit_checkpoint_columns_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(FIRST_RELEASE_JOBS)
        db.execute(
            "INSERT INTO jobs (id, rule, engine, source, state, created_at, updated_at)"
            " VALUES ('old', 'r', 'local', '/in/a.mp4', 'editing', 1, 1)"
        )
    ledger = Ledger(path)
    record = ledger.update("old", edit_sent=0, edit_token="abc")
    assert (record.edit_sent, record.edit_token) == (0, "abc")
    ledger.close()


def test_a_transition_not_in_allowed_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    ledger.create(job_id="j1", rule="r", engine="local", source=Path("/in/a.mp4"), claimed=None)

    with pytest.raises(IllegalTransition, match="job j1 cannot go from claimed to done"):
        ledger.transition("j1", JobState.DONE)

    assert ledger.get("j1").state is JobState.CLAIMED
    assert [to for _, to, _, _ in ledger.history("j1")] == ["claimed"]


@pytest.mark.parametrize(
    "final", [JobState.DONE, JobState.FAILED, JobState.SKIPPED, JobState.RETURNED]
)
def test_a_finished_job_never_changes_state_again(ledger: Ledger, final: JobState) -> None:
    ledger.create(job_id="j1", rule="r", engine="local", source=Path("/in/a.mp4"), claimed=None)
    walk_to(ledger, "j1", final)

    for state in JobState:
        with pytest.raises(IllegalTransition):
            ledger.transition("j1", state)


def test_every_state_a_job_can_reach_is_in_the_table() -> None:
    reached = {JobState.CLAIMED} | {state for targets in ALLOWED.values() for state in targets}
    assert reached == set(ALLOWED)  # DETECTED and SETTLING live in memory only


def test_a_crash_is_charged_to_each_job_it_left_running_and_clears_their_marks(
    ledger: Ledger,
) -> None:
    for job_id in ("a", "b", "idle"):
        make_job(ledger, job_id, f"/in/{job_id}.mp4")
    ledger.update("a", in_flight=ledger.get("a").checkpoint)
    ledger.update("b", in_flight=ledger.get("b").checkpoint)

    charged = ledger.count_crash()

    assert sorted((record.id, record.crashes, record.crashed_alone) for record in charged) == [
        ("a", 1, False),  # two were running: neither was alone
        ("b", 1, False),
    ]
    assert ledger.get("idle").crashes == 0
    assert ledger.count_crash() == []  # the marks are gone: one crash is charged once


def test_a_job_that_was_the_only_one_running_in_a_crash_is_marked_as_alone(
    ledger: Ledger,
) -> None:
    make_job(ledger, "a")
    make_job(ledger, "b", "/in/b.mp4")
    ledger.update("a", in_flight=ledger.get("a").checkpoint)
    ledger.count_crash()
    ledger.update("a", in_flight=ledger.get("a").checkpoint)
    ledger.update("b", in_flight=ledger.get("b").checkpoint)
    ledger.count_crash()  # in company this time: being alone once is remembered

    record = ledger.get("a")
    assert (record.crashes, record.crashed_alone) == (2, True)


def test_a_ledger_from_before_the_crash_columns_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(FIRST_RELEASE_JOBS)
        db.execute(
            "INSERT INTO jobs (id, rule, engine, source, state, created_at, updated_at)"
            " VALUES ('old', 'r', 'local', '/in/a.mp4', 'editing', 1, 1)"
        )
    ledger = Ledger(path)
    assert (ledger.get("old").crashes, ledger.get("old").crashed_alone) == (0, False)
    ledger.update("old", in_flight=ledger.get("old").checkpoint)
    assert [record.crashes for record in ledger.count_crash()] == [1]
    ledger.close()


def test_a_ledger_from_before_several_outputs_is_migrated_with_none_published(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(FIRST_RELEASE_JOBS)
        db.execute(
            "INSERT INTO jobs (id, rule, engine, source, state, output, created_at, updated_at)"
            " VALUES ('old', 'r', 'local', '/in/a.mp4', 'done', '/out/a.mp4', 1, 1)"
        )
    with Ledger(path) as ledger:
        old = ledger.get("old")
        assert (old.published, old.outputs) == ({}, [Path("/out/a.mp4")])
        assert old.checkpoint == "done:0:0"  # as earlier versions wrote it


def test_outputs_published_are_kept_in_the_order_they_were_published(ledger: Ledger) -> None:
    make_job(ledger)
    pairs = [("youtube", "/out/a-youtube.mp4"), ("shorts", "/out/a-shorts.mp4"), ("kept", None)]

    record = ledger.update("job1", published=pairs)

    assert list(record.published) == ["youtube", "shorts", "kept"]
    assert record.outputs == [Path("/out/a-youtube.mp4"), Path("/out/a-shorts.mp4")]
    assert record.checkpoint.endswith(":3")  # one output more is a step on, for crashes


def running(ledger: Ledger, job_id: str) -> None:
    """Mark a job as a worker does when its run begins."""
    ledger.update(job_id, in_flight=ledger.get(job_id).checkpoint)


@pytest.mark.parametrize("further", ["a step done", "an instruction confirmed"])
def test_a_crash_after_the_job_got_past_the_checkpoint_its_run_began_at_starts_a_new_row(
    ledger: Ledger, further: str
) -> None:
    make_job(ledger, "a")
    walk_to(ledger, "a", JobState.EDITING)
    for _ in range(3):  # three crashes where its runs began, alone
        running(ledger, "a")
        ledger.count_crash()
    running(ledger, "a")
    if further == "a step done":
        ledger.transition("a", JobState.EXPORTING)
    else:
        ledger.update("a", edits_done=1)
    make_job(ledger, "b", "/in/b.mp4")
    running(ledger, "b")

    ledger.count_crash()

    record = ledger.get("a")
    assert (record.crashes, record.crashed_alone) == (1, False)
