"""What a person sees while a file is being edited: `process`'s live line on a terminal,
and nothing of it on a pipe."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, drop, nemowatch, rule, write_config
from tests.media import Clips

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# 10 s of the silences clip read at 2.5 times real time (`paced_ffmpeg`): a render of 4 s that
# costs what a tiny clip's render costs
PACE = 2.5


def _config(tmp_path: Path, clips: Clips) -> tuple[Path, Path]:
    config = write_config(tmp_path, [rule(tmp_path)])
    source = tmp_path / "talk.mp4"
    shutil.copy(clips.silences, source)
    return config, source


def _run_on_a_terminal(arguments: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Run `arguments` with a pseudo-terminal of 120 columns as stdout and stderr."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    environment.pop("NO_COLOR", None)
    child = subprocess.Popen(
        arguments, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=environment
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif child.poll() is not None:
            break
    os.close(leader)
    return child.wait(timeout=10), output.decode("utf-8", errors="replace")


def test_process_on_a_terminal_shows_the_render_percent_rising(
    tmp_path: Path, clips: Clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    paced_ffmpeg(PACE)
    config, source = _config(tmp_path, clips)

    status, screen = _run_on_a_terminal(
        [sys.executable, "-m", "nemowatch.cli", "process", str(source), "--config", str(config)]
    )

    assert status == 0, screen
    frames = [ANSI.sub("", frame) for frame in re.split(r"[\r\n]", screen)]
    rendering = [
        int(match.group(1))
        for frame in frames
        if "rendering" in frame and (match := re.search(r"(\d+)%", frame))
    ]
    assert rendering == sorted(rendering), rendering  # never goes back
    assert len(set(rendering)) >= 3, frames
    assert any("talk.mp4: analysing" in frame for frame in frames)
    assert str(tmp_path / "outbox" / "clips" / "talk.mp4") in screen


def test_process_on_a_pipe_prints_no_progress_line(tmp_path: Path, clips: Clips) -> None:
    # a quick render is enough: nothing of a live line may reach a pipe, however long
    config = write_config(tmp_path, [rule(tmp_path)])
    source = tmp_path / "talk.mp4"
    shutil.copy(clips.silences, source)

    result = nemowatch(config, "process", str(source))

    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\r" not in stream
    assert result.stdout.strip() == str(tmp_path / "outbox" / "clips" / "talk.mp4")
    # the log says how far it got, as JSON lines (not a terminal)
    assert '"event": "job.progress"' in result.stderr


def test_status_shows_a_running_jobs_stage_and_a_rising_percent(
    tmp_path: Path, clips: Clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    # a render of 8 s: the ledger's progress is written about once a second, and each look
    # below is a `nemowatch` process, slow to start on a busy machine (at 4 s, CI's load
    # once left room for two looks, one of them before the first percent)
    paced_ffmpeg(1.25)
    config = write_config(tmp_path, [rule(tmp_path)])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop(tmp_path / "inbox" / "clips" / "talk.mp4", clips.silences)
        seen: list[tuple[str | None, float | None]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not daemon.saw("job.done"):
            result = nemowatch(config, "status", "--json")
            assert result.returncode == 0, result.stderr
            running = [job for job in json.loads(result.stdout)["recent"] if job["stage"]]
            seen += [(job["stage"], job["percent"]) for job in running]
            # each look is a `nemowatch` process (0.35 s of CPU); the ledger's percent
            # changes about once a second: a look a second sees most values
            time.sleep(1.0)
    finally:
        daemon.stop()

    assert daemon.saw("job.done"), daemon.output()
    percents = [percent for stage, percent in seen if stage == "rendering" and percent]
    assert percents == sorted(percents), seen
    assert len(set(percents)) >= 2, seen
    # done: the stage is cleared
    final = nemowatch(config, "status", "--json")
    assert [job["stage"] for job in json.loads(final.stdout)["recent"]] == [None]
