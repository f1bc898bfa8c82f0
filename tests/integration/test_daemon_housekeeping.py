"""The daemon's housekeeping part on real files, a real ledger and a real doorbell
(inotify): what wakes it, when the config is reloaded, and what operators asked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from nemowatch.config import Config, load_config
from nemowatch.daemon.housekeeping import (
    Housekeeping,
    Reload,
    config_signature,
    reloaded,
)
from nemowatch.daemon.pauses import Pauses, Reason
from nemowatch.ledger import Ledger, bell_folder, ledger_path, ring
from nemowatch.watch import Doorbells


def write_rule(path: Path, name: str, folder: Path) -> None:
    rule = {"name": name, "inbox": str(folder / name), "outbox": str(folder / f"{name}-out")}
    path.write_text(yaml.safe_dump(rule), encoding="utf-8")


def make_config(folder: Path) -> Config:
    """config.yaml in `folder` taking its rules from `folder/rules.d`."""
    rules = folder / "rules.d"
    rules.mkdir()
    write_rule(rules / "clips.yaml", "clips", folder)
    path = folder / "config.yaml"
    path.write_text(f"state_dir: {folder / 'state'}\nrules_dir: {rules}\n", encoding="utf-8")
    return load_config(path)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def ledger(config: Config) -> Iterator[Ledger]:
    ledger = Ledger.in_state_dir(config.state_dir)
    yield ledger
    ledger.close()


@pytest.fixture
def pauses() -> Pauses:
    return Pauses()


@pytest.fixture
def housekeeping(config: Config, ledger: Ledger, pauses: Pauses) -> Iterator[Housekeeping]:
    housekeeping = Housekeeping(config, ledger, pauses)
    yield housekeeping
    housekeeping.stop_listening()


def test_the_doorbells_are_the_config_the_rule_files_the_operators_bell_and_the_ledger(
    config: Config, tmp_path: Path
) -> None:
    doorbells = Doorbells.of(config)
    bell = bell_folder(config.state_dir)
    assert doorbells.folders() == {tmp_path, tmp_path / "rules.d", bell, config.state_dir}
    assert doorbells.rings(ledger_path(config.state_dir))  # deleted or replaced: stop
    assert not doorbells.rings(config.state_dir / "ledger.sqlite3-wal")
    assert doorbells.rings(tmp_path / "config.yaml")
    assert doorbells.rings(tmp_path / "rules.d" / "new.yml")  # a rule file added later
    assert doorbells.rings(bell / "rung")
    assert not doorbells.rings(tmp_path / "rules.d" / "README.md")
    assert not doorbells.rings(tmp_path / "clip.mp4")


def test_the_signature_changes_when_a_rule_file_is_edited_added_or_removed(
    config: Config, tmp_path: Path
) -> None:
    before = config_signature(config)
    write_rule(tmp_path / "rules.d" / "reels.yaml", "reels", tmp_path)
    added = config_signature(config)
    assert added != before
    (tmp_path / "rules.d" / "clips.yaml").unlink()
    assert config_signature(config) not in (before, added)


async def test_a_reload_request_or_an_edit_makes_the_next_round_a_reload(
    housekeeping: Housekeeping, tmp_path: Path
) -> None:
    housekeeping.ring()
    assert await housekeeping.next_round() is None  # rung, nothing changed
    housekeeping.request_reload()
    assert await housekeeping.next_round() is Reload.SIGNAL
    write_rule(tmp_path / "rules.d" / "reels.yaml", "reels", tmp_path)
    housekeeping.ring()
    assert await housekeeping.next_round() is Reload.EDITED
    housekeeping.ring()
    assert await housekeeping.next_round() is None  # seen once


async def test_the_doorbell_wakes_housekeeping_for_an_edit_and_for_an_operator(
    housekeeping: Housekeeping, config: Config, tmp_path: Path
) -> None:
    assert housekeeping.listen(asyncio.get_running_loop()) is True
    assert housekeeping.listening
    write_rule(tmp_path / "rules.d" / "reels.yaml", "reels", tmp_path)
    assert await asyncio.wait_for(housekeeping.next_round(), timeout=10) is Reload.EDITED
    ring(config.state_dir)  # what `nemowatch pause` does after writing the ledger
    assert await asyncio.wait_for(housekeeping.next_round(), timeout=10) is None


async def test_without_a_doorbell_housekeeping_says_so_and_polls(
    housekeeping: Housekeeping, config: Config
) -> None:
    bell_folder(config.state_dir).write_text("not a folder")
    with capture_logs() as logs:
        assert housekeeping.listen(asyncio.get_running_loop()) is False
    assert not housekeeping.listening
    assert [entry["event"] for entry in logs] == ["daemon.doorbell_unavailable"]


def test_operator_requests_are_read_from_the_ledger(
    housekeeping: Housekeeping, config: Config, pauses: Pauses
) -> None:
    operator = Ledger.in_state_dir(config.state_dir)  # another process's connection
    try:
        assert housekeeping.read_control() is False
        operator.set_paused(True)
        operator.request_scan()
        assert housekeeping.read_control() is True
        assert pauses.reasons == {Reason.OPERATOR}
        assert housekeeping.read_control() is False  # that scan was served
        operator.set_paused(False)
        housekeeping.read_control()
        assert not pauses.held
    finally:
        operator.close()


def test_a_reload_keeps_the_running_rules_when_the_new_ones_are_invalid(
    config: Config, tmp_path: Path
) -> None:
    (tmp_path / "rules.d" / "clips.yaml").write_text("name: clips\ninbox: 3\n")
    with capture_logs() as logs:
        assert reloaded(config) is None
    [invalid] = [entry for entry in logs if entry["event"] == "config.invalid"]
    assert invalid["problems"]


def test_a_reload_takes_the_new_rules_and_warns_of_what_needs_a_restart(
    config: Config, tmp_path: Path
) -> None:
    write_rule(tmp_path / "rules.d" / "reels.yaml", "reels", tmp_path)
    source = tmp_path / "config.yaml"
    source.write_text(source.read_text() + "concurrency: 3\n")
    with capture_logs() as logs:
        new = reloaded(config)
    assert new is not None
    assert [rule.name for rule in new.rules] == ["clips", "reels"]
    assert new.concurrency == config.concurrency  # only at the next start
    assert [entry["setting"] for entry in logs if entry["event"] == "config.restart_needed"] == [
        "concurrency"
    ]
