"""`http:` in the config: off unless set, loopback only unless a token or a password guards
it, the token never shown; and pausing one rule, kept in the ledger's control table."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch import cli
from nemowatch.config import load_config
from nemowatch.config.http import is_loopback
from nemowatch.daemon.pauses import Pauses
from nemowatch.errors import ConfigError
from nemowatch.ledger import Ledger
from nemowatch.rulepause import pause_rule, paused_rules

SECRET = "a-long-secret-that-must-never-be-shown"


def config_with(tmp_path: Path, http: str) -> Path:
    path = tmp_path / "config.yaml"
    rules = "rules:\n  - name: clips\n    inbox: ./in\n    outbox: ./out\n"
    path.write_text(f"state_dir: ./state\n{textwrap.dedent(http)}{rules}", encoding="utf-8")
    return path


def test_the_page_is_off_unless_configured(tmp_path: Path) -> None:
    assert load_config(config_with(tmp_path, "")).http is None
    config = load_config(config_with(tmp_path, "http: {}\n"))
    assert config.http is not None and config.http.listen == "127.0.0.1:8765"


def test_check_refuses_listening_beyond_loopback_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_with(tmp_path, "http:\n  listen: 0.0.0.0:8765\n")
    assert cli.main(["check", "--config", str(path)]) == 78  # as every invalid config
    error = capsys.readouterr().err
    assert f"{path}:3: http.listen:" in error  # the file and the line
    assert "set http.token" in error and "127.0.0.1:8765" in error  # what to do


def test_a_token_or_a_password_file_lets_it_listen_anywhere(tmp_path: Path) -> None:
    with_token = config_with(tmp_path, f"http:\n  listen: 0.0.0.0:8765\n  token: {SECRET}\n")
    http = load_config(with_token).http
    assert http is not None and http.token is not None
    assert http.token.get_secret_value() == SECRET and SECRET not in repr(http)
    (tmp_path / "password").write_text("hunter2-hunter2\n")
    with_password = config_with(
        tmp_path, "http:\n  listen: '[::]:8765'\n  password_file: password\n"
    )
    http = load_config(with_password).http
    assert http is not None and http.password_file == tmp_path / "password"


def test_a_wrong_token_is_reported_without_showing_it(tmp_path: Path) -> None:
    path = config_with(tmp_path, "http:\n  token: short-secret\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert problem.path == "http.token" and problem.line == 3
    assert "16 characters" in problem.message and "short-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("8765", "expected HOST:PORT"),
        ("localhost:99999", "expected HOST:PORT"),
    ],
)
def test_a_listen_address_must_be_host_and_port(tmp_path: Path, listen: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(config_with(tmp_path, f"http:\n  listen: '{listen}'\n"))


def test_run_http_refuses_an_open_address_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_with(tmp_path, "")
    assert cli.main(["run", "--config", str(path), "--http", "0.0.0.0:8765"]) == 78
    assert "set http.token" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("nas.local", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_rule_paused_by_an_operator_is_kept_in_the_ledger(tmp_path: Path) -> None:
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        assert pause_rule(ledger, "clips", True, 100.0) is True
        assert pause_rule(ledger, "clips", True, 200.0) is False  # keeps when it began
        assert paused_rules(ledger) == {"clips": 100.0}
        assert not ledger.control().paused  # the other rules go on
        before = ledger.control().scan_requested
        assert pause_rule(ledger, "clips", False, 300.0) is True
        assert paused_rules(ledger) == {} and ledger.control().scan_requested > before


def test_pauses_hold_a_paused_rule_only(tmp_path: Path) -> None:
    pauses = Pauses()
    with capture_logs() as logs:
        pauses.rules_by_operator(["clips"])
    assert [entry["event"] for entry in logs] == ["rule.paused"]
    assert pauses.holds("clips", tmp_path) and not pauses.holds("reels", tmp_path)
    assert not pauses.held  # all work is not held
    assert "paused rules: clips" in pauses.describe()
    pauses.rules_by_operator([])
    assert not pauses.holds("clips", tmp_path)


def test_cli_pauses_and_resumes_one_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_with(tmp_path, "")
    (tmp_path / "state").mkdir()
    assert cli.main(["pause", "--rule", "clips", "--config", str(path)]) == 0
    assert "paused rule clips" in capsys.readouterr().out
    with Ledger.open_existing(tmp_path / "state") as ledger:
        assert list(paused_rules(ledger)) == ["clips"]
    assert cli.main(["status", "--config", str(path)]) == 0
    assert "rule clips paused since" in capsys.readouterr().out
    assert cli.main(["pause", "--rule", "nope", "--config", str(path)]) == 2
    assert "no rule 'nope' (rules: clips)" in capsys.readouterr().err
    assert cli.main(["resume", "--rule", "clips", "--config", str(path)]) == 0
    assert "resumed rule clips" in capsys.readouterr().out
    with Ledger.open_existing(tmp_path / "state") as ledger:
        assert paused_rules(ledger) == {}
