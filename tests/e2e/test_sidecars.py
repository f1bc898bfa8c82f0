"""Sidecars with the daemon running: a sidecar dropped a second after its video is still
used (the title it asks for is planned and published); an invalid sidecar sends its video
and itself to failed/ with the file and line of the mistake; `process` reads a sidecar
beside the file it is given."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.harness import Daemon, drop, files, nemowatch, rule, wait_for, write_config


def test_a_sidecar_dropped_a_second_after_its_video_is_used(tmp_path: Path, clips) -> None:
    # settle_seconds 2: the window in which a sidecar dropped after its video still counts
    config = write_config(tmp_path, [rule(tmp_path, settle_seconds=2.0, report=True)])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop(inbox / "clip.mp4", clips.basic)  # renamed in: closed, complete at once
        time.sleep(1.0)
        drop(inbox / "clip.txt", b"add the title 'Hello'\n")
        drop(inbox / "bad.mp4", clips.basic)
        drop(inbox / "bad.txt", b"add the title 'Hello'\nmake it verticle\n")
        [output] = wait_for(lambda: files(outbox, "*.mp4"), timeout=120, what="the output")
        assert output.name == "clip.mp4"
        # the report is published just after the video: wait for it too
        beside = output.with_name("clip.mp4.json")
        report = json.loads(wait_for(beside.is_file, what="the report") and beside.read_text())
        texts = [
            segment["text"]
            for track in report["plan"]["t"]
            if track.get("tt") == 7
            for segment in track["sg"]
        ]
        assert texts == ["Hello"]
        assert report["sidecars"] == [str(inbox / "clip.txt")]
        failed = inbox / "failed"
        error = wait_for(
            lambda: (
                (failed / "bad.mp4.error.json").is_file()
                and json.loads((failed / "bad.mp4.error.json").read_text())
            ),
            what="bad.mp4.error.json",
        )
        assert f"{inbox / 'bad.txt'}:2: " in error["error"]
        assert (failed / "bad.txt").is_file() and (failed / "bad.mp4").is_file()
        wait_for(lambda: files(inbox / "done", "clip.txt"), what="the sidecar archived")
        [claimed] = daemon.saw("job.claimed", source=str(inbox / "clip.mp4"))
        assert claimed["sidecars"] == ["clip.txt"]
    finally:
        assert daemon.stop() == 0


def test_process_reads_the_sidecar_beside_the_file(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, report=True)])
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    source = folder / "clip.mp4"
    source.write_bytes(clips.basic.read_bytes())
    (folder / "clip.txt").write_text("add the title 'Hello'\n")
    result = nemowatch(config, "process", str(source), "--rule", "clips")
    assert result.returncode == 0, result.stderr
    output = Path(result.stdout.strip().splitlines()[-1])
    report = json.loads(output.with_name(output.name + ".json").read_text())
    assert "Hello" in json.dumps(report["plan"])
    assert (folder / "clip.txt").is_file() and source.is_file()  # left where they were
