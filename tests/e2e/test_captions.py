"""Captions and filler cuts, offline, end to end: real speech (espeak-ng), the real model
(the captions extra, Whisper tiny.en), real FFmpeg, `nemowatch process`."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest

from nemowatch.engines.local.speech import Stopped, Transcriber
from nemowatch.ledger import Ledger
from nemowatch.probe import probe
from tests.e2e.harness import rule, write_config
from tests.speech_clips import TALK, SpokenClip, spoken_clip, srt_cues, word_error_rate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FFMPEG = Path(imageio_ffmpeg.get_ffmpeg_exe())
KITCHEN = (
    ("say", "Welcome back to the kitchen."),
    ("filler", "um"),
    ("say", "Today we are making fresh bread."),
    ("filler", "uh"),
    ("say", "First, mix the flour and the water."),
    ("filler", "um"),
    ("say", "Then let it rest for an hour."),
)


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    """About two minutes of speech (42 sentences)."""
    pieces = [("say", sentence) for sentence in TALK]
    return spoken_clip(tmp_path_factory.mktemp("talk"), pieces, ffmpeg=FFMPEG, gap=0.5)


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    """Four sentences with an "um" or "uh" said between each two."""
    return spoken_clip(tmp_path_factory.mktemp("kitchen"), KITCHEN, ffmpeg=FFMPEG)


def process(tmp_path: Path, clip: Path, **fields: Any) -> tuple[Path, Path]:
    """`nemowatch process` of `clip` under a rule with `fields`: the output and the config."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, [rule(tmp_path, **fields)])
    source = tmp_path / f"talk{clip.suffix}"
    shutil.copy(clip, source)
    result = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "process", str(source), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]), config


def subtitle_track(video: Path) -> str:
    """The video's first subtitle track, as SubRip."""
    return subprocess.run(
        [str(FFMPEG), "-v", "error", "-i", str(video), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def kept_segments(config: Path) -> list[tuple[float, float]]:
    """The stretches of the source the job's draft kept, in seconds."""
    with Ledger.in_state_dir(config.parent / "state") as ledger:
        (record,) = ledger.jobs()
    assert record.draft is not None
    video = next(track for track in record.draft["t"] if track["tt"] == 1)
    return [(item["s"] / 1000, item["e"] / 1000) for item in video["sg"]]


@pytest.mark.timeout(300)  # two minutes of speech heard and rendered: slow on a busy machine
def test_soft_captions_of_a_two_minute_talk_read_as_its_script(
    tmp_path: Path, talk: SpokenClip
) -> None:
    # (no loudness passes: they take longer than the captions, and are tested elsewhere)
    output, _ = process(tmp_path, talk.path, edit={"captions": {"burn": False}, "normalize": False})

    track = subtitle_track(output)
    cues = srt_cues(track)
    heard = " ".join(" ".join(lines) for _, _, lines in cues)
    assert word_error_rate(talk.script, heard) <= 0.25, heard
    assert probe(output).duration == pytest.approx(talk.duration, abs=0.2)
    # readable: at most two lines of at most 42 characters, in order, inside the video
    assert all(len(lines) <= 2 and all(len(line) <= 42 for line in lines) for *_, lines in cues)
    assert all(start < end <= talk.duration + 0.1 for start, end, _ in cues)
    assert all(one[1] <= other[0] + 0.001 for one, other in itertools.pairwise(cues))
    # the same captions as an .srt beside the output
    beside = srt_cues(output.with_suffix(".srt").read_text(encoding="utf-8"))
    assert [lines for *_, lines in beside] == [lines for *_, lines in cues]


def test_a_sound_files_audiogram_gets_the_captions_of_what_is_said(
    tmp_path: Path, kitchen: SpokenClip
) -> None:
    # an MP3 of the kitchen talk: an audiogram (issue 13) with its words as a subtitle track
    song = tmp_path / "kitchen.mp3"
    subprocess.run(
        [
            str(FFMPEG),
            "-v",
            "error",
            "-i",
            str(kitchen.path),
            "-vn",
            "-c:a",
            "libmp3lame",
            str(song),
        ],
        check=True,
    )
    # a small frame: the test is about the words, and a 1280x720 audiogram costs seconds
    small = {"format": "mp4", "resolution": "240p", "quality": "low"}
    output, _ = process(tmp_path / "job", song, edit={"captions": {"burn": False}}, export=small)

    facts = probe(output)
    assert facts.video is not None and facts.audio is not None
    assert facts.duration == pytest.approx(kitchen.duration, abs=0.3)
    heard = " ".join(" ".join(lines) for _, _, lines in srt_cues(subtitle_track(output)))
    assert word_error_rate(kitchen.script, heard) <= 0.25, heard


def test_fillers_are_cut_and_nothing_said_is(tmp_path: Path, kitchen: SpokenClip) -> None:
    # (no loudness passes: they are tested elsewhere, and cost more CPU than the cuts)
    edit = {"remove_fillers": True, "captions": {"burn": False}, "normalize": False}
    output, config = process(tmp_path, kitchen.path, edit=edit)

    kept = kept_segments(config)
    for piece in kitchen.pieces:
        inside = [
            min(end, piece.end) - max(start, piece.start)
            for start, end in kept
            if start < piece.end and end > piece.start
        ]
        if piece.kind == "filler":
            assert not inside, f"{piece} is kept in {kept}"
        else:  # every sentence whole, in one kept stretch (frame edges: 1/15 s)
            assert any(
                start <= piece.start + 0.07 and piece.end - 0.07 <= end for start, end in kept
            ), f"{piece} is cut by {kept}"
    # the captions follow the edit: each sentence's cue starts where it is in the output
    cues = srt_cues(subtitle_track(output))
    spoken = " ".join(" ".join(lines) for *_, lines in cues).lower()
    assert " um" not in f" {spoken}" and " uh" not in f" {spoken}"
    for piece in kitchen.pieces:
        if piece.kind != "say":
            continue
        # where the sentence plays in the output: the kept time before it
        at = sum(min(end, piece.start) - start for start, end in kept if start < piece.start)
        first = piece.text.split()[0].strip(",.").lower()
        starts = [start for start, _, lines in cues if lines[0].lower().startswith(first)]
        assert starts and min(abs(start - at) for start in starts) < 0.6, (piece, cues)
    assert probe(output).duration == pytest.approx(sum(end - start for start, end in kept), abs=0.1)
    # and `explain` says what was heard and which fillers it found
    source = str(tmp_path / "talk.mp4")
    explained = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "explain", source, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "words heard: " in explained.stdout, explained.stderr
    assert "  fillers: 3: " in explained.stdout


def test_burned_captions_change_only_the_caption_area(tmp_path: Path, kitchen: SpokenClip) -> None:
    sharp = {"format": "mp4", "resolution": "source", "quality": "high"}
    # (no loudness passes: the pictures are compared, and the sound costs more CPU)
    plain, _ = process(tmp_path / "plain", kitchen.path, export=sharp, edit={"normalize": False})
    captioned, config = process(
        tmp_path / "captioned",
        kitchen.path,
        export=sharp,
        edit={"captions": True, "normalize": False},
    )

    width, height = probe(plain).video.width, probe(plain).video.height  # type: ignore[union-attr]
    one, other = frames(plain, width, height), frames(captioned, width, height)
    assert one.shape == other.shape
    # how much each pixel differs, on average over the frames: encoding noise is a few
    # levels, text drawn over the picture for most of the video a hundred and more
    difference = np.abs(one.astype(np.int16) - other.astype(np.int16)).mean(axis=0)
    # the captions sit in the bottom band: two lines of 4.5 % of the height above a 5 % margin
    band = round(height * 0.72)
    changed = np.argwhere(difference > 24)
    assert len(changed) > 50, "no captions drawn"
    assert changed[:, 0].min() >= band, f"pixels changed above the caption area: {changed[:5]}"
    assert json.dumps(kept_segments(config))  # the job's draft is in the ledger


def frames(video: Path, width: int, height: int) -> np.ndarray[Any, Any]:
    """Every frame of `video`, grey, as an array (frames, height, width)."""
    raw = subprocess.run(
        [str(FFMPEG), "-v", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width)


@pytest.mark.parametrize(
    ("audio", "warning"),
    [
        (["-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono"], "no speech found in what the edit"),
        ([], "has no sound"),
    ],
    ids=["silent", "no-audio"],
)
def test_captions_of_a_clip_without_speech_are_a_warning_not_a_guess(
    tmp_path: Path, audio: list[str], warning: str
) -> None:
    clip = tmp_path / "quiet.mp4"
    subprocess.run(
        [
            str(FFMPEG),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=160x90:r=10",
            *audio,
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(clip),
        ],
        check=True,
    )
    output, config = process(tmp_path / "job", clip, edit={"captions": True}, report=True)

    report = json.loads(output.with_name(output.name + ".json").read_text(encoding="utf-8"))
    assert len(report["warnings"]) == 1 and warning in report["warnings"][0], report
    with Ledger.in_state_dir(config.parent / "state") as ledger:
        (record,) = ledger.jobs()
    assert not any(track.get("m", {}).get("kind") == "captions" for track in record.draft["t"])


def test_a_transcription_asked_to_stop_ends_without_its_words(kitchen: SpokenClip) -> None:
    stop = threading.Event()
    stop.set()  # as when the daemon stops while a job is being heard

    with pytest.raises(Stopped):
        Transcriber({}).transcribe(kitchen.path, language=None, fillers=False, stop=stop)
    heard = Transcriber({}).transcribe(kitchen.path, language=None, fillers=False)
    assert len(heard.words) >= 20
