"""Folders dropped into an inbox, with the daemon running (issue 13's batches).

- `batch: combine`: six photos and an MP3 make one slideshow as long as the music (or as
  the rule's duration), its frames changing with the photos; the folder is archived whole.
- `batch: each`: each file its own output, the folder's instructions.txt for all of them;
  a file that is no video fails alone, into failed/<folder>/ beside its error.json.
- Bad folders: an empty one is said and left (it may be about to be filled, and is taken
  once it is); one holding a folder goes to failed/ with a report naming it; a combined
  batch with a broken photo fails as a whole, naming the photo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

from nemowatch.probe import probe
from tests.e2e.harness import Daemon, files, nemowatch, rule, wait_for, write_config
from tests.integration.test_local_render import frame
from tests.media import TOOL_FFMPEG, write_random_bytes

COLOURS = ("red", "green", "blue", "yellow", "white", "purple")


def ffmpeg(*arguments: str) -> None:
    subprocess.run(
        [str(TOOL_FFMPEG), "-nostdin", "-y", "-hide_banner", "-v", "error", *arguments],
        check=True,
    )


def photo(target: Path, colour: str) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"color=c={colour}:s=160x120", "-frames:v", "1", str(target))
    return target


def music(target: Path, seconds: float) -> Path:
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
        "-c:a", "libmp3lame", "-b:a", "64k", str(target),
    )  # fmt: skip
    return target


def drop_folder(inbox: Path, name: str, make) -> Path:
    """Make a folder beside the inbox, then rename it in whole (as a file manager's move)."""
    staged = inbox.with_name(f"{inbox.name}.staging") / name
    staged.mkdir(parents=True)
    make(staged)
    target = inbox / name
    inbox.mkdir(parents=True, exist_ok=True)
    staged.rename(target)
    return target


def three_videos(folder: Path, clips) -> None:
    """a.mp4, b.mp4, c.mp4: three different videos (the same bytes twice would be skipped
    as a duplicate)."""
    for name, clip in (
        ("a.mp4", clips.basic),
        ("b.mp4", clips.no_audio),
        ("c.mp4", clips.portrait),
    ):
        shutil.copyfile(clip, folder / name)


def mean_brightness(path: Path, seconds: float) -> float:
    width, height, pixels = frame(path, seconds)
    return sum(pixels) / (width * height)


def test_a_folder_of_photos_and_music_combines_into_one_slideshow(tmp_path: Path) -> None:
    slideshow = rule(tmp_path, "slideshow", batch="combine")
    short = rule(tmp_path, "short", batch="combine", instructions=["make it 4 seconds"])
    config = write_config(tmp_path, [slideshow, short])

    def holiday(folder: Path) -> None:
        for index, colour in enumerate(COLOURS):
            photo(folder / f"{index + 1:02d}.png", colour)
        music(folder / "song.mp3", 9.0)
        (folder / "notes.pdf").write_bytes(b"%PDF-1.4")  # not footage: archived with it

    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop_folder(tmp_path / "inbox" / "slideshow", "holiday", holiday)
        drop_folder(tmp_path / "inbox" / "short", "holiday", holiday)
        [whole] = wait_for(
            lambda: files(tmp_path / "outbox" / "slideshow", "*.mp4"), timeout=180, what="slideshow"
        )
        [cut] = wait_for(
            lambda: files(tmp_path / "outbox" / "short", "*.mp4"), timeout=180, what="short"
        )
    finally:
        assert daemon.stop() == 0
    assert whole.name == "holiday.mp4"
    facts = probe(whole)
    assert facts.audio is not None and facts.video is not None
    assert abs(facts.duration - 9.0) < 0.3, facts.duration  # the music's length
    # six photos share the nine seconds: 1.5 s each, in name order (red first, then green)
    levels = [mean_brightness(whole, 0.75 + 1.5 * index) for index in range(6)]
    assert len({round(level) for level in levels}) >= 5, levels
    assert abs(probe(cut).duration - 4.0) < 0.3  # the rule's duration
    archived = tmp_path / "inbox" / "slideshow" / "done" / date.today().isoformat() / "holiday"
    assert sorted(path.name for path in archived.iterdir()) == [
        *(f"{index:02d}.png" for index in range(1, 7)),
        "notes.pdf",
        "song.mp3",
    ]
    assert not (tmp_path / "inbox" / "slideshow" / "holiday").exists()
    [claimed] = daemon.saw(
        "batch.claimed", folder=str(tmp_path / "inbox" / "slideshow" / "holiday")
    )
    assert claimed["mode"] == "combine" and claimed["files"] == 8 and len(claimed["jobs"]) == 1
    assert claimed["left_as_they_are"] == ["notes.pdf"]


def test_a_folder_of_videos_gives_each_its_own_output(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, report=True)])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"

    def trip(folder: Path) -> None:
        three_videos(folder, clips)
        write_random_bytes(folder / "d.mp4")  # not a video: fails alone
        (folder / "instructions.txt").write_text("add the title 'Trip'\nalso export an EDL\n")
        (folder / "route.pdf").write_bytes(b"%PDF-1.4")  # not the rule's: goes with the folder

    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop_folder(inbox, "trip", trip)
        report = inbox / "failed" / "trip" / "d.mp4.error.json"
        wait_for(lambda: report.is_file(), timeout=180, what="d.mp4's report")
        outputs = wait_for(
            lambda: len(files(outbox, "*.mp4")) == 3 and files(outbox, "*.mp4"), what="3 outputs"
        )
        done = inbox / "done" / date.today().isoformat() / "trip"
        wait_for(lambda: done.is_dir(), what="the folder archived")
    finally:
        assert daemon.stop() == 0
    assert [path.name for path in outputs] == ["a.mp4", "b.mp4", "c.mp4"]
    for output in outputs:
        plan = json.loads(output.with_name(output.name + ".json").read_text())["plan"]
        titles = [sg["text"] for track in plan["t"] if track.get("tt") == 7 for sg in track["sg"]]
        assert titles == ["Trip"]  # the folder's instructions.txt, for each
        # an EDL was asked for: a folder's file gets none yet, and its job says so
        warnings = json.loads(output.with_name(output.name + ".json").read_text())["warnings"]
        assert any("batch: each" in warning for warning in warnings), warnings
    assert not files(outbox, "*.edl")
    assert sorted(path.name for path in done.iterdir()) == [
        "a.mp4",
        "b.mp4",
        "c.mp4",
        "instructions.txt",
        "route.pdf",
    ]
    assert (inbox / "failed" / "trip" / "d.mp4").is_file()
    error = json.loads(report.read_text())
    assert "d.mp4" in error["error"] and error["batch"] == str(inbox / "trip")
    assert not (inbox / "trip").exists() and not any((inbox / "processing").iterdir())
    [claimed] = daemon.saw("batch.claimed")
    assert len(claimed["jobs"]) == 4 and claimed["left_as_they_are"] == ["route.pdf"]


def test_bad_folders_are_said_or_reported_and_the_daemon_goes_on(tmp_path: Path, clips) -> None:
    clips_rule = rule(tmp_path)
    combined = rule(tmp_path, "together", batch="combine")
    config = write_config(tmp_path, [clips_rule, combined])
    inbox = tmp_path / "inbox" / "clips"
    together = tmp_path / "inbox" / "together"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        empty = drop_folder(inbox, "empty", lambda folder: None)
        drop_folder(
            inbox,
            "nested",
            lambda folder: (
                shutil.copyfile(clips.basic, folder / "a.mp4"),
                (folder / "more").mkdir(),
            ),
        )

        def broken(folder: Path) -> None:
            photo(folder / "01.png", "red")
            (folder / "02.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")

        drop_folder(together, "broken", broken)
        wait_for(lambda: daemon.saw("batch.empty", path=str(empty)), what="batch.empty")
        nested = inbox / "failed" / "nested.error.json"
        wait_for(lambda: nested.is_file(), what="the nested folder's report")
        broken_report = together / "failed" / "broken.error.json"
        wait_for(lambda: broken_report.is_file(), timeout=120, what="the broken batch's report")
        # the broken photo replaced, `retry` sends the whole folder back, and it is made
        failed_batch = together / "failed" / "broken"
        photo(failed_batch / "02.jpg", "green")
        failure = json.loads(broken_report.read_text())
        retried = nemowatch(config, "retry", failure["job_id"])
        assert retried.returncode == 0, retried.stderr
        wait_for(
            lambda: files(tmp_path / "outbox" / "together", "broken.mp4"), timeout=120, what="retry"
        )
        # the empty folder was left alone; filled, it is taken
        assert empty.is_dir()
        shutil.copyfile(clips.basic, empty / "late.mp4")
        wait_for(
            lambda: files(tmp_path / "outbox" / "clips", "late.mp4"), timeout=120, what="late.mp4"
        )
        assert daemon.running
    finally:
        assert daemon.stop() == 0
    error = json.loads(nested.read_text())
    assert "more/" in error["error"] and (inbox / "failed" / "nested" / "a.mp4").is_file()
    assert not broken_report.exists()  # removed by the retry
    assert "02.jpg" in failure["error"] and "broken" in failure["error"], failure
    assert list((together / "done").glob("*/broken/02.jpg"))  # archived whole, after its retry
    [said] = daemon.saw("batch.empty", path=str(empty))
    assert "put the files in it" in said["hint"]


def test_process_joins_a_folder_under_a_combining_rule_and_leaves_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, [rule(tmp_path, "joined", batch="combine"), rule(tmp_path, "apart")]
    )
    trip = tmp_path / "trip"
    trip.mkdir()
    photo(trip / "1.png", "red")
    photo(trip / "2.png", "blue")
    music(trip / "song.mp3", 3.0)
    (trip / "instructions.txt").write_text("add the title 'Trip'\n")
    result = nemowatch(config, "process", str(trip))  # the one rule that combines
    assert result.returncode == 0, result.stderr
    output = Path(result.stdout.strip().splitlines()[-1])
    assert output == tmp_path / "outbox" / "joined" / "trip.mp4"
    assert abs(probe(output).duration - 3.0) < 0.3
    assert sorted(path.name for path in trip.iterdir()) == [
        "1.png",
        "2.png",
        "instructions.txt",
        "song.mp3",
    ]
    refused = nemowatch(config, "process", str(trip), "--rule", "apart")
    assert refused.returncode == 2
    assert "batch: each" in refused.stderr and "one file at a time" in refused.stderr


def test_a_daemon_killed_in_the_middle_of_a_batch_finishes_it_once(tmp_path: Path, clips) -> None:
    from nemowatch.pipeline import TEST_CRASH_PUBLISHED

    config = write_config(tmp_path, [rule(tmp_path)], concurrency=1)
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"

    def trip(folder: Path) -> None:
        three_videos(folder, clips)

    # killed just after b.mp4's output is published, before the ledger hears of it
    first = Daemon(config, tmp_path / "first.log", env={TEST_CRASH_PUBLISHED: "b.mp4"}).start()
    drop_folder(inbox, "trip", trip)
    wait_for(lambda: not first.running, timeout=120, what="the kill")
    assert first.process is not None and first.process.returncode < 0  # killed, not stopped
    assert not files(inbox / "done")
    second = Daemon(config, tmp_path / "second.log").start()
    try:
        done = inbox / "done" / date.today().isoformat() / "trip"
        wait_for(lambda: done.is_dir(), timeout=120, what="the folder archived")
    finally:
        assert second.stop() == 0
    assert [path.name for path in files(outbox, "*.mp4")] == ["a.mp4", "b.mp4", "c.mp4"]
    assert sorted(path.name for path in done.iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
    assert not any((inbox / "processing").iterdir())
