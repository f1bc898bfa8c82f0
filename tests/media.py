"""Tiny test clips, generated with the same FFmpeg binary the local engine uses.

Video is FFmpeg's `testsrc2` pattern, or a different test pattern after each given scene
change; audio is a steady tone, nothing, or a "speech-like" tone (220 Hz, its loudness
swinging 4 times a second like syllables) switched to exact digital silence during given
intervals and made quieter or louder during others.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import os
import random
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import imageio_ffmpeg

from nemowatch.engines.local.ffmpeg import capability_cache, detected_candidates

# The tests' own instrument, for making clips and reading what was made: the bundled
# static binary, which starts in about 12 ms of CPU against Debian's 74 ms (it loads 200
# shared libraries), and reads and writes the same formats. What nemowatch renders with is
# chosen apart (`find_ffmpeg`, `accepted_ffmpegs`): that is the FFmpeg under test.
TOOL_FFMPEG = Path(imageio_ffmpeg.get_ffmpeg_exe())

AudioKind = Literal["tone", "none", "speech_with_silences"]


def accepted_ffmpegs() -> list[tuple[str, Path]]:
    """(name, path) of every FFmpeg on this machine that the probe accepts: the system's
    (e.g. Debian's 5.1) and the bundled one. Render tests run against each."""
    return list(_accepted_ffmpegs())


@functools.cache
def _accepted_ffmpegs() -> tuple[tuple[str, Path], ...]:
    # Asked once per process: five test files ask while they are collected. Probing runs
    # every candidate FFmpeg a dozen times (about a second of CPU), so what each binary can
    # do is read from where the daemons the tests start keep it (`capability_cache`: by
    # path, inode, time and size); tests/conftest.py asks before the workers start.
    return tuple(
        (f"{candidate.origin}-{candidate.capabilities.version.split('-')[0]}", candidate.path)
        for candidate in detected_candidates(None, cache=capability_cache(os.environ))
        if candidate.usable and candidate.capabilities is not None
    )


SPEECH = "0.5*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*4*t))"
# The pictures a clip cycles through at its scene changes: each looks unlike the others.
SCENE_SOURCES = ("testsrc2", "smptebars", "rgbtestsrc", "testsrc")
# Edges of a silence closer than this to the clip's ends count as touching them (as in plan).
_EDGE = 0.05


@dataclass(frozen=True)
class ClipLayout:
    """What a generated clip holds, so tests can compute what an edit should produce."""

    path: Path
    seconds: float
    size: str
    fps: int
    audio: AudioKind
    sample_rate: int
    channels: int
    silences: tuple[tuple[float, float], ...]
    gains: tuple[tuple[float, float, float], ...] = ()  # (start, end, factor) on the audio
    scene_changes: tuple[float, ...] = ()  # seconds at which the picture switches

    @property
    def phrases(self) -> tuple[tuple[float, float], ...]:
        """The speech between the silences (the whole clip if it has none)."""
        spans = []
        position = 0.0
        for start, end in sorted(self.silences):
            if start > position:
                spans.append((position, start))
            position = max(position, end)
        if self.seconds > position:
            spans.append((position, self.seconds))
        return tuple(spans)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])

    def duration_without_silences(self, margin: float = 0.2, min_cut: float = 0.2) -> float:
        """The clip's duration once its silences are cut, keeping `margin` at each cut."""
        removed = 0.0
        for start, end in self.silences:
            cut_start = 0.0 if start <= _EDGE else start + margin
            cut_end = self.seconds if end >= self.seconds - _EDGE else end - margin
            if cut_end - cut_start >= min_cut:
                removed += cut_end - cut_start
        return self.seconds - removed


def make_clip(
    path: Path,
    seconds: float,
    *,
    size: str = "160x120",
    fps: int = 25,
    audio: AudioKind = "tone",
    silences: Sequence[tuple[float, float]] = (),
    gains: Sequence[tuple[float, float, float]] = (),
    scene_changes: Sequence[float] = (),
    sample_rate: int = 44100,
    channels: int = 1,
    tone_hz: float = 440.0,
    ffmpeg: Path | None = None,
) -> ClipLayout:
    """Write a clip to `path` (container chosen by its extension) and describe it.

    The defaults (44.1 kHz mono) differ from what the engine outputs (48 kHz stereo) on
    purpose, so tests see the conversion happen. `gains` (start, end, factor) scale the
    audio in their intervals; at each of `scene_changes` (seconds) the picture switches
    to the next of SCENE_SOURCES, on a key frame.
    """
    binary = ffmpeg or TOOL_FFMPEG
    length = _number(seconds)
    arguments = [str(binary), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    samples = b""
    if audio != "none":
        # The sound is computed here and piped in as raw samples (input 0, before any picture)
        samples = _samples(seconds, audio, silences, gains, sample_rate, channels, tone_hz)
        arguments += ["-f", "f64le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:"]
    if not scene_changes:
        arguments += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={length}"]
    if scene_changes:
        # The audio is input 0; the pictures come from the graph, video stream first.
        arguments += _scene_video(seconds, size, fps, scene_changes)
        arguments += ["-map", "[video]"] + (["-map", "0:a"] if audio != "none" else [])
        arguments += ["-force_key_frames", ",".join(_number(time) for time in scene_changes)]
    elif audio != "none":
        arguments += ["-map", "1:v", "-map", "0:a"]  # video stream first, as before
    arguments += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    arguments += ["-g", str(fps)]
    if audio == "none":
        arguments += ["-an"]
    else:
        arguments += ["-c:a", "aac", "-aac_coder", "fast", "-b:a", "96k"]  # fast: test clips
    arguments += [str(path)]
    subprocess.run(arguments, check=True, input=samples, capture_output=True)
    return clip_layout(
        path,
        seconds,
        size=size,
        fps=fps,
        audio=audio,
        silences=silences,
        gains=gains,
        scene_changes=scene_changes,
        sample_rate=sample_rate,
        channels=channels,
    )


def _samples(
    seconds: float,
    audio: AudioKind,
    silences: Sequence[tuple[float, float]],
    gains: Sequence[tuple[float, float, float]],
    sample_rate: int,
    channels: int,
    tone_hz: float,
) -> bytes:
    """The clip's sound as raw 64-bit float samples, channels interleaved: the tone or the
    speech-like tone (`SPEECH`), exactly silent within each of `silences` (ends included)
    and scaled by each of `gains`' factors within its interval.

    Computed with NumPy, sample by sample as FFmpeg's `aevalsrc` did from the same
    formula: aevalsrc evaluated every gate for every sample, which made a two-minute talk
    with forty pauses cost 1-3 s of CPU to generate; this costs a few milliseconds.
    tests/integration/test_media.py holds the two to the same samples."""
    import numpy as np  # only here: collecting the tests needs no NumPy

    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    if audio == "tone":
        wave = 0.4 * np.sin(2 * np.pi * tone_hz * t)
    else:  # SPEECH: 220 Hz, its loudness swinging 4 times a second like syllables
        wave = 0.5 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    for start, end in silences:
        wave[(t >= start) & (t <= end)] = 0.0
    for start, end, factor in gains:
        wave[(t >= start) & (t <= end)] *= factor
    return np.repeat(wave, channels).astype("<f8").tobytes()


def clip_layout(
    path: Path,
    seconds: float,
    *,
    size: str = "160x120",
    fps: int = 25,
    audio: AudioKind = "tone",
    silences: Sequence[tuple[float, float]] = (),
    gains: Sequence[tuple[float, float, float]] = (),
    scene_changes: Sequence[float] = (),
    sample_rate: int = 44100,
    channels: int = 1,
    tone_hz: float = 440.0,
    ffmpeg: Path | None = None,
) -> ClipLayout:
    """What `make_clip` with these arguments writes to `path` (without writing it)."""
    return ClipLayout(
        path=path,
        seconds=seconds,
        size=size,
        fps=fps,
        audio=audio,
        sample_rate=sample_rate,
        channels=channels,
        silences=tuple(silences) if audio == "speech_with_silences" else (),
        gains=tuple(gains) if audio != "none" else (),
        scene_changes=tuple(scene_changes),
    )


def _scene_video(seconds: float, size: str, fps: int, scene_changes: Sequence[float]) -> list[str]:
    """A filter graph that plays SCENE_SOURCES in turn, switching at `scene_changes`."""
    edges = [0.0, *sorted(scene_changes), seconds]
    parts = [
        f"{SCENE_SOURCES[index % len(SCENE_SOURCES)]}=size={size}:rate={fps}"
        f":duration={_number(end - start)}[v{index}]"
        for index, (start, end) in enumerate(itertools.pairwise(edges))
    ]
    joined = "".join(f"[v{index}]" for index in range(len(parts)))
    graph = ";".join([*parts, f"{joined}concat=n={len(parts)}:v=1:a=0[video]"])
    return ["-filter_complex", graph]


def speech_layout(
    seconds: float, *, seed: int = 7, pauses: tuple[float, float] = (0.6, 2.0)
) -> tuple[list[tuple[float, float]], list[tuple[float, float, float]]]:
    """Deterministic talk: phrases of 2–8 s separated by `pauses` (0.6–2 s) of silence.

    Returns the silences (from the start, a short one; to the end, what is left) and a
    gain for each phrase between 0.35 and 1, so some phrases are louder than others.
    """
    choose = random.Random(seed)
    silences: list[tuple[float, float]] = []
    gains: list[tuple[float, float, float]] = []
    position = round(choose.uniform(0.6, 1.2), 1)
    silences.append((0.0, position))
    while True:
        phrase_end = round(position + choose.uniform(2.0, 8.0), 1)
        pause_end = round(phrase_end + choose.uniform(*pauses), 1)
        if pause_end > seconds - 3.5:
            break
        silences.append((phrase_end, pause_end))
        gains.append((position, phrase_end, _gain(choose)))
        position = pause_end
    # The last phrase (at least 2 s) and at least 1.5 s of silence to the end.
    phrase_end = round(min(position + choose.uniform(2.0, 8.0), seconds - 1.5), 1)
    gains.append((position, phrase_end, _gain(choose)))
    silences.append((phrase_end, seconds))
    return silences, gains


def _gain(choose: random.Random) -> float:
    return round(choose.uniform(0.35, 1.0), 2)


def write_random_bytes(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """A file of reproducible noise: what a corrupt or mislabelled upload looks like."""
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def _number(value: float) -> str:
    return f"{value:g}"


TWO_MINUTES_SILENCES, TWO_MINUTES_GAINS = speech_layout(120)
# Two more talks of 2 minutes: 85.1 s of speech, and 39.2 s (42.0 s once its silences are cut).
TALK_85_SILENCES, TALK_85_GAINS = speech_layout(120, seed=4, pauses=(1.0, 3.0))
TALK_39_SILENCES, TALK_39_GAINS = speech_layout(120, seed=3, pauses=(8.0, 14.0))
# Tiny pictures at a low frame rate: two minutes of them encode in about a second.
_TALK = {"seconds": 120, "size": "64x36", "fps": 10, "audio": "speech_with_silences",
         "sample_rate": 16000}  # fmt: skip

# name -> (file name, make_clip arguments). Clips are made on first use, once per session.
CLIP_CATALOG: dict[str, tuple[str, dict[str, Any]]] = {
    "basic": ("basic.mp4", {"seconds": 3, "audio": "tone"}),
    "silences": (
        "silences.mp4",
        {
            "seconds": 10,
            "audio": "speech_with_silences",
            "silences": ((2.0, 4.0), (6.0, 8.5)),
        },
    ),
    "three_pauses": (
        "three_pauses.mp4",
        {
            "seconds": 8,
            "size": "64x36",
            "fps": 10,
            "audio": "speech_with_silences",
            "silences": ((1.5, 2.5), (3.5, 4.7), (5.8, 6.8)),
            "sample_rate": 16000,
        },
    ),
    "no_audio": ("no_audio.mp4", {"seconds": 2, "audio": "none"}),
    "portrait": ("portrait.mp4", {"seconds": 1, "size": "120x160", "audio": "tone"}),
    "matroska": ("matroska.mkv", {"seconds": 2, "audio": "tone"}),
    "long": ("long.mp4", {"seconds": 30, "size": "320x240", "audio": "tone"}),
    "long_tiny": (
        "long_tiny.mp4",
        {"seconds": 15, "size": "64x36", "fps": 10, "audio": "tone", "sample_rate": 16000},
    ),
    "two_minutes": (
        "two_minutes.mp4",
        {
            "seconds": 120,
            "size": "160x90",
            "fps": 30,
            "audio": "speech_with_silences",
            "silences": TWO_MINUTES_SILENCES,
            "gains": TWO_MINUTES_GAINS,
            "scene_changes": (17, 41, 66, 90, 104),
            "sample_rate": 16000,  # the audio is computed per sample: 16 kHz is 3x faster
        },
    ),
    "talk_85": (
        "talk_85.mp4",
        {**_TALK, "silences": TALK_85_SILENCES, "gains": TALK_85_GAINS},
    ),
    "talk_39": (
        "talk_39.mp4",
        {**_TALK, "silences": TALK_39_SILENCES, "gains": TALK_39_GAINS},
    ),
}


class Clips:
    """Generated test clips by name: `clips.basic` is a path, `clips.layout("basic")` more.

    The files are shared by the whole session, and by every process given the same
    `directory` (pytest-xdist's workers): each clip is made once, by whichever process
    asks for it first, under a lock. Copy one before changing it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made: dict[str, ClipLayout] = {}

    def layout(self, name: str) -> ClipLayout:
        """The clip called `name` in CLIP_CATALOG, made now if it does not exist yet."""
        if name not in self._made:
            file_name, arguments = CLIP_CATALOG[name]
            self._made[name] = self._shared(file_name, arguments)
        return self._made[name]

    def _shared(self, file_name: str, arguments: dict[str, Any]) -> ClipLayout:
        """The clip `file_name` made by `make_clip(**arguments)`: made here unless another
        process made it already. It appears under its name whole (made under a hidden name,
        renamed), and the lock keeps two processes from spending the time to make it twice."""
        path = self.directory / file_name
        self._once(path, lambda partial: make_clip(partial, **arguments))
        return clip_layout(path, **arguments)

    def _once(self, path: Path, make: Callable[[Path], object]) -> None:
        """Have `make` write `path` (under a hidden name, renamed) unless it exists."""
        with (self.directory / f".{path.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            if not path.exists():
                partial = path.with_name(f".partial-{path.name}")
                make(partial)
                os.replace(partial, path)

    def fast_start(self, name: str = "basic") -> Path:
        """The clip `name` with its index first (`-movflags +faststart`, the streams copied):
        what the fake NemoVideo serves as a render, since the pipeline refuses a result
        that is not fast-start."""
        source = self.layout(name).path
        path = self.directory / f"{source.stem}-faststart{source.suffix}"
        command = [str(TOOL_FFMPEG), "-v", "error", "-y", "-i", str(source), "-c", "copy"]
        self._once(
            path,
            lambda partial: subprocess.run(
                [*command, "-movflags", "+faststart", str(partial)],
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
            ),
        )
        return path

    @property
    def basic(self) -> Path:
        """3 s, 160x120 at 25 fps, a steady 440 Hz tone (44.1 kHz mono AAC)."""
        return self.layout("basic").path

    @property
    def silences(self) -> Path:
        """10 s of speech-like tone, silent 2–4 s and 6–8.5 s."""
        return self.layout("silences").path

    @property
    def three_pauses(self) -> Path:
        """8 s, 64x36 at 10 fps, speech-like tone with three pauses: 1.5–2.5 s, 3.5–4.7 s
        and 5.8–6.8 s (`layout("three_pauses").silences`)."""
        return self.layout("three_pauses").path

    @property
    def no_audio(self) -> Path:
        """2 s of video without any audio stream."""
        return self.layout("no_audio").path

    @property
    def portrait(self) -> Path:
        """1 s, 120x160 (taller than wide), tone."""
        return self.layout("portrait").path

    @property
    def matroska(self) -> Path:
        """2 s in Matroska, whose streams state no duration of their own."""
        return self.layout("matroska").path

    @property
    def long(self) -> Path:
        """30 s, 320x240, tone: long enough that rendering it takes a moment (about 1 s)."""
        return self.layout("long").path

    @property
    def long_tiny(self) -> Path:
        """15 s, 64x36 at 10 fps, tone: a twentieth of `long`'s CPU to render. Read at 5 times
        real time (tests/e2e/conftest.py's `paced_ffmpeg`), its render lasts 3 s."""
        return self.layout("long_tiny").path

    @property
    def two_minutes(self) -> Path:
        """120 s, 160x90 at 30 fps: a talk of 2–8 s phrases of differing loudness between
        0.6–2 s silences, in five shots (scene changes at 17, 41, 66, 90 and 104 s).
        `layout("two_minutes")` has its phrases, silences and scene changes."""
        return self.layout("two_minutes").path

    def distinct(self, count: int) -> list[Path]:
        """`count` 1 s clips whose contents all differ (each has its own tone)."""
        paths = []
        for index in range(count):
            name = f"distinct-{index:03d}"
            if name not in self._made:
                arguments = {"seconds": 1, "tone_hz": 300 + 7 * index}
                self._made[name] = self._shared(f"{name}.mp4", arguments)
            paths.append(self._made[name].path)
        return paths
