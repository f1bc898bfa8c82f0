"""What a starting daemon does with what a crashed one left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

from nemowatch.config import Config, Rule
from nemowatch.daemon import Daemon
from nemowatch.ledger import JobState, Ledger


def make_config(tmp_path: Path) -> Config:
    rule = Rule(name="clips", inbox=tmp_path / "inbox", outbox=tmp_path / "outbox")
    return Config(state_dir=tmp_path / "state", rules=(rule,))


def test_a_claimed_file_with_no_job_is_adopted(tmp_path: Path, clips) -> None:
    # the daemon died between the claim (rename) and the ledger write
    config = make_config(tmp_path)
    processing = tmp_path / "inbox" / "processing"
    processing.mkdir(parents=True)
    shutil.copy(clips.basic, processing / "abc123def456__clip.mp4")
    daemon = Daemon(config)
    daemon._prepare_folders()
    daemon._recover()
    record = daemon.ledger.get("abc123def456")
    assert record.state is JobState.CLAIMED
    assert record.source == tmp_path / "inbox" / "clip.mp4"
    assert daemon.queue.qsize() == 1
    daemon.ledger.close()


def test_partial_results_in_the_outbox_are_removed_at_start(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    outbox = tmp_path / "outbox"
    outbox.mkdir(parents=True)
    partial = outbox / ".clip.mp4.0123456789ab.nemowatch-part"
    partial.write_bytes(b"half a video")
    kept = outbox / "clip.mp4"
    kept.write_bytes(b"a finished video")
    daemon = Daemon(config)
    daemon._recover()
    assert not partial.exists()
    assert kept.exists()
    daemon.ledger.close()


def test_a_finished_job_whose_source_was_not_yet_archived_is_archived(
    tmp_path: Path, clips
) -> None:
    config = make_config(tmp_path)
    processing = tmp_path / "inbox" / "processing"
    processing.mkdir(parents=True)
    claimed = processing / "job000000001__clip.mp4"
    shutil.copy(clips.basic, claimed)
    ledger = Ledger.in_state_dir(config.state_dir)
    ledger.create(
        job_id="job000000001",
        rule="clips",
        engine="local",
        source=tmp_path / "inbox" / "clip.mp4",
        claimed=claimed,
    )
    ledger.transition("job000000001", JobState.DONE, output=tmp_path / "outbox" / "clip.mp4")
    ledger.close()
    daemon = Daemon(config)
    daemon._recover()
    record = daemon.ledger.get("job000000001")
    assert record.disposed is not None and "done" in record.disposed
    assert Path(record.disposed).exists() and not claimed.exists()
    assert daemon.queue.qsize() == 0
    daemon.ledger.close()


def test_a_job_whose_rule_is_gone_waits_and_keeps_its_file(tmp_path: Path, clips) -> None:
    config = make_config(tmp_path)
    processing = tmp_path / "inbox" / "processing"
    processing.mkdir(parents=True)
    claimed = processing / "job000000002__clip.mp4"
    shutil.copy(clips.basic, claimed)
    ledger = Ledger.in_state_dir(config.state_dir)
    ledger.create(
        job_id="job000000002",
        rule="renamed-away",
        engine="local",
        source=tmp_path / "inbox" / "clip.mp4",
        claimed=claimed,
    )
    ledger.close()
    daemon = Daemon(config)
    daemon._recover()
    assert daemon.queue.qsize() == 0
    assert claimed.exists()
    assert daemon.ledger.get("job000000002").state is JobState.CLAIMED
    daemon.ledger.close()
