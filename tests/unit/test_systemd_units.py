"""The systemd units keep their contract with the daemon, and systemd accepts them."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nemowatch.config import Config, load_config
from nemowatch.errors import EX_IOERR, RESTART_CANNOT_FIX

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_UNIT = ROOT / "systemd" / "nemowatch.service"
USER_UNIT = ROOT / "systemd" / "user" / "nemowatch.service"
UNITS = [pytest.param(SYSTEM_UNIT, id="system"), pytest.param(USER_UNIT, id="user")]

# Options that need a mount namespace: in a user unit they need a user namespace too and
# behave differently across systemd versions (see the comment in the user unit).
MOUNT_NAMESPACE_OPTIONS = (
    "ProtectSystem",
    "ProtectHome",
    "ReadWritePaths",
    "PrivateTmp",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectControlGroups",
)


@dataclass(frozen=True)
class Unit:
    """A unit file as systemd reads it: sections of assignments, repeated keys kept in order."""

    sections: dict[str, list[tuple[str, str]]]

    def all(self, section: str, key: str) -> list[str]:
        """Every value assigned to `key`, in order (list settings accumulate)."""
        return [value for name, value in self.sections.get(section, []) if name == key]

    def get(self, section: str, key: str) -> str | None:
        """The value in force: the last assignment."""
        values = self.all(section, key)
        return values[-1] if values else None

    def words(self, section: str, key: str) -> list[str]:
        """A list setting's items; an empty assignment resets the list, as in systemd."""
        items: list[str] = []
        for value in self.all(section, key):
            items = items + value.split() if value else []
        return items


def parse_unit(text: str) -> Unit:
    """Sections, `Key=value` lines, `#`/`;` comments and backslash continuations."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, equals, value = line.partition("=")
        assert equals and current is not None, f"not an assignment inside a section: {raw!r}"
        current.append((key.strip(), value.strip()))
    return Unit(sections)


def load(path: Path) -> Unit:
    return parse_unit(path.read_text(encoding="utf-8"))


def seconds(value: str | None) -> float:
    """A plain-seconds time span ("90"); the units write their times that way."""
    assert value is not None and value.isdigit(), f"expected whole seconds, got {value!r}"
    return float(value)


def test_the_parser_keeps_repeated_keys_and_resets_lists_on_empty_values() -> None:
    unit = parse_unit(
        "[Service]\n# comment\nReadWritePaths=/a\nReadWritePaths=/b \\\n  /c\n"
        "CapabilityBoundingSet=CAP_CHOWN\nCapabilityBoundingSet=\n"
    )
    assert unit.words("Service", "ReadWritePaths") == ["/a", "/b", "/c"]
    assert unit.words("Service", "CapabilityBoundingSet") == []


# ---- the contract with the daemon -------------------------------------------------------------


@pytest.mark.parametrize("path", UNITS)
def test_the_daemon_tells_systemd_when_it_is_ready(path: Path) -> None:
    assert load(path).get("Service", "Type") == "notify"


@pytest.mark.parametrize("path", UNITS)
def test_the_unit_runs_the_daemon_with_a_config_and_json_logs(path: Path) -> None:
    command = shlex.split(load(path).get("Service", "ExecStart") or "")
    assert Path(command[0]).name == "nemowatch"
    assert command[1] == "run"
    assert command[command.index("--config") + 1].endswith("nemowatch/config.yaml")
    assert command[command.index("--log-format") + 1] == "json"


def test_the_system_unit_reads_the_config_from_etc() -> None:
    command = shlex.split(load(SYSTEM_UNIT).get("Service", "ExecStart") or "")
    assert command[0] == "/usr/local/bin/nemowatch"
    assert command[command.index("--config") + 1] == "/etc/nemowatch/config.yaml"


def test_the_user_unit_runs_from_the_home_folder() -> None:
    command = shlex.split(load(USER_UNIT).get("Service", "ExecStart") or "")
    assert command[0] == "%h/.local/share/nemowatch/venv/bin/nemowatch"
    assert command[command.index("--config") + 1] == "%h/.config/nemowatch/config.yaml"


@pytest.mark.parametrize("path", UNITS)
def test_reload_sends_sighup_to_the_daemon(path: Path) -> None:
    assert load(path).get("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


@pytest.mark.parametrize("path", UNITS)
def test_a_hung_daemon_is_restarted_by_the_watchdog(path: Path) -> None:
    unit = load(path)
    assert seconds(unit.get("Service", "WatchdogSec")) > 0
    assert unit.get("Service", "Restart") == "on-failure"  # a watchdog kill is a failure


@pytest.mark.parametrize("path", UNITS)
def test_an_invalid_config_does_not_restart_in_a_loop(path: Path) -> None:
    assert "78" in load(path).words("Service", "RestartPreventExitStatus")


@pytest.mark.parametrize("path", UNITS)
def test_no_fault_a_restart_cannot_fix_restarts_in_a_loop(path: Path) -> None:
    prevented = load(path).words("Service", "RestartPreventExitStatus")
    assert sorted(int(status) for status in prevented) == sorted(RESTART_CANNOT_FIX)
    assert str(EX_IOERR) not in prevented  # a full disk may be freed: restarting helps then


def test_the_exit_status_table_lists_every_status_with_its_restart() -> None:
    text = (ROOT / "docs" / "systemd.md").read_text(encoding="utf-8")
    rows = {
        int(cells[1]): cells[2:]
        for line in text.splitlines()
        if (cells := [cell.strip() for cell in line.split("|")])[0] == ""
        and len(cells) > 3
        and cells[1].isdigit()
    }
    for status in (*RESTART_CANNOT_FIX, EX_IOERR):
        assert status in rows, f"docs/systemd.md has no row for exit status {status}"
    for status, cells in rows.items():
        restarted = "no" not in cells[-2].lower().split()
        assert restarted == (status != 0 and status not in RESTART_CANNOT_FIX), (status, cells)


@pytest.mark.parametrize("path", UNITS)
def test_systemd_waits_longer_than_the_default_grace_period_before_killing(path: Path) -> None:
    default_grace = Config.model_fields["grace_period"].default
    assert isinstance(default_grace, float)
    assert seconds(load(path).get("Service", "TimeoutStopSec")) > default_grace


@pytest.mark.parametrize("path", UNITS)
def test_sigterm_goes_to_the_daemon_not_to_its_ffmpeg_children(path: Path) -> None:
    # with the default (control-group), FFmpeg would be killed at once, grace period or not
    assert load(path).get("Service", "KillMode") == "mixed"


@pytest.mark.parametrize("path", UNITS)
def test_the_state_directory_is_managed_by_systemd(path: Path) -> None:
    assert load(path).get("Service", "StateDirectory") == "nemowatch"


def test_the_user_state_directory_is_where_nemowatch_looks_by_default(tmp_path: Path) -> None:
    # StateDirectory= in a user unit is $XDG_STATE_HOME/NAME, i.e. ~/.local/state/NAME
    name = load(USER_UNIT).get("Service", "StateDirectory")
    config = tmp_path / "config.yaml"
    config.write_text(
        "rules:\n  - {name: reels, inbox: ./in, outbox: ./out, instructions: [cut out silences]}\n",
        encoding="utf-8",
    )
    loaded = load_config(config, environ={"HOME": str(tmp_path)})
    assert loaded.state_dir == tmp_path / ".local" / "state" / str(name)


# ---- the system unit: who it runs as, and its sandbox ---------------------------------------


def test_the_system_unit_runs_as_a_static_user_with_a_shared_group() -> None:
    unit = load(SYSTEM_UNIT)
    assert unit.get("Service", "User") == "nemowatch"
    assert unit.get("Service", "Group") == "nemowatch"
    assert unit.get("Service", "DynamicUser") in (None, "no")
    assert unit.get("Service", "UMask") == "0002"  # group-writable outputs


def test_the_system_unit_is_sandboxed() -> None:
    unit = load(SYSTEM_UNIT)
    assert unit.get("Service", "ProtectSystem") == "strict"
    assert unit.get("Service", "ProtectHome") in ("yes", "read-only", "tmpfs")
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID"):
        assert unit.get("Service", key) == "yes", key
    assert unit.words("Service", "ReadWritePaths"), "the inboxes and outboxes must be listed"
    assert unit.words("Service", "CapabilityBoundingSet") == []
    assert set(unit.words("Service", "RestrictAddressFamilies")) == {
        "AF_UNIX",  # sd_notify and the journal
        "AF_INET",  # the NemoVideo API
        "AF_INET6",
    }


def test_the_system_unit_starts_after_the_network_at_boot() -> None:
    unit = load(SYSTEM_UNIT)
    assert "network-online.target" in unit.words("Unit", "After")
    assert "network-online.target" in unit.words("Unit", "Wants")
    assert unit.words("Install", "WantedBy") == ["multi-user.target"]


def test_the_user_unit_starts_with_the_user_manager() -> None:
    assert load(USER_UNIT).words("Install", "WantedBy") == ["default.target"]


def test_the_user_unit_uses_no_option_that_needs_a_user_namespace() -> None:
    unit = load(USER_UNIT)
    assert [key for key in MOUNT_NAMESPACE_OPTIONS if unit.all("Service", key)] == []
    assert unit.get("Service", "User") is None  # a user manager cannot switch users


@pytest.mark.parametrize("path", UNITS)
def test_every_directive_is_explained_by_a_comment_above_it(path: Path) -> None:
    unexplained = []
    explained = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("["):
            explained = False  # a blank line or a section ends a commented paragraph
        elif stripped.startswith("#"):
            explained = True
        elif not explained:
            unexplained.append(f"{path.name}:{number}: {stripped}")
    assert unexplained == []


# ---- systemd itself --------------------------------------------------------------------------


def runnable_copy(path: Path, folder: Path) -> Path:
    """The unit, with ExecStart's binary pointed at this environment's `nemowatch` script,
    so that verify checks a command that exists (the installed path does not, here)."""
    script = Path(sys.executable).parent / "nemowatch"
    assert script.is_file(), f"{script} missing: install the package (pip install -e .)"
    text = path.read_text(encoding="utf-8")
    binary = shlex.split(load(path).get("Service", "ExecStart") or "")[0]
    assert text.count(f"ExecStart={binary} ") == 1
    copy = folder / "nemowatch.service"  # verify takes the unit's name from the file's
    copy.write_text(text.replace(f"ExecStart={binary} ", f"ExecStart={script} "), "utf-8")
    return copy


def verify(unit: Path, *, user: bool, folder: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units cannot be verified here")
    environ = dict(os.environ)
    if user:
        # `--user` starts a user-manager instance in memory; it needs $XDG_RUNTIME_DIR,
        # which a container or CI job without a login session lacks: give it a private one
        runtime = folder / "runtime"
        runtime.mkdir(mode=0o700)
        environ["XDG_RUNTIME_DIR"] = str(runtime)
    command = [analyze, *(["--user"] if user else []), "verify", "--man=no", str(unit)]
    return subprocess.run(
        command, capture_output=True, text=True, env=environ, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("path", "user"),
    [pytest.param(SYSTEM_UNIT, False, id="system"), pytest.param(USER_UNIT, True, id="user")],
)
def test_systemd_analyze_verify_accepts_the_unit(path: Path, user: bool, tmp_path: Path) -> None:
    result = verify(runnable_copy(path, tmp_path), user=user, folder=tmp_path)
    # no warning at all: verify reports unknown keys and bad values on stderr, exit 0
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_verify_reports_a_misspelt_directive(tmp_path: Path) -> None:
    # the check above is only worth something if verify speaks up in this environment
    unit = runnable_copy(SYSTEM_UNIT, tmp_path)
    unit.write_text(
        unit.read_text(encoding="utf-8").replace("WatchdogSec=", "WatchDogSec="), "utf-8"
    )
    result = verify(unit, user=False, folder=tmp_path)
    assert "WatchDogSec" in result.stderr
