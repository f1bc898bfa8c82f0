"""Several outputs per rule, with the daemon as a subprocess: a SIGKILL between the two
publishes costs nothing, and nothing is published twice."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from nemowatch.pipeline import TEST_CRASH_PUBLISHED
from tests.e2e.harness import (
    Daemon,
    drop,
    files,
    ledger_jobs,
    nemowatch,
    rule,
    wait_for,
    write_config,
)
from tests.media import Clips

pytestmark = pytest.mark.e2e

OUTPUTS = [
    {"name": "youtube", "aspect": "16:9", "resolution": "240p"},
    {"name": "shorts", "aspect": "9:16", "resolution": "240p"},
]


def test_a_sigkill_between_two_publishes_leaves_exactly_two_outputs_after_restart(
    tmp_path: Path, clips: Clips
) -> None:
    config = write_config(tmp_path, [rule(tmp_path, outputs=OUTPUTS)])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    # killed right after the first output got its name, before the ledger heard of it
    first = Daemon(config, tmp_path / "daemon-1.log", env={TEST_CRASH_PUBLISHED: "clip.mp4"})
    first.start()
    drop(inbox / "clip.mp4", clips.basic)
    wait_for(lambda: not first.running, what="the daemon killed after the first publish")
    assert first.process is not None and first.process.returncode == -signal.SIGKILL
    assert [path.name for path in files(outbox)] == [
        ".clip-youtube.mp4." + ledger_jobs(tmp_path / "state")[0]["id"] + ".nemowatch-part",
        "clip-youtube.mp4",
    ]  # published, and its second name still there: how the restart knows it is its own

    second = Daemon(config, tmp_path / "daemon-2.log").start()
    try:
        wait_for(lambda: files(inbox / "done", "clip.mp4"), what="the source archived")
    finally:
        assert second.stop() == 0
    assert [path.name for path in files(outbox)] == ["clip-shorts.mp4", "clip-youtube.mp4"]
    assert second.saw("outbox.already_published")  # recognised, not published as "(2)"
    (job,) = ledger_jobs(tmp_path / "state")
    assert job["state"] == "done" and job["crashes"] == 1
    listed = json.loads(nemowatch(config, "jobs", "--json").stdout)
    assert listed[0]["outputs"] == {
        "youtube": str(outbox / "clip-youtube.mp4"),
        "shorts": str(outbox / "clip-shorts.mp4"),
    }
    line = nemowatch(config, "jobs").stdout
    assert "clip-youtube.mp4, " in line and "clip-shorts.mp4" in line


def test_explain_shows_each_output_made_from_the_one_plan(tmp_path: Path, clips: Clips) -> None:
    outputs = [*OUTPUTS, {"name": "web", "file": "web/{stem}.webm", "format": "webm"}]
    config = write_config(tmp_path, [rule(tmp_path, outputs=outputs)])

    result = nemowatch(config, "explain", str(clips.basic))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Outputs: 3.00 s each, from this plan (nothing rendered)" in lines
    assert "  youtube: 426x240, mp4 (16:9, blur) -> {stem}-youtube.mp4" in lines
    assert "  shorts: 240x426, mp4 (9:16, blur) -> {stem}-shorts.mp4" in lines
    assert "  web: 160x120, webm (the source aspect, blur) -> web/{stem}.webm" in lines
    assert not files(tmp_path / "outbox")
