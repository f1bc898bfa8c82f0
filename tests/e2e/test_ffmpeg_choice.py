"""The daemon's FFmpeg, chosen at start by what each candidate can do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, rule, write_config
from tests.fakes.ffmpeg import DRAWTEXT_5_1, fake_ffmpeg

pytestmark = pytest.mark.e2e

LACKING_TEXTFILE = DRAWTEXT_5_1.replace("   textfile ", "   textfilx ")


def test_a_pinned_ffmpeg_lacking_an_option_stops_the_daemon_before_any_job(
    tmp_path: Path,
) -> None:
    pinned = fake_ffmpeg(tmp_path / "bin", version="5.1.9", drawtext_help=LACKING_TEXTFILE)
    config = write_config(tmp_path, [rule(tmp_path)])
    inbox = tmp_path / "inbox" / "clips"
    inbox.mkdir(parents=True)
    (inbox / "waiting.mp4").write_bytes(b"not looked at")

    result = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NEMOWATCH_FFMPEG": str(pinned)},
    )

    assert result.returncode == 1
    assert f"the ffmpeg chosen by $NEMOWATCH_FFMPEG ({pinned}) cannot be used" in result.stderr
    assert "lacks drawtext:textfile" in result.stderr
    assert "nemowatch doctor" in result.stderr
    assert sorted(path.name for path in inbox.iterdir()) == ["waiting.mp4"]  # untouched
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()  # no job was started


def test_a_system_ffmpeg_lacking_an_option_is_skipped_with_the_reason_logged_once(
    tmp_path: Path,
) -> None:
    system = fake_ffmpeg(tmp_path / "bin", version="5.1.9", drawtext_help=LACKING_TEXTFILE)
    config = write_config(tmp_path, [rule(tmp_path)])
    path = f"{system.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    daemon = Daemon(
        config, tmp_path / "daemon.log", env={"PATH": path, "NEMOWATCH_FFMPEG": ""}
    ).start()
    daemon.stop()

    (skipped,) = daemon.saw("ffmpeg.skipped")
    assert skipped["path"] == str(system)
    assert skipped["version"] == "5.1.9"
    assert skipped["missing"] == ["drawtext:textfile"]
    (chosen,) = daemon.saw("ffmpeg.chosen")
    assert chosen["origin"] == "bundled"
    assert chosen["path"] != str(system)
