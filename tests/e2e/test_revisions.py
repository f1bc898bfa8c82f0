"""Revisions with the daemon running (issue 13): `clip.revise.txt` dropped after `clip.mp4`
was published continues that job: `clip v2.mp4` is the same edit with the revision's
instructions on top (its music measurably quieter), `clip.mp4` is left as it was, the
revision file is archived with its job, and a further revision makes v3 from v2. A revision
naming no output goes to failed/ beside an error.json that says so."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.e2e.harness import Daemon, drop, files, nemowatch, rule, wait_for, write_config
from tests.integration.test_local_render import level_db, samples

GAPS = [(2.55, 3.7), (6.55, 7.95)]  # the silences clip's quiet stretches: the music alone


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def music_level(path: Path) -> float:
    rate, audio = samples(path)
    return level_db(audio, rate, GAPS)


def test_a_revision_publishes_the_next_version_and_leaves_the_first(tmp_path: Path, clips) -> None:
    config = write_config(
        tmp_path,
        [
            rule(
                tmp_path,
                instructions=["add background music"],
                edit={"normalize": False},  # levels as mixed, to compare them
                report=True,
            )
        ],
    )
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop(inbox / "clip.mp4", clips.silences)
        [first] = wait_for(lambda: files(outbox, "clip.mp4"), timeout=120, what="clip.mp4")
        wait_for(lambda: files(inbox / "done", "clip.mp4"), what="the source archived")
        before = digest(first)
        drop(inbox / "clip.revise.txt", b"make the music quieter\n")
        second = outbox / "clip v2.mp4"
        wait_for(second.is_file, timeout=120, what="clip v2.mp4")
        drop(inbox / "nothing.revise.txt", b"make it louder\n")
        refused = inbox / "failed" / "nothing.revise.txt.error.json"
        wait_for(refused.is_file, what="the refused revision's report")
        drop(inbox / "clip v2.revise.txt", b"add the title 'Again'\n")
        third = outbox / "clip v3.mp4"
        wait_for(third.is_file, timeout=120, what="clip v3.mp4")
        wait_for(lambda: len(files(inbox / "done", "*.revise.txt")) == 2, what="archived")
        drop(inbox / "clip.revise.txt", b"# one more\nmake it verticle\n")  # a typo: line 2
        invalid = inbox / "failed" / "clip.revise.txt.error.json"
        wait_for(invalid.is_file, what="the invalid revision's report")
    finally:
        assert daemon.stop() == 0
    assert digest(first) == before  # version 1 untouched
    assert music_level(second) < music_level(first) - 2.0
    plan = json.loads(third.with_name(third.name + ".json").read_text())["plan"]
    titles = [sg["text"] for track in plan["t"] if track.get("tt") == 7 for sg in track["sg"]]
    assert titles == ["Again"]
    assert abs(music_level(third) - music_level(second)) < 1.0  # v3 is v2's edit, and more
    error = json.loads(refused.read_text())
    assert "no output named nothing" in error["error"] and error["hint"]
    assert f"{inbox / 'clip.revise.txt'}:2: " in json.loads(invalid.read_text())["error"]
    assert not (outbox / "clip v4.mp4").exists()
    listing = nemowatch(config, "jobs").stdout
    [first_job] = [line.split()[0] for line in listing.splitlines() if "clip.mp4 ->" in line]
    assert f"[v2 of {first_job}]" in listing and f"[v3 of {first_job}]" in listing, listing


def test_a_revision_of_an_output_whose_source_was_deleted_is_refused(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, after={"success": "delete"})])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop(inbox / "clip.mp4", clips.basic)
        wait_for(lambda: files(outbox, "clip.mp4"), timeout=120, what="clip.mp4")
        drop(inbox / "clip.revise.txt", b"make it black and white\n")
        refused = inbox / "failed" / "clip.revise.txt.error.json"
        wait_for(refused.is_file, what="the refused revision's report")
        assert daemon.running
    finally:
        assert daemon.stop() == 0
    error = json.loads(refused.read_text())
    assert "no longer kept" in error["error"] and "after.success" in error["hint"]
    assert (inbox / "failed" / "clip.revise.txt").read_bytes() == b"make it black and white\n"
    assert files(outbox, "*.mp4") == [outbox / "clip.mp4"]
