"""A ledger deleted under a running daemon, a ledger with garbage pages, and the faults a
daemon can meet at start: each ends with its own exit status (docs/systemd.md), logged,
without a traceback, and without a new empty ledger where the old one was expected."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nemowatch.errors import EX_CANTCREAT, EX_CONFIG, EX_DATAERR, EX_NOINPUT, EX_OSFILE
from nemowatch.ledger import Ledger, ledger_path
from tests.e2e.harness import (
    Daemon,
    drop,
    files,
    ledger_states,
    nemowatch,
    rule,
    wait_for,
    write_config,
)
from tests.fakes.nemo_server import FakeNemo, Variants
from tests.ledgers import garble
from tests.media import Clips

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Started without any capability, root is bound by file modes like anyone else.
NO_CAPABILITIES = (
    ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--ambient-caps=-all", "--"]
    if os.geteuid() == 0
    else []
)


def run(config: Path, log: Path, prefix: list[str] | None = None) -> tuple[int, str]:
    """`nemowatch run` to its end: its exit status and output."""
    daemon = Daemon(config, log, prefix=prefix or ()).spawn()
    assert daemon.process is not None
    status = daemon.process.wait(timeout=30)
    return status, daemon.output()


def test_a_ledger_deleted_under_the_daemon_stops_it_with_status_66(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)], scan_interval=30)
    state_dir = tmp_path / "state"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        ledger_path(state_dir).unlink()
        deleted = time.monotonic()
        assert daemon.process is not None
        status = daemon.process.wait(timeout=20)
        # the deletion rings the housekeeping doorbell: no need to wait for a scan
        assert time.monotonic() - deleted < 10
    finally:
        if daemon.running:
            daemon.kill()
    assert status == EX_NOINPUT, daemon.output()
    (lost,) = daemon.saw("ledger.lost")
    assert lost["level"] == "error" and lost["why"] == "deleted"
    assert "Traceback" not in daemon.output()

    shown = nemowatch(config, "status")
    assert shown.returncode == EX_NOINPUT
    assert "nemowatch ledger recover" in shown.stderr
    for command in (["pause"], ["resume"], ["jobs"], ["retry", "--failed"], ["retry", "abc"]):
        result = nemowatch(config, *command)
        assert result.returncode == EX_NOINPUT, (command, result.stdout, result.stderr)
    assert not ledger_path(state_dir).exists()  # no command made a new empty ledger
    again, output = run(config, tmp_path / "again.log")
    assert again == EX_NOINPUT, output
    assert not ledger_path(state_dir).exists()


def test_a_job_running_when_the_ledger_goes_publishes_nothing_and_finishes_after_recover(
    tmp_path: Path, clips: Clips
) -> None:
    video = tmp_path / "rendered.mp4"
    shutil.copy(clips.basic, video)
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    state_dir = tmp_path / "state"
    # a render that stays pending until the test lets it finish
    with FakeNemo(video=video, variants=Variants(render_polls=10_000)) as fake:
        config = write_config(
            tmp_path,
            [rule(tmp_path, instructions=["cut out silences"])],
            engine="nemo",
            nemo={"base_url": fake.base_url},
            grace_period=60,
        )
        daemon = Daemon(config, tmp_path / "daemon.log").start()
        try:
            drop(inbox / "talk.mp4", clips.basic)
            wait_for(lambda: "exporting" in ledger_states(state_dir).values(), what="render")
            ledger_path(state_dir).unlink()
            assert daemon.process is not None
            # at once, without the grace period: nothing it finished could be recorded
            assert daemon.process.wait(timeout=30) == EX_NOINPUT, daemon.output()
        finally:
            if daemon.running:
                daemon.kill()
        assert files(outbox) == []
        (claimed,) = files(inbox / "processing")

        recovered = nemowatch(config, "ledger", "recover")
        assert recovered.returncode == 0, recovered.stderr
        assert f"claimed again: {claimed}" in recovered.stdout
        fake.variants = replace(fake.variants, render_polls=2)
        daemon = Daemon(config, tmp_path / "again.log").start()
        try:
            wait_for(lambda: list(ledger_states(state_dir).values()) == ["done"], what="done")
        finally:
            daemon.stop()
    assert [path.name for path in files(outbox)] == ["talk.mp4"]


def test_a_ledger_with_garbage_pages_is_recovered_and_its_jobs_finish(
    tmp_path: Path, clips: Clips
) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    state_dir = tmp_path / "state"
    processing = inbox / "processing"
    processing.mkdir(parents=True)
    # two claimed files a killed daemon left: one the ledger knows, one whose row is lost
    known = processing / "aaaaaaaaaaaa__known.mp4"
    lost = processing / "bbbbbbbbbbbb__lost.mp4"
    # two different clips: byte-identical ones would make one output and one duplicate
    for path, clip in zip((known, lost), clips.distinct(2), strict=True):
        path.write_bytes(clip.read_bytes())
    with Ledger.in_state_dir(state_dir) as ledger:
        ledger.create(
            job_id="aaaaaaaaaaaa",
            rule="clips",
            engine="local",
            source=inbox / "known.mp4",
            claimed=known,
        )
    garble(ledger_path(state_dir), "transitions")

    status, output = run(config, tmp_path / "damaged.log")
    assert status == EX_DATAERR, output
    assert "Traceback" not in output
    assert "nemowatch ledger recover" in output
    shown = nemowatch(config, "status")
    assert shown.returncode == EX_DATAERR
    assert "Traceback" not in shown.stderr + shown.stdout
    assert str(ledger_path(state_dir)) in shown.stderr
    checked = nemowatch(config, "ledger", "check")
    assert checked.returncode == EX_DATAERR
    assert "damaged" in checked.stdout

    recovered = nemowatch(config, "ledger", "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert f"claimed again: {lost}" in recovered.stdout
    assert len(list(state_dir.glob("ledger.sqlite3.damaged-*"))) == 1  # kept aside

    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        wait_for(
            lambda: sorted(ledger_states(state_dir).values()) == ["done", "done"],
            what="both jobs done",
        )
    finally:
        daemon.stop()
    assert [path.name for path in files(outbox)] == ["known.mp4", "lost.mp4"]


def test_an_unwritable_state_dir_is_status_73(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o555)
    state_dir.chmod(0o555)
    status, output = run(config, tmp_path / "daemon.log", prefix=NO_CAPABILITIES)
    assert status == EX_CANTCREAT, output
    assert "daemon.cannot_run" in output and "Traceback" not in output


def test_a_state_dir_that_leads_nowhere_is_status_72(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    (tmp_path / "state").symlink_to(tmp_path / "unmounted" / "state")
    status, output = run(config, tmp_path / "daemon.log")
    assert status == EX_OSFILE, output
    assert "Traceback" not in output
    assert not (tmp_path / "unmounted").exists()  # nothing made under a missing mount


def test_a_bad_config_is_status_78(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)], concurrency="many")
    status, output = run(config, tmp_path / "daemon.log")
    assert status == EX_CONFIG, output
    assert "Traceback" not in output
