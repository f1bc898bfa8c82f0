"""The daemon's intake part on real folders and a real ledger, with the clock as a
parameter: candidates settle, are claimed (ledger first, rename second), and what was
refused or is unmatched is remembered, so each is logged once."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.config import Rule
from nemowatch.daemon.intake import Intake
from nemowatch.daemon.pauses import Pauses
from nemowatch.intake import SIDECAR_WAIT, Snapshot
from nemowatch.ledger import JobState, Ledger
from tests.fakes.nemo_kit import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(100.0)


@pytest.fixture
def pauses() -> Pauses:
    return Pauses()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return inbox


@pytest.fixture
def intake(tmp_path: Path, inbox: Path, ledger: Ledger, clock: Clock, pauses: Pauses) -> Intake:
    rule = Rule(
        name="clips",
        inbox=inbox,
        outbox=tmp_path / "outbox",
        match=["*.mp4"],
        settle_seconds=1.0,
    )
    return Intake(ledger, (rule,), engine="local", pauses=pauses, clock=clock)


def settle(intake: Intake, clock: Clock, seconds: float = 1.0) -> list[tuple[Path, Snapshot]]:
    """Let `seconds` pass and look again, as the daemon's settle loop does."""
    clock.now += seconds
    intake.recheck(clock.now)
    return intake.settled(clock.now)


def test_a_file_that_stops_changing_settles_and_is_claimed(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    assert intake.offer(clip) is True and intake.settling == 1
    [(path, snap)] = settle(intake, clock)
    with capture_logs() as logs:
        job_id = intake.take(path, snap)
    assert job_id is not None and intake.settling == 0
    record = ledger.get(job_id)
    assert record.state is JobState.CLAIMED and record.rule == "clips"
    assert record.claimed is not None and record.claimed.read_bytes() == b"video"
    assert not clip.exists()
    assert [entry["event"] for entry in logs] == ["job.claimed"]


def test_a_file_still_being_written_does_not_settle(
    intake: Intake, inbox: Path, clock: Clock
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"vid")
    intake.offer(clip)
    with clip.open("ab") as handle:
        handle.write(b"eo")
    assert settle(intake, clock) == []
    assert [path for path, _ in settle(intake, clock)] == [clip]


def test_a_close_write_settles_a_file_once_a_sidecar_had_time_to_come(
    tmp_path: Path, inbox: Path, ledger: Ledger, clock: Clock, pauses: Pauses
) -> None:
    slow = Rule(name="slow", inbox=inbox, outbox=tmp_path / "out", settle_seconds=30.0)
    intake = Intake(ledger, (slow,), engine="local", pauses=pauses, clock=clock)
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    intake.offer(clip, closed=True)
    assert settle(intake, clock, seconds=0.0) == []  # a sidecar may still come
    assert [path for path, _ in settle(intake, clock, seconds=SIDECAR_WAIT)] == [clip]


def test_a_file_no_rule_takes_is_logged_once_and_not_tracked(intake: Intake, inbox: Path) -> None:
    notes = inbox / "notes.rtf"
    notes.write_text("not a video")
    with capture_logs() as logs:
        assert intake.offer(notes) is False
        assert intake.offer(notes) is False
    assert [entry["event"] for entry in logs] == ["file.no_rule"]
    assert intake.settling == 0


def test_a_file_changed_after_it_settled_is_not_taken(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    intake.offer(clip)
    [(path, snap)] = settle(intake, clock)
    clip.write_bytes(b"another video")
    assert intake.take(path, snap) is None
    assert clip.exists() and ledger.jobs() == []


def test_a_claim_that_fails_is_remembered_until_the_file_changes(
    intake: Intake, inbox: Path, ledger: Ledger, clock: Clock
) -> None:
    (inbox / "processing").write_text("a file where the work folder should be")
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    intake.offer(clip)
    [(path, snap)] = settle(intake, clock)
    with capture_logs() as logs:
        assert intake.take(path, snap) is None
        assert intake.offer(clip) is False  # refused already: not logged again
    assert [entry["event"] for entry in logs] == ["intake.claim_failed"]
    assert ledger.jobs() == [] and clip.exists()
    clip.write_bytes(b"video, fixed")
    assert intake.offer(clip) is True


def test_a_file_already_taken_is_not_offered_again(
    intake: Intake, inbox: Path, clock: Clock
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    intake.offer(clip)
    [(path, snap)] = settle(intake, clock)
    job_id = intake.take(path, snap)
    assert job_id is not None
    assert intake.take(path, snap) is None  # gone into processing/


def test_nothing_is_taken_from_a_missing_inbox(
    intake: Intake, inbox: Path, ledger: Ledger, pauses: Pauses, clock: Clock
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(b"video")
    intake.offer(clip)
    [(path, snap)] = settle(intake, clock)
    pauses.inboxes_missing({inbox})  # the share went away (and this is the folder beneath)
    assert intake.offer(clip) is False
    assert intake.take(path, snap) is None
    assert clip.exists() and ledger.jobs() == []


def test_reloaded_rules_take_what_the_old_ones_did_not(
    intake: Intake, inbox: Path, tmp_path: Path
) -> None:
    notes = inbox / "notes.rtf"
    notes.write_text("text")
    assert intake.offer(notes) is False
    intake.update_rules(
        (Rule(name="notes", inbox=inbox, outbox=tmp_path / "outbox", match=["*.rtf"]),)
    )
    assert intake.rule("notes") is not None and intake.rule("clips") is None
    assert intake.offer(notes) is True
