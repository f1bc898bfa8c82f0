"""Folders (batches) in the daemon's intake, on real folders and a real ledger, the clock a
parameter: a folder settles as a whole, a change inside it starts its wait again, it is
claimed by one rename with all its jobs written first, a kill between the two is finished
(or undone) at the next start, and a folder kept in place is not taken again."""

from __future__ import annotations

import os
from pathlib import Path

from structlog.testing import capture_logs

from nemowatch.config import BatchMode, Rule
from nemowatch.daemon.intake import Intake
from nemowatch.daemon.pauses import Pauses
from nemowatch.ledger import JobState, Ledger
from tests.fakes.nemo_kit import Clock


def make_intake(tmp_path: Path, ledger: Ledger, clock: Clock, **fields: object) -> Intake:
    rule = Rule.model_validate(
        {
            "name": "clips",
            "inbox": tmp_path / "inbox",
            "outbox": tmp_path / "outbox",
            "settle_seconds": 1.0,
            **fields,
        }
    )
    rule.inbox.mkdir(exist_ok=True)
    return Intake(ledger, (rule,), engine="local", pauses=Pauses(), clock=clock)


def folder(path: Path, *names: str) -> Path:
    path.mkdir()
    for name in names:
        (path / name).write_bytes(name.encode())
    return path


def settle_and_take(intake: Intake, clock: Clock, seconds: float = 1.5) -> list[str]:
    clock.now += seconds
    intake.recheck(clock.now)
    return [job for path, snap in intake.settled(clock.now) for job in intake.take_all(path, snap)]


def test_a_folder_settles_as_a_whole_and_is_claimed_with_a_job_per_file(
    tmp_path: Path, ledger: Ledger
) -> None:
    clock = Clock(100.0)
    intake = make_intake(tmp_path, ledger, clock)
    trip = folder(tmp_path / "inbox" / "trip", "a.mp4", "b.mp4", "a.txt", "instructions.txt")
    assert intake.offer(trip)
    clock.now += 0.6
    (trip / "c.mp4").write_bytes(b"late")  # a file added: the wait starts again
    intake.recheck(clock.now)
    clock.now += 0.6
    intake.recheck(clock.now)
    assert intake.settled(clock.now) == []
    jobs = settle_and_take(intake, clock)
    records = [ledger.get(job) for job in jobs]
    assert [record.source.name for record in records] == ["a.mp4", "b.mp4", "c.mp4"]
    [batch] = {record.batch for record in records}
    assert batch is not None and batch.mode == "each" and batch.instructions == "instructions.txt"
    assert not trip.exists() and batch.claimed.is_dir()
    assert all(record.claimed == batch.claimed / record.source.name for record in records)
    # a.txt is a.mp4's sidecar, in the batch's folder
    assert records[0].sidecars == (
        {"source": str(trip / "a.txt"), "claimed": str(batch.claimed / "a.txt")},
    )
    assert batch.claimed in ledger.claimed_paths()


def test_combine_makes_one_job_of_the_folder(tmp_path: Path, ledger: Ledger) -> None:
    clock = Clock(100.0)
    intake = make_intake(tmp_path, ledger, clock, batch=BatchMode.COMBINE)
    trip = folder(tmp_path / "inbox" / "trip", "1.png", "2.png", "song.mp3")
    intake.offer(trip)
    [job] = settle_and_take(intake, clock)
    record = ledger.get(job)
    assert record.source == trip and record.batch is not None
    assert record.claimed == record.batch.claimed and record.claimed.is_dir()
    assert record.batch.files == ("1.png", "2.png", "song.mp3")


def test_a_kill_between_the_ledger_and_the_rename_is_finished_or_undone(
    tmp_path: Path, ledger: Ledger
) -> None:
    clock = Clock(100.0)
    intake = make_intake(tmp_path, ledger, clock)
    trip = folder(tmp_path / "inbox" / "trip", "a.mp4", "b.mp4")
    intake.offer(trip)
    jobs = settle_and_take(intake, clock)
    batch = ledger.get(jobs[0]).batch
    assert batch is not None
    os.rename(batch.claimed, trip)  # as if killed after the ledger write, before the rename
    for job in jobs:
        intake.finish_claim(ledger.get(job))
    assert batch.claimed.is_dir() and not trip.exists()  # finished
    # changed meanwhile: undone, every job of the batch forgotten, the folder left
    os.rename(batch.claimed, trip)
    (trip / "b.mp4").write_bytes(b"changed")
    with capture_logs() as logs:
        intake.finish_claim(ledger.get(jobs[0]))
    assert [entry["event"] for entry in logs] == ["batch.claim_undone"]
    assert not any(ledger.exists(job) for job in jobs)
    assert trip.is_dir() and not batch.claimed.exists()


def test_a_folder_kept_in_place_after_its_batch_is_not_taken_again(
    tmp_path: Path, ledger: Ledger
) -> None:
    clock = Clock(100.0)
    intake = make_intake(tmp_path, ledger, clock)
    trip = folder(tmp_path / "inbox" / "trip", "a.mp4")
    intake.offer(trip)
    [job] = settle_and_take(intake, clock)
    batch = ledger.get(job).batch
    assert batch is not None
    os.rename(batch.claimed, trip)  # what `after.success: keep` does at the batch's end
    assert not intake.offer(trip)
    assert settle_and_take(intake, clock) == []
    # changed, it is new work
    (trip / "b.mp4").write_bytes(b"new")
    assert intake.offer(trip)
    assert len(settle_and_take(intake, clock)) == 2


def test_folders_that_are_no_batch_are_said_once_or_reported(
    tmp_path: Path, ledger: Ledger
) -> None:
    clock = Clock(100.0)
    intake = make_intake(tmp_path, ledger, clock)
    inbox = tmp_path / "inbox"
    empty = folder(inbox / "empty")
    nested = folder(inbox / "nested", "a.mp4")
    (nested / "inner").mkdir()
    copying = folder(inbox / "copying", "a.mp4", "b.mp4.part")
    unmatched = folder(inbox / "papers", "notes.pdf")
    with capture_logs() as logs:
        for path in (empty, nested, copying, unmatched):
            intake.offer(path)
        for _ in range(3):
            assert settle_and_take(intake, clock) == []
            for path in (empty, copying, unmatched):
                intake.offer(path)  # the scans go on offering them
    events = [(entry["event"], entry.get("path")) for entry in logs]
    assert events.count(("batch.empty", str(empty))) == 1
    assert events.count(("batch.no_rule", str(unmatched))) == 1
    assert ("batch.refused", str(nested)) in events
    assert (inbox / "failed" / "nested" / "a.mp4").is_file()
    assert (inbox / "failed" / "nested.error.json").is_file()
    assert empty.is_dir() and copying.is_dir() and unmatched.is_dir()
    assert ledger.jobs() == []
    (copying / "b.mp4.part").rename(copying / "b.mp4")  # the copy finished
    intake.offer(copying)
    assert len(settle_and_take(intake, clock)) == 2


def test_a_recursive_rule_takes_a_folders_files_one_by_one(tmp_path: Path, ledger: Ledger) -> None:
    clock = Clock(100.0)
    intake = make_intake(tmp_path, ledger, clock, recursive=True)
    trip = folder(tmp_path / "inbox" / "trip", "a.mp4")
    assert not intake.offer(trip)
    assert intake.offer(trip / "a.mp4")
    [job] = settle_and_take(intake, clock)
    assert ledger.get(job).batch is None and ledger.get(job).state is JobState.CLAIMED
