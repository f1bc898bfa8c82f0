"""What a starting daemon does with what a crashed one left behind (`Recovery`, as the
daemon composes it, without starting the daemon)."""

from __future__ import annotations

import shutil
from pathlib import Path

from structlog.testing import capture_logs

from nemowatch.config import Config, Rule
from nemowatch.daemon import Daemon
from nemowatch.daemon.recovery import prepare_folders
from nemowatch.files import claim_path
from nemowatch.ledger import JobState, Ledger
from tests.ledgers import walk_to


def make_config(tmp_path: Path) -> Config:
    rule = Rule(name="clips", inbox=tmp_path / "inbox", outbox=tmp_path / "outbox")
    return Config(state_dir=tmp_path / "state", rules=(rule,))


def test_a_claimed_file_this_ledger_does_not_know_is_left_to_its_owner(
    tmp_path: Path, clips
) -> None:
    # Claims are written to the ledger before the rename, so an unknown file in
    # processing/ belongs to another nemowatch sharing the inbox: taking it would make
    # two daemons process one file.
    config = make_config(tmp_path)
    processing = tmp_path / "inbox" / "processing"
    processing.mkdir(parents=True)
    theirs = processing / "abc123def456__clip.mp4"
    shutil.copy(clips.basic, theirs)
    daemon = Daemon(config)
    with capture_logs() as logs:
        prepare_folders(daemon.rules)
        resumed = daemon.recovery.run()
    assert theirs.exists()
    assert daemon.ledger.jobs() == [] and resumed == []
    warning = next(entry for entry in logs if entry["event"] == "processing.not_ours")
    assert warning["path"] == str(theirs) and "move it back into the inbox" in warning["hint"]
    daemon.ledger.close()


def recorded_claim(config: Config, source: Path, job_id: str) -> None:
    """What a daemon killed between its ledger write and its rename leaves behind."""
    stat = source.stat()
    ledger = Ledger.in_state_dir(config.state_dir)
    ledger.create(
        job_id=job_id,
        rule="clips",
        engine="local",
        source=source,
        claimed=claim_path(source.parent, job_id, source.name),
        source_size=stat.st_size,
        source_mtime_ns=stat.st_mtime_ns,
        source_inode=stat.st_ino,
    )
    ledger.close()


def test_a_claim_killed_before_its_rename_is_finished_at_start(tmp_path: Path, clips) -> None:
    config = make_config(tmp_path)
    source = tmp_path / "inbox" / "clip.mp4"
    source.parent.mkdir(parents=True)
    shutil.copy(clips.basic, source)
    recorded_claim(config, source, "abc123def456")
    daemon = Daemon(config)
    resumed = daemon.recovery.run()
    record = daemon.ledger.get("abc123def456")
    assert record.claimed is not None and record.claimed.is_file()
    assert not source.exists()
    assert resumed == ["abc123def456"]
    daemon.ledger.close()


def test_a_claim_killed_before_its_rename_is_undone_when_the_file_changed_or_went(
    tmp_path: Path, clips
) -> None:
    config = make_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    changed, gone = inbox / "changed.mp4", inbox / "gone.mp4"
    for path in (changed, gone):
        shutil.copy(clips.basic, path)
    recorded_claim(config, changed, "job000000010")
    recorded_claim(config, gone, "job000000011")
    with changed.open("ab") as handle:  # still being written: it must settle again
        handle.write(b"more")
    gone.unlink()  # taken by another daemon, or by a person
    daemon = Daemon(config)
    resumed = daemon.recovery.run()
    assert daemon.ledger.jobs() == []
    assert changed.exists() and resumed == []
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
    walk_to(ledger, "job000000001", JobState.DONE, output=tmp_path / "outbox" / "clip.mp4")
    ledger.close()
    daemon = Daemon(config)
    resumed = daemon.recovery.run()
    record = daemon.ledger.get("job000000001")
    assert record.disposed is not None and "done" in record.disposed
    assert Path(record.disposed).exists() and not claimed.exists()
    assert resumed == []
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
    resumed = daemon.recovery.run()
    assert resumed == []
    assert claimed.exists()
    assert daemon.ledger.get("job000000002").state is JobState.CLAIMED
    daemon.ledger.close()


def test_folders_are_made_at_start_except_an_inbox_that_is_missing(tmp_path: Path) -> None:
    # an unmounted share: making the folder would put files on the mount point beneath it
    config = make_config(tmp_path)
    inbox = tmp_path / "inbox"
    prepare_folders(config.rules, missing={inbox})
    assert not inbox.exists() and (tmp_path / "outbox").is_dir()
    prepare_folders(config.rules)
    assert inbox.is_dir()


def test_the_jobs_a_crash_left_running_are_charged_with_it_and_resumed(
    tmp_path: Path, clips
) -> None:
    config = make_config(tmp_path)
    for job_id, name in (("abc123def456", "a.mp4"), ("def456abc123", "b.mp4")):
        source = tmp_path / "inbox" / name
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips.basic, source)
        recorded_claim(config, source, job_id)
    with Ledger.in_state_dir(config.state_dir) as ledger:
        walk_to(ledger, "abc123def456", JobState.EXPORTING)
        ledger.update("abc123def456", in_flight=ledger.get("abc123def456").checkpoint)  # running
    daemon = Daemon(config)
    with capture_logs() as logs:
        resumed = daemon.recovery.run()
    assert sorted(resumed) == ["abc123def456", "def456abc123"]
    running, waiting = daemon.ledger.get("abc123def456"), daemon.ledger.get("def456abc123")
    assert (running.crashes, running.crashed_alone) == (1, True)
    assert waiting.crashes == 0  # queued, not running: the crash says nothing about it
    (found,) = [entry for entry in logs if entry["event"] == "daemon.crash_found"]
    assert found["jobs"] == ["abc123def456"]
    daemon.ledger.close()
