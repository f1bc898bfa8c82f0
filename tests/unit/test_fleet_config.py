"""`ledger:` and `fleet:` in the config, and a rule's `nodes:`: what `check` refuses, with
the file and the line, and that the database password is never in the config or a message."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from nemowatch import cli
from nemowatch.config import load_config


def config_with(tmp_path: Path, settings: str, rule: str = "") -> Path:
    path = tmp_path / "config.yaml"
    rules = f"rules:\n  - name: clips\n    inbox: ./in\n    outbox: ./out\n{rule}"
    path.write_text(f"state_dir: ./state\n{textwrap.dedent(settings)}{rules}", encoding="utf-8")
    return path


def test_one_machine_needs_no_fleet_settings(tmp_path: Path) -> None:
    config = load_config(config_with(tmp_path, ""))
    assert config.ledger is None
    assert config.fleet.name == socket.gethostname() and config.fleet.lease == 120.0


def test_a_fleet_ledger_and_its_settings_are_read_with_the_password_file_beside_the_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "pgpass").write_text("pw\n")
    config = load_config(
        config_with(
            tmp_path,
            "ledger: postgresql://nw@db.lan/nemowatch\n"
            "fleet: {node: render-1, lease: 60, password_file: pgpass}\n",
        )
    )
    assert config.ledger == "postgresql://nw@db.lan/nemowatch"
    assert (config.fleet.name, config.fleet.lease) == ("render-1", 60.0)
    assert config.fleet.password_file == tmp_path / "pgpass"


@pytest.mark.parametrize(
    ("settings", "rule", "line", "expected"),
    [
        ("ledger: mysql://db/x\n", "", 2, "ledger: a PostgreSQL URL"),
        ("ledger: postgresql://db/x\nfleet: {lease: 10}\n", "", 3, "not longer than grace_period"),
        ("fleet: {node: 'a b'}\n", "", 2, "letters, digits"),
        ("", "    nodes: [gpu-box]\n", 6, "not one of gpu-box"),
        ("ledger: postgresql://db/x\nfleet: {password_file: nope}\n", "", 3, "nope is not a file"),
    ],
)
def test_check_refuses_a_fleet_that_could_not_work_as_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: str,
    rule: str,
    line: int,
    expected: str,
) -> None:
    path = config_with(tmp_path, settings, rule)
    assert cli.main(["check", "--config", str(path)]) == 78
    error = capsys.readouterr().err
    assert f"{path}:{line}:" in error and expected in error, error


def test_a_password_in_the_ledger_url_is_refused_without_being_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_with(tmp_path, "ledger: postgresql://nw:hunter2secret@db.lan/nw\n")
    assert cli.main(["check", "--config", str(path)]) == 78
    error = capsys.readouterr().err
    assert "keep the password out of the config" in error
    assert "hunter2secret" not in error
