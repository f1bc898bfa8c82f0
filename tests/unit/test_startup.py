"""What a nemowatch process imports to start: only what it uses.

Every command and daemon pays its imports at each start (a command took 0.45-0.55 s of CPU,
most of it importing), and the test suite starts a few hundred of them. These tests pin the
imports that were cut (issue 12): rich, pygments and click came in through structlog and
httpx for features nemowatch does not use (nemowatch/imports.py), PyAV and the whole local
engine through modules that need them only to read files or build timelines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# Not needed to start: rich draws only `process`'s progress line on a terminal; httpx talks
# to NemoVideo and webhooks; the others are the web page, metrics, notifications,
# timelines and captions, each imported by what uses it; psycopg only for a fleet's ledger.
UNUSED_AT_START = (
    "rich",
    "pygments",
    "click",
    "httpx",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "apprise",
    "opentimelineio",
    "faster_whisper",
    "psycopg",
    "psycopg_pool",
)
# ... and what a command that reads no media needs neither.
MEDIA = ("av", "numpy", "nemowatch.engines.local.engine")


def imported_by(code: str, *arguments: str) -> list[str]:
    """Run `code` in a fresh Python; the modules of UNUSED_AT_START and MEDIA it imported."""
    watched = UNUSED_AT_START + MEDIA
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps([name for name in {watched!r} if name in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    rule = {"name": "clips", "inbox": str(tmp_path / "in"), "outbox": str(tmp_path / "out")}
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "rules": [rule]}))
    (tmp_path / "state").mkdir()
    return path


@pytest.mark.parametrize("command", ["status", "check"])
def test_a_command_that_reads_no_media_imports_neither_media_nor_unused_libraries(
    config: Path, command: str
) -> None:
    code = "from nemowatch.cli import main\nmain([sys.argv[1], '--config', sys.argv[2]])"
    assert imported_by(code, command, str(config)) == []


def test_what_a_local_daemon_imports_to_start_leaves_out_the_unused_libraries() -> None:
    # the modules `nemowatch run` imports for a local-engine daemon without http, metrics
    # or webhooks (cli.cmd_run); PyAV and the engine it needs, the rest it does not
    code = (
        "import nemowatch.cli, nemowatch.alerts, nemowatch.daemon\n"
        "from nemowatch.config import Config\n"
        "from nemowatch.engines.factory import make_engine\n"
        "make_engine(Config())"
    )
    assert imported_by(code) == ["av", "nemowatch.engines.local.engine"]


def test_a_nemo_daemon_starts_without_the_local_engine_or_pyav() -> None:
    # the timelines (which use the local engine's plans) are imported by a job that asks
    # for one, not by the pipeline at start
    code = (
        "import nemowatch.cli, nemowatch.alerts, nemowatch.daemon\n"
        "from nemowatch.config import Config\n"
        "from nemowatch.engines.factory import make_engine\n"
        "make_engine(Config(engine='nemo'))"
    )
    assert imported_by(code) == ["httpx"]  # the one it talks to NemoVideo with


def test_the_progress_line_imports_rich_when_it_draws_on_a_terminal() -> None:
    # structlog was imported without rich first (nemowatch.logs); rich still imports after
    code = (
        "import io\n"
        "from nemowatch import logs\n"
        "from nemowatch.terminal import ProgressLine\n"
        "class Terminal(io.StringIO):\n"
        "    def isatty(self): return True\n"
        "assert 'rich' not in sys.modules\n"
        "with ProgressLine(Terminal(), 'talk.mp4') as line:\n"
        "    line('render', 40.0)\n"
        "assert line.live\n"
    )
    assert "rich" in imported_by(code)


def test_the_nemo_engine_imports_httpx_without_its_command_line() -> None:
    code = "import nemowatch.cli, nemowatch.engines.nemo"
    assert imported_by(code) == ["httpx"]
