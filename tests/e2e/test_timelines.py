"""`nemowatch explain FILE --timeline out.otio`: the edit for an editor, without a render."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import opentimelineio as otio
import pytest

from nemowatch.cli import main
from nemowatch.pipeline import TEST_CRASH_TIMELINES
from tests.e2e.harness import Daemon, drop, files, ledger_jobs, rule, wait_for, write_config
from tests.e2e.test_picture import explain

pytestmark = pytest.mark.e2e


def test_explain_writes_the_timeline_of_the_plan_linking_the_file(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, instructions=["cut out silences"])])
    timeline = tmp_path / "cut.otio"

    result = explain(str(clips.three_pauses), "--config", str(config), "--timeline", str(timeline))

    assert result.returncode == 0, result.stderr
    assert f"timeline: {timeline}" in result.stdout
    read = otio.adapters.read_from_file(str(timeline))
    found = list(read.video_tracks()[0].find_clips())
    assert len(found) == 4  # three pauses cut
    assert {clip.media_reference.target_url for clip in found} == {clips.three_pauses.as_uri()}
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("no such folder/cut.otio", "cannot write the timeline"),
        ("cut.mov", "cannot tell the timeline's format from its extension"),
    ],
)
def test_a_timeline_that_cannot_be_written_is_named_in_the_error(
    tmp_path: Path, clips, name: str, said: str
) -> None:
    config = write_config(tmp_path, [rule(tmp_path, instructions=["cut out silences"])])
    timeline = tmp_path / name

    result = explain(str(clips.three_pauses), "--config", str(config), "--timeline", str(timeline))

    assert result.returncode != 0
    assert str(timeline) in result.stderr and said in result.stderr
    assert "hint:" in result.stderr
    assert not timeline.exists()


@pytest.mark.parametrize(
    ("killed_after", "left"),
    [(0, []), (1, ["talk.otio"])],
    ids=["between the video and its timelines", "between two timelines"],
)
def test_a_daemon_killed_in_the_timelines_window_publishes_only_the_missing_ones_at_restart(
    tmp_path: Path, clips, capsys: pytest.CaptureFixture[str], killed_after: int, left: list[str]
) -> None:
    export = {"format": "mp4", "quality": "low", "timelines": ["otio", "edl"]}
    config = write_config(
        tmp_path,
        [rule(tmp_path, instructions=["cut out silences"], outputs="{stem}.mp4", export=export)],
    )
    inbox, outbox, state = (
        tmp_path / "inbox" / "clips",
        tmp_path / "outbox" / "clips",
        tmp_path / "state",
    )
    # a real SIGKILL, from inside the daemon, once `killed_after` timelines are recorded
    hook = {TEST_CRASH_TIMELINES: f"talk.mp4:{killed_after}"}
    killed = Daemon(config, tmp_path / "killed.log", env=hook).start()
    drop(inbox / "talk.mp4", clips.three_pauses)
    wait_for(lambda: not killed.running, what="the daemon killed in the timelines' window")
    assert killed.process is not None and killed.process.returncode == -signal.SIGKILL
    assert [path.name for path in files(outbox)] == ["talk.mp4", *left]  # nothing hidden
    (job,) = ledger_jobs(state)
    assert job["state"] == "done" and job["disposed"] is None  # archived, not yet recorded
    (archived,) = files(inbox / "done", "talk.mp4")
    before = {path.name: path.stat() for path in files(outbox)}

    restarted = Daemon(config, tmp_path / "restarted.log").start()
    try:
        wait_for(lambda: all(job["disposed"] for job in ledger_jobs(state)),
                 what="the job disposed again")  # fmt: skip
    finally:
        assert restarted.stop() == 0

    assert [path.name for path in files(outbox)] == ["talk.edl", "talk.mp4", "talk.otio"]
    for name, stat in before.items():  # neither the video nor a timeline written again
        now = (outbox / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), name
    (job,) = ledger_jobs(state)
    assert [name for name, _ in json.loads(job["published"])] == [
        "", "timeline otio", "timeline edl",
    ]  # fmt: skip
    assert job["disposed"] == str(archived)
    assert not restarted.saw("outbox.already_published")  # the video was never re-made
    assert main(["jobs", "--config", str(config)]) == 0  # lists the timelines as outputs
    listed = capsys.readouterr().out
    assert f"{outbox / 'talk.otio'}, {outbox / 'talk.edl'}" in listed
    edl = (outbox / "talk.edl").read_text(encoding="utf-8")
    assert edl.count("talk.mp4") >= 4  # the four kept segments, from the archived source
