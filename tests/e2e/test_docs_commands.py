"""Every shell command in the README and docs runs as written, with the installed `nemowatch`.

The commands run in document order (README first, then docs/ by name), one line at a time
through bash, in a world made to be what the docs assume:

- the current folder is a checkout: a copy of `config.example.yaml`, the virtual
  environment as `.venv/` (a link to the one running these tests), and a video of the
  reader's own as `clip.mp4` (a tiny generated clip);
- `HOME` is an empty temporary folder (so `~/nemowatch` is made by the README's
  `nemowatch init ~/nemowatch`), with no `NEMOWATCH_CONFIG` or XDG variables set;
- `nemowatch` on the PATH is the entry point installed next to `sys.executable`.

Commands that cannot run here are in SKIPPED, each with its reason, and the test fails if
an entry there no longer matches any command (so the list cannot rot). A new command in
the docs either runs, or is added to SKIPPED on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
BIN = Path(sys.executable).parent  # where pip put the `nemowatch` entry point

# A command is skipped when it starts with one of these; the reason says why it cannot run
# in a test: offline, in seconds, without root.
SKIPPED = {
    "python3 -m venv": "makes a virtual environment and pip-installs into it: minutes, and "
    "the package index (the README's test command is what .ci/run runs)",
    "mkdir -p ~/.config/nemowatch && $EDITOR": "opens an editor",
    "~/.local/share/nemowatch/venv/bin/": "the service's own virtual environment, made by "
    "the skipped `python3 -m venv` line above it (and pip-installed from a path to fill in)",
    "mkdir -p ~/.config/systemd/user": "installs a systemd unit",
    "cp systemd/user/nemowatch.service": "installs a systemd unit",
    "systemctl ": "needs systemd",
    "loginctl ": "needs systemd",
    "journalctl ": "needs systemd",
    "sudo ": "needs root and changes the system",
    ".venv/bin/python bench/": "a benchmark: minutes of work",
    "nemowatch ledger migrate --to postgresql://": "needs the reader's PostgreSQL server "
    "(tests/integration/test_ledger_backends.py migrates into a real one)",
}


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str

    def skipped_by(self) -> str | None:
        return next((prefix for prefix in SKIPPED if self.text.startswith(prefix)), None)


def shell_commands() -> list[Command]:
    """Each command line of each ```sh block (a line ending in "\\" goes on with the next)."""
    commands = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for block in SHELL_BLOCK.finditer(text):
            first_line = text[: block.start(1)].count("\n") + 1
            pending, start = "", 0
            for offset, line in enumerate(block.group(1).splitlines()):
                if not pending:
                    start = first_line + offset
                if line.endswith("\\"):
                    pending += line[:-1] + " "
                    continue
                command, pending = (pending + line).strip(), ""
                if command and not command.startswith("#"):
                    commands.append(Command(path.name, start, command))
    return commands


COMMANDS = shell_commands()


@pytest.fixture
def world(tmp_path: Path, clips) -> tuple[Path, dict[str, str]]:
    """The reader's checkout (the current folder) and environment, as the docs assume."""
    checkout, home = tmp_path / "checkout", tmp_path / "home"
    checkout.mkdir()
    home.mkdir()
    shutil.copy(ROOT / "config.example.yaml", checkout)
    (checkout / ".venv").symlink_to(BIN.parent, target_is_directory=True)
    shutil.copy(clips.basic, checkout / "clip.mp4")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != "NEMOWATCH_CONFIG" and not name.startswith("XDG_")
    }
    environment["HOME"] = str(home)
    environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
    return checkout, environment


def test_the_installed_entry_point_is_next_to_the_python_running_the_tests() -> None:
    assert (BIN / "nemowatch").is_file()


def test_every_skip_entry_still_matches_a_command() -> None:
    used = {command.skipped_by() for command in COMMANDS}
    assert set(SKIPPED) - used == set()


def test_the_docs_commands_that_run_include_the_ones_newcomers_need() -> None:
    run = " ".join(command.text for command in COMMANDS if command.skipped_by() is None)
    for needed in ("nemowatch init", "nemowatch check", "nemowatch explain", "--version"):
        assert needed in run


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    readme = [command.text for command in COMMANDS if command.document == "README.md"]
    assert ci_command in readme


def test_every_docs_command_runs_as_written(world: tuple[Path, dict[str, str]]) -> None:
    checkout, environment = world
    ran = 0
    for command in COMMANDS:
        if command.skipped_by() is not None:
            continue
        result = subprocess.run(
            ["bash", "-c", command.text],
            cwd=checkout,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        where = f"{command.document}:{command.line}: {command.text}"
        assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr}"
        ran += 1
    assert ran >= 6


def test_the_log_event_editing_md_names_for_ignored_phrases_is_the_one_logged(
    tmp_path: Path, clips
) -> None:
    text = (ROOT / "docs" / "editing.md").read_text(encoding="utf-8")
    found = re.search(
        r"not understand are listed by `nemowatch check`, logged as\s+`([\w.]+)`", text
    )
    assert found, "docs/editing.md no longer says how ignored phrases are logged"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nrules:\n  - name: clips\n"
        f"    inbox: {tmp_path / 'inbox'}\n    outbox: {tmp_path / 'outbox'}\n"
        "    instructions: [make it sparkle]\n"
        "    allow_unknown_instructions: true\n"
        "    export: {resolution: 240p, quality: low}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(BIN / "nemowatch"), "process", str(clips.basic), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    ignored = [event for event in events if "make it sparkle" in event.get("text", "")]
    assert [event["event"] for event in ignored] == [found[1]]
