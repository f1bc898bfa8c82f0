"""Tiny test clips, generated with the same FFmpeg binary the local engine uses.

Video is FFmpeg's `testsrc2` pattern; audio is a steady tone, nothing, or a "speech-like"
tone (220 Hz, its loudness swinging 4 times a second like syllables) switched to exact
digital silence during given intervals.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nemowatch.engines.local.ffmpeg import find_ffmpeg

AudioKind = Literal["tone", "none", "speech_with_silences"]

SPEECH = "0.5*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*4*t))"
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
    sample_rate: int = 44100,
    channels: int = 1,
    tone_hz: float = 440.0,
    ffmpeg: Path | None = None,
) -> ClipLayout:
    """Write a clip to `path` (container chosen by its extension) and describe it.

    The defaults (44.1 kHz mono) differ from what the engine outputs (48 kHz stereo) on
    purpose, so tests see the conversion happen.
    """
    binary = ffmpeg or find_ffmpeg()
    length = _number(seconds)
    arguments = [str(binary), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    arguments += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={length}"]
    if audio != "none":
        expression = f"0.4*sin(2*PI*{_number(tone_hz)}*t)" if audio == "tone" else SPEECH
        # Commas inside a filter's arguments are escaped for the filter graph parser.
        gates = "".join(
            f"*not(between(t\\,{_number(start)}\\,{_number(end)}))" for start, end in silences
        )
        channel_expressions = "|".join([expression + gates] * channels)
        arguments += [
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc={channel_expressions}:s={sample_rate}:d={length}",
        ]
    arguments += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    arguments += ["-g", str(fps)]
    if audio == "none":
        arguments += ["-an"]
    else:
        arguments += ["-c:a", "aac", "-b:a", "96k"]
    arguments += [str(path)]
    subprocess.run(arguments, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return ClipLayout(
        path=path,
        seconds=seconds,
        size=size,
        fps=fps,
        audio=audio,
        sample_rate=sample_rate,
        channels=channels,
        silences=tuple(silences) if audio == "speech_with_silences" else (),
    )


def write_random_bytes(path: Path, size: int = 4096, seed: int = 0) -> Path:
    """A file of reproducible noise: what a corrupt or mislabelled upload looks like."""
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def _number(value: float) -> str:
    return f"{value:g}"


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
    "no_audio": ("no_audio.mp4", {"seconds": 2, "audio": "none"}),
    "portrait": ("portrait.mp4", {"seconds": 1, "size": "120x160", "audio": "tone"}),
    "matroska": ("matroska.mkv", {"seconds": 2, "audio": "tone"}),
    "long": ("long.mp4", {"seconds": 30, "size": "320x240", "audio": "tone"}),
}


class Clips:
    """Generated test clips by name: `clips.basic` is a path, `clips.layout("basic")` more.

    The files are shared by the whole session: copy one before changing it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made: dict[str, ClipLayout] = {}

    def layout(self, name: str) -> ClipLayout:
        """The clip called `name` in CLIP_CATALOG, made now if it does not exist yet."""
        if name not in self._made:
            file_name, arguments = CLIP_CATALOG[name]
            self._made[name] = make_clip(self.directory / file_name, **arguments)
        return self._made[name]

    @property
    def basic(self) -> Path:
        """3 s, 160x120 at 25 fps, a steady 440 Hz tone (44.1 kHz mono AAC)."""
        return self.layout("basic").path

    @property
    def silences(self) -> Path:
        """10 s of speech-like tone, silent 2–4 s and 6–8.5 s."""
        return self.layout("silences").path

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

    def distinct(self, count: int) -> list[Path]:
        """`count` 1 s clips whose contents all differ (each has its own tone)."""
        paths = []
        for index in range(count):
            name = f"distinct-{index:03d}"
            if name not in self._made:
                path = self.directory / f"{name}.mp4"
                self._made[name] = make_clip(path, 1, tone_hz=300 + 7 * index)
            paths.append(self._made[name].path)
        return paths
