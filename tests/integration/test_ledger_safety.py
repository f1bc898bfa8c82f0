"""The ledger stays the ledger: opening a damaged, lost or unreachable one is an error with
its own exit status; the daemon's housekeeping notices a ledger deleted or replaced; and
`salvage` checks and rebuilds a damaged one. Real SQLite, real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch import liveness, salvage
from nemowatch.config import Config, load_config
from nemowatch.daemon.housekeeping import Housekeeping
from nemowatch.daemon.pauses import Pauses
from nemowatch.errors import (
    EX_DATAERR,
    EX_NOINPUT,
    EX_OSFILE,
    LedgerDamaged,
    LedgerError,
    LedgerLost,
)
from nemowatch.ledger import JobState, Ledger, ledger_path
from tests.ledgers import garble


def a_ledger_with_jobs(state_dir: Path, count: int = 3) -> Path:
    with Ledger.in_state_dir(state_dir) as ledger:
        for index in range(count):
            ledger.create(
                job_id=f"{index:012x}",
                rule="clips",
                engine="local",
                source=Path(f"/in/clip{index}.mp4"),
                claimed=Path(f"/in/processing/{index:012x}__clip{index}.mp4"),
            )
    return ledger_path(state_dir)


def make_config(folder: Path) -> Config:
    path = folder / "config.yaml"
    path.write_text(
        f"state_dir: {folder / 'state'}\nrules:\n"
        f"  - name: clips\n    inbox: {folder / 'inbox'}\n    outbox: {folder / 'outbox'}\n",
        encoding="utf-8",
    )
    return load_config(path)


# ---- opening --------------------------------------------------------------------------------


def test_a_ledger_with_garbage_pages_is_damaged_with_status_65(tmp_path: Path) -> None:
    path = a_ledger_with_jobs(tmp_path)
    garble(path, "transitions")
    with pytest.raises(LedgerDamaged) as raised:
        Ledger(path)
    assert raised.value.exit_status == EX_DATAERR
    assert str(path) in str(raised.value)
    assert raised.value.hint is not None and "nemowatch ledger recover" in raised.value.hint


def test_a_file_that_is_not_a_database_is_damaged(tmp_path: Path) -> None:
    path = ledger_path(tmp_path)
    path.write_bytes(b"this is not a database" * 300)
    with pytest.raises(LedgerDamaged, match="not a database"):
        Ledger.open_existing(tmp_path)


def test_a_state_dir_behind_a_file_cannot_be_made_status_72(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(LedgerError) as raised:
        Ledger.in_state_dir(tmp_path / "file" / "state")
    assert raised.value.exit_status == EX_OSFILE


def test_a_state_dir_behind_a_link_to_nothing_cannot_be_made_status_72(tmp_path: Path) -> None:
    (tmp_path / "state").symlink_to(tmp_path / "unmounted" / "state")
    with pytest.raises(LedgerError) as raised:
        Ledger.in_state_dir(tmp_path / "state")
    assert raised.value.exit_status == EX_OSFILE
    assert not (tmp_path / "unmounted").exists()


def test_no_new_ledger_where_a_daemon_ran(tmp_path: Path) -> None:
    liveness.hold(tmp_path).release()  # a daemon ran here: its pid file stays
    for opening in (Ledger.in_state_dir, Ledger.open_existing):
        with pytest.raises(LedgerLost) as raised:
            opening(tmp_path)
        assert raised.value.exit_status == EX_NOINPUT
    assert not ledger_path(tmp_path).exists()


def test_a_new_state_dir_still_gets_a_ledger(tmp_path: Path) -> None:
    Ledger.in_state_dir(tmp_path / "state").close()
    assert ledger_path(tmp_path / "state").is_file()


# ---- identity -------------------------------------------------------------------------------


def test_the_ledger_knows_when_its_file_is_deleted_or_replaced(tmp_path: Path) -> None:
    path = a_ledger_with_jobs(tmp_path)
    with Ledger(path) as ledger:
        assert ledger.lost() is None
        path.rename(tmp_path / "elsewhere.sqlite3")
        assert ledger.lost() == "deleted"
        a_ledger_with_jobs(tmp_path / "other")
        os.replace(ledger_path(tmp_path / "other"), path)
        assert ledger.lost() == "replaced by another file"


def test_housekeeping_logs_a_lost_ledger(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with Ledger.in_state_dir(config.state_dir) as ledger:
        housekeeping = Housekeeping(config, ledger, Pauses())
        assert not housekeeping.ledger_lost()
        ledger.path.unlink()
        with capture_logs() as logs:
            assert housekeeping.ledger_lost()
    (lost,) = [entry for entry in logs if entry["event"] == "ledger.lost"]
    assert lost["log_level"] == "error"
    assert lost["why"] == "deleted"
    assert "nemowatch ledger recover" in lost["hint"]


# ---- check and recover ----------------------------------------------------------------------


def test_check_finds_a_sound_ledger_sound(tmp_path: Path) -> None:
    a_ledger_with_jobs(tmp_path)
    report = salvage.check(tmp_path)
    assert report.sound
    assert report.readable == {"jobs": 3, "transitions": 3, "control": 0}


def test_check_reports_the_damage_and_what_can_still_be_read(tmp_path: Path) -> None:
    garble(a_ledger_with_jobs(tmp_path), "transitions")
    report = salvage.check(tmp_path)
    assert not report.sound and report.problems
    assert report.readable["jobs"] == 3
    assert report.readable["transitions"] == 0
    assert any("nemowatch ledger recover" in line for line in salvage.describe_report(report))


def test_recover_keeps_what_can_be_read_and_claims_again_what_processing_holds(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    processing = tmp_path / "inbox" / "processing"
    processing.mkdir(parents=True)
    claimed = processing / "0123456789ab__lost.mp4"  # its job's row is gone
    claimed.write_bytes(b"video")
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "made.mp4").write_bytes(b"output")
    path = a_ledger_with_jobs(config.state_dir)
    garble(path, "transitions")
    damaged = path.read_bytes()

    result = salvage.recover(config)

    (aside,) = result.aside
    assert aside.read_bytes() == damaged  # nothing is deleted
    assert result.copied["jobs"] == 3
    assert result.adopted == [claimed]
    assert result.unknown_outputs == [tmp_path / "outbox" / "made.mp4"]
    with Ledger.open_existing(config.state_dir) as ledger:  # sound again
        assert len(ledger.jobs(limit=None)) == 4
        adopted = ledger.get("0123456789ab")
        assert adopted.state is JobState.CLAIMED
        assert adopted.claimed == claimed
        assert adopted.source == tmp_path / "inbox" / "lost.mp4"


def test_recover_is_refused_while_a_daemon_runs(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    garble(a_ledger_with_jobs(config.state_dir), "jobs")
    lock = liveness.hold(config.state_dir)
    try:
        with pytest.raises(LedgerError, match="runs on"):
            salvage.recover(config)
    finally:
        lock.release()
    assert ledger_path(config.state_dir).exists()
