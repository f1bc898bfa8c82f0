"""Sidecars at the daemon's intake, on real folders and a real ledger, the clock a
parameter: a video and its sidecar settle and are claimed together; a sidecar still being
written holds its video back; a sidecar alone is reported in failed/, never lost."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.config import Rule
from nemowatch.daemon.intake import Intake
from nemowatch.daemon.pauses import Pauses
from nemowatch.intake import Snapshot
from nemowatch.ledger import Ledger
from tests.fakes.nemo_kit import Clock

GRACE = 30.0


@pytest.fixture
def clock() -> Clock:
    return Clock(100.0)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return inbox


@pytest.fixture
def intake(tmp_path: Path, inbox: Path, ledger: Ledger, clock: Clock) -> Intake:
    rule = Rule(
        name="clips",
        inbox=inbox,
        outbox=tmp_path / "outbox",
        match=["*.mp4"],
        settle_seconds=2.0,
    )
    return Intake(
        ledger,
        (rule,),
        engine="local",
        pauses=Pauses(),
        clock=clock,
        now=lambda: datetime(2026, 12, 5, 12, 0),
        sidecar_grace=GRACE,
    )


def tick(intake: Intake, clock: Clock, seconds: float) -> list[tuple[Path, Snapshot]]:
    """Let `seconds` pass and look again, as the daemon's settle loop does."""
    clock.now += seconds
    intake.recheck(clock.now)
    return intake.settled(clock.now)


def take_all(intake: Intake, settled: list[tuple[Path, Snapshot]]) -> list[str]:
    return [job for path, snap in settled if (job := intake.take(path, snap)) is not None]


def test_a_video_and_its_sidecar_are_claimed_together(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip, note = inbox / "clip.mp4", inbox / "clip.txt"
    clip.write_bytes(b"video")
    note.write_text("add the title 'Hello'\n")
    assert intake.offer(clip) and intake.offer(note)
    tick(intake, clock, 1.0)
    [job_id] = take_all(intake, tick(intake, clock, 1.0))
    record = ledger.get(job_id)
    [sidecar] = record.sidecars
    assert sidecar["source"] == str(note)
    assert Path(sidecar["claimed"]).read_text() == "add the title 'Hello'\n"
    assert Path(sidecar["claimed"]).parent == inbox / "processing"
    assert not clip.exists() and not note.exists()
    assert ledger.claimed_paths() == {record.claimed, Path(sidecar["claimed"])}
    assert intake.settling == 0


def test_a_sidecar_dropped_a_second_after_its_video_is_still_taken_with_it(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip, note = inbox / "clip.mp4", inbox / "clip.txt"
    clip.write_bytes(b"video")
    intake.offer(clip, closed=True)  # its writer closed it: complete, as far as it knows
    assert tick(intake, clock, 1.0) == []  # the video waits for a possible sidecar
    note.write_text("make it square\n")
    intake.offer(note)
    settled = tick(intake, clock, 1.0)
    # the video has waited its time, but its sidecar has not settled: both wait
    assert take_all(intake, settled) == []
    assert clip.exists() and note.exists()
    jobs: list[str] = []
    for _ in range(4):
        jobs += take_all(intake, tick(intake, clock, 1.0))
    [job_id] = jobs
    assert [Path(item["source"]).name for item in ledger.get(job_id).sidecars] == ["clip.txt"]


def test_a_sidecar_changed_while_its_video_waits_is_waited_for_again(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip, note = inbox / "clip.mp4", inbox / "clip.txt"
    clip.write_bytes(b"video")
    note.write_text("make it")
    intake.offer(clip)
    intake.offer(note)
    tick(intake, clock, 1.5)
    note.write_text("make it square\n")  # still being written
    assert take_all(intake, tick(intake, clock, 1.0)) == []
    jobs: list[str] = []
    for _ in range(4):
        jobs += take_all(intake, tick(intake, clock, 1.0))
    [job_id] = jobs
    [sidecar] = ledger.get(job_id).sidecars
    assert Path(sidecar["claimed"]).read_text() == "make it square\n"


def test_a_sidecar_with_no_video_is_reported_in_failed_after_the_grace_time(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    note = inbox / "clip.txt"
    note.write_text("add the title 'Hello'\n")
    assert intake.offer(note) is True
    tick(intake, clock, 2.0)  # settled, and alone from now
    assert tick(intake, clock, GRACE - 1.0) == [] and note.exists()
    with capture_logs() as logs:
        tick(intake, clock, 1.0)
    assert not note.exists()
    kept = inbox / "failed" / "clip.txt"
    assert kept.read_text() == "add the title 'Hello'\n"  # not lost
    report = json.loads((inbox / "failed" / "clip.txt.error.json").read_text())
    assert report["waiting_for"] == "clip.* (*.mp4)"
    assert "no video named clip.*" in report["error"]
    assert report["file"] == str(kept)
    assert [entry["event"] for entry in logs] == ["sidecar.reported"]
    assert ledger.jobs() == []  # never a job
    assert intake.settling == 0


def test_a_sidecar_whose_video_is_still_being_copied_is_not_reported(
    intake: Intake, inbox: Path, clock: Clock
) -> None:
    note = inbox / "clip.txt"
    note.write_text("make it square\n")
    (inbox / "clip.mp4.part").write_bytes(b"half a vid")
    intake.offer(note)
    tick(intake, clock, 2.0)
    tick(intake, clock, GRACE + 1.0)
    assert note.exists() and not (inbox / "failed").exists()


def test_a_sidecar_beside_a_video_is_left_to_the_video(
    intake: Intake, inbox: Path, clock: Clock
) -> None:
    (inbox / "clip.mp4").write_bytes(b"video, known or not yet settled")
    note = inbox / "clip.txt"
    note.write_text("make it square\n")
    intake.offer(note)
    tick(intake, clock, 2.0)
    assert intake.settling == 0  # not watched any more: nothing left to wait for
    tick(intake, clock, GRACE + 1.0)
    assert note.exists()
    assert intake.offer(note) is False  # seen settled before: the video takes it


def test_a_kill_between_claiming_a_video_and_its_sidecar_is_finished_at_start(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip, note = inbox / "clip.mp4", inbox / "clip.txt"
    clip.write_bytes(b"video")
    note.write_text("make it square\n")
    intake.offer(clip)
    intake.offer(note)
    [job_id] = take_all(intake, tick(intake, clock, 2.0))
    record = ledger.get(job_id)
    [sidecar] = record.sidecars
    # as if killed after the video's rename: the sidecar is back where it was dropped
    Path(sidecar["claimed"]).rename(note)
    intake.finish_claim(record)
    assert Path(sidecar["claimed"]).read_text() == "make it square\n" and not note.exists()


def test_a_sidecar_that_came_after_its_video_was_taken_says_so(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    intake.offer(clip)
    [job_id] = take_all(intake, tick(intake, clock, 2.0))
    note = inbox / "clip.txt"
    note.write_text("make it square\n")  # too late: its video is taken
    intake.offer(note)
    tick(intake, clock, 2.0)
    tick(intake, clock, GRACE)
    report = json.loads((inbox / "failed" / "clip.txt.error.json").read_text())
    assert report["taken_by"] == job_id
    assert f"taken by job {job_id}" in report["error"]
    assert "settle_seconds (2 s)" in report["hint"]
    assert (inbox / "failed" / "clip.txt").read_text() == "make it square\n"


def test_a_text_file_a_rule_takes_is_its_own_file_not_a_sidecar(
    tmp_path: Path, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    everything = Rule(name="all", inbox=inbox, outbox=tmp_path / "out", match=["*"])
    intake = Intake(ledger, (everything,), engine="local", pauses=Pauses(), clock=clock)
    (inbox / "notes.txt").write_text("a file of its own")
    (inbox / "notes.mp4").write_bytes(b"video")
    intake.offer(inbox / "notes.txt")
    intake.offer(inbox / "notes.mp4")
    jobs = take_all(intake, tick(intake, clock, 2.0))
    assert len(jobs) == 2
    assert [ledger.get(job).sidecars for job in jobs] == [(), ()]
