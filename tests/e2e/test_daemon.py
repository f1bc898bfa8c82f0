"""The daemon as a subprocess: files dropped the ways people drop them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nemowatch.probe import moov_before_mdat, probe
from tests.e2e.harness import (
    Daemon,
    drop,
    drop_at_once,
    files,
    ledger_jobs,
    ledger_states,
    processes_mentioning,
    rule,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def assert_playable_mp4(path: Path) -> None:
    result = probe(path)
    assert result.video is not None and result.audio is not None
    assert result.video.codec == "h264"
    assert result.video.profile == "High"
    assert result.video.pix_fmt == "yuv420p"
    assert result.audio.codec == "aac"
    assert result.audio.sample_rate == 48000 and result.audio.channels == 2
    assert moov_before_mdat(path)


def no_temporaries(outbox: Path) -> bool:
    return not [path for path in outbox.rglob("*") if path.name.startswith(".")]


def test_the_example_config_turns_a_dropped_video_into_an_mp4(tmp_path: Path, clips) -> None:
    # the example config, unchanged, in a folder of its own: its paths are relative to it
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "config.yaml")
    daemon = Daemon(tmp_path / "config.yaml", tmp_path / "daemon.log").start()
    try:
        inbox, outbox = tmp_path / "demo" / "inbox", tmp_path / "demo" / "outbox"
        assert inbox.is_dir() and outbox.is_dir()  # created at start
        drop(inbox / "talk.mp4", clips.silences)
        outputs = wait_for(lambda: files(outbox, "*.mp4"), what="an MP4 in the outbox")
        assert [path.name for path in outputs] == ["talk-edited.mp4"]
        assert_playable_mp4(outputs[0])
        archived = wait_for(lambda: files(inbox / "done", "talk.mp4"), what="source archived")
        assert archived[0].parent.parent == inbox / "done"
        assert not (inbox / "talk.mp4").exists()
        assert probe(outputs[0]).duration < probe(archived[0]).duration - 3  # silences cut
        assert daemon.running
    finally:
        assert daemon.stop() == 0


@pytest.fixture
def setup(tmp_path: Path):
    """A daemon on one rule, started lazily so a test can adjust the rule first."""
    started: list[Daemon] = []

    def start(**fields) -> tuple[Daemon, Path, Path]:
        config = write_config(tmp_path, [rule(tmp_path, **fields)])
        daemon = Daemon(config, tmp_path / "daemon.log").start()
        started.append(daemon)
        return daemon, tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"

    yield start
    for daemon in started:
        if daemon.running:
            daemon.stop()


def test_a_file_written_slowly_is_taken_once_after_it_settles(setup, clips) -> None:
    # Pauses of 0.4 s between pieces, well inside the settle time even when a loaded machine
    # stretches them; written in place on purpose (no fsync: the daemon sees every write
    # at once, and a sync can wait seconds on a busy disk).
    daemon, inbox, outbox = setup(settle_seconds=2.0)
    data = clips.basic.read_bytes()
    target = inbox / "slow.mp4"
    chunks = 8
    with target.open("wb") as handle:  # about 3 s of writing, in pieces
        for index in range(chunks):
            handle.write(data[index * len(data) // chunks : (index + 1) * len(data) // chunks])
            handle.flush()
            time.sleep(0.4)
            assert not daemon.saw("job.claimed"), "claimed while still being written"
    output = wait_for(lambda: files(outbox, "*.mp4"), what="output")
    assert [path.name for path in output] == ["slow.mp4"]
    assert len(daemon.saw("job.claimed")) == 1
    assert probe(output[0]).video is not None


def test_a_partial_name_is_left_alone_until_renamed(setup, clips) -> None:
    daemon, inbox, outbox = setup()
    partial = inbox / "clip.mp4.part"
    shutil.copy(clips.basic, partial)
    time.sleep(3)  # two settle windows and a scan: nothing may touch the partial file
    assert partial.exists() and not daemon.saw("job.claimed")
    partial.rename(inbox / "clip.mp4")
    wait_for(lambda: files(outbox, "clip.mp4"), what="output after rename")
    assert len(daemon.saw("job.claimed")) == 1


def test_a_file_moved_in_from_elsewhere_is_processed_once(setup, clips) -> None:
    daemon, inbox, outbox = setup()
    drop(inbox / "moved.mp4", clips.basic)
    wait_for(lambda: files(outbox, "moved.mp4"), what="output")
    wait_for(lambda: files(inbox / "done", "moved.mp4"), what="archived")
    assert len(daemon.saw("job.claimed")) == 1


def test_two_identical_files_dropped_at_once_make_one_output(setup, clips) -> None:
    """Both are claimed at once (two workers); the one second to its claim waits for the
    other to finish, then is skipped as its duplicate."""
    daemon, inbox, outbox = setup()
    drop_at_once({inbox / "first.mp4": clips.basic, inbox / "second.mp4": clips.basic})
    wait_for(lambda: len(files(inbox / "done", "*.mp4")) == 2, what="both archived")
    assert len(daemon.saw("job.claimed")) == 2
    jobs = sorted(ledger_jobs(daemon.config.parent / "state"), key=lambda job: job["state"])
    assert [job["state"] for job in jobs] == ["done", "skipped"]
    done, skipped = jobs
    assert skipped["error"] == f"duplicate of job {done['id']} (output {done['output']})"
    assert [path.name for path in files(outbox, "*.mp4")] == [Path(done["output"]).name]
    assert daemon.saw("job.waiting", for_job=done["id"])


def test_files_beyond_concurrency_and_prefetch_wait_in_the_inbox_and_are_taken_in_turn(
    tmp_path: Path, clips
) -> None:
    """One worker, no prefetch: one file claimed at a time, the next as soon as a job ends
    (not at the next scan, five minutes away)."""
    config = write_config(tmp_path, [rule(tmp_path)], concurrency=1, prefetch=0, scan_interval=300)
    inbox = tmp_path / "inbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        names = [f"clip{index}.mp4" for index in range(3)]
        drop_at_once(
            {inbox / name: source for name, source in zip(names, clips.distinct(3), strict=True)}
        )
        most = 0

        def finished() -> bool:
            nonlocal most
            most = max(most, len(files(inbox / "processing")))
            return len(files(inbox / "done", "*.mp4")) == 3

        wait_for(finished, timeout=60, interval=0.02, what="three files done")
        assert most == 1
        assert len(daemon.saw("job.claimed")) == 3
    finally:
        assert daemon.stop() == 0


def test_fifty_files_at_once_are_each_processed_exactly_once(setup, clips) -> None:
    daemon, inbox, outbox = setup()
    sources = clips.distinct(50)
    drop_at_once({inbox / f"clip{index:02d}.mp4": source for index, source in enumerate(sources)})
    wait_for(lambda: len(files(inbox / "done", "*.mp4")) == 50, timeout=240, what="50 archived")
    outputs = sorted(path.name for path in files(outbox, "*.mp4"))
    assert outputs == [f"clip{index:02d}.mp4" for index in range(50)]
    claimed = [entry["source"] for entry in daemon.saw("job.claimed")]
    assert len(claimed) == 50 and len(set(claimed)) == 50
    assert set(ledger_states(daemon.config.parent / "state").values()) == {"done"}
    assert no_temporaries(outbox)


def test_bad_inputs_end_in_failed_with_a_readable_report(setup, clips) -> None:
    daemon, inbox, outbox = setup(match=["*"])
    drop(inbox / "random.mp4", os.urandom(50_000))
    drop(inbox / "empty.mp4", b"")
    drop(inbox / "notes.txt", b"not a video")
    reports = wait_for(
        lambda: (
            len(files(inbox / "failed", "*.error.json")) == 3
            and files(inbox / "failed", "*.error.json")
        ),
        what="three error reports",
    )
    import json

    by_name = {
        Path(json.loads(path.read_text())["file"]).name: json.loads(path.read_text())
        for path in reports
    }
    assert set(by_name) == {"random.mp4", "empty.mp4", "notes.txt"}
    for name, report in by_name.items():
        assert (inbox / "failed" / name).exists()  # the source is kept, beside its report
        assert report["retryable"] is False
        assert report["error"] and report["how_to_retry"]
        assert name in report["source"]
    assert "empty" in by_name["empty.mp4"]["error"].lower()
    assert ".txt" in by_name["notes.txt"]["error"]
    # the daemon is still up and still working
    assert daemon.running
    drop(inbox / "good.mp4", clips.basic)
    wait_for(lambda: files(outbox, "good.mp4"), what="a good file after bad ones")
    assert not files(outbox, "random*") and no_temporaries(outbox)


def test_sigkill_while_rendering_then_restart_finishes_the_job_once(
    tmp_path: Path, clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    # smart: off, so every frame is encoded; 15 s of tiny frames read at 5 times real
    # time: a render of 3 s to be killed in
    paced_ffmpeg(5)
    export = {"format": "mp4", "resolution": "source", "quality": "high", "smart": "off"}
    config = write_config(tmp_path, [rule(tmp_path, export=export)])
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    log = tmp_path / "daemon.log"
    daemon = Daemon(config, log).start()
    drop(inbox / "long.mp4", clips.long_tiny)
    wait_for(
        lambda: "exporting" in ledger_states(tmp_path / "state").values(),
        interval=0.02,
        what="the job to be rendering",
    )
    daemon.kill()
    assert not files(outbox, "*.mp4")
    # the render's ffmpeg dies with the daemon instead of running on as an orphan
    wait_for(
        lambda: not processes_mentioning(str(inbox / "processing")), timeout=10, what="no orphan"
    )
    restarted = Daemon(config, log).start()
    try:
        wait_for(lambda: files(inbox / "done", "long.mp4"), timeout=120, what="archived")
        outputs = files(outbox)
        assert [path.name for path in outputs] == ["long.mp4"]
        assert_playable_mp4(outputs[0])
        assert list(ledger_states(tmp_path / "state").values()) == ["done"]
        assert no_temporaries(outbox)
        assert not files(inbox / "processing")
        assert restarted.saw("job.resuming", state="exporting")
    finally:
        assert restarted.stop() == 0


def test_check_lists_every_mistake_and_exits_78(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "engine: local\n"
        "concurrency: -1\n"  # 2: out of range
        "colour: blue\n"  # 3: unknown key
        "rules:\n"
        "  - name: a\n"
        f"    inbox: {tmp_path}/in\n"
        f"    outbox: {tmp_path}/in/out\n"  # 7: outbox inside the inbox
        "    export: {resolution: 9x16}\n"  # 8: not a resolution
        "    outputs: '{stem}-{nope}.mp4'\n"  # 9: unknown template field
        "  - name: a\n"  # 10: duplicate name
        f"    inbox: {tmp_path}/other\n"
        "    settle_seconds: soon\n",  # 12: not a number (and outbox missing)
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78, result.stderr
    lines = [line for line in result.stderr.splitlines() if str(config) in line]
    assert len(lines) >= 6
    for number in (2, 3, 7, 8, 9, 12):
        assert any(f"{config}:{number}:" in line for line in lines), (number, result.stderr)


def test_check_passes_on_the_example_config() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nemowatch.cli",
            "check",
            "--config",
            str(ROOT / "config.example.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_a_file_no_rule_matches_is_logged_once_and_left_alone(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path)], scan_interval=0.5)
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox = tmp_path / "inbox" / "clips"
    try:
        drop(inbox / "notes.rtf", b"shopping list")
        wait_for(lambda: daemon.saw("file.no_rule"), what="file.no_rule")
        scans = 4
        time.sleep(scans * 0.5 + 0.5)  # several reconciliation scans see it again
        assert len(daemon.saw("file.no_rule")) == 1
        assert (inbox / "notes.rtf").read_text() == "shopping list"
        assert not daemon.saw("job.claimed")
    finally:
        assert daemon.stop() == 0
