"""Audio analysis for the local engine: where the silences are.

One audio-only FFmpeg pass (`silencedetect`, no video decoding) whose stderr is parsed
by a pure function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nemowatch.engines.local.ffmpeg import run_ffmpeg
from nemowatch.rules import SilenceCut

_SILENCE_START = re.compile(r"\bsilence_start:\s*(-?[\d.]+(?:e-?\d+)?)")
_SILENCE_END = re.compile(r"\bsilence_end:\s*(-?[\d.]+(?:e-?\d+)?)")


@dataclass(frozen=True)
class Silence:
    """A stretch of the source, in seconds, quieter than the threshold."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def shortest_silence(cut: SilenceCut) -> float:
    """The shortest silence worth detecting: after its margins it is still `min_cut` long."""
    return cut.min_cut + 2 * cut.margin


def silencedetect_arguments(source: Path, cut: SilenceCut) -> list[str]:
    """FFmpeg arguments for the silence pass over the first audio stream of `source`."""
    detector = (
        f"silencedetect=n={format_number(cut.threshold_db)}dB"
        f":d={format_number(shortest_silence(cut))}"
    )
    return [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-vn",  # as an input option: the video is never decoded
        "-sn",
        "-dn",
        "-i",
        str(source),
        "-map",
        "0:a:0",
        "-af",
        detector,
        "-f",
        "null",
        "-",
    ]


def parse_silencedetect(stderr: str, duration: float | None = None) -> list[Silence]:
    """The silences that `silencedetect` reported in `stderr`, in order.

    A silence still open when the audio ends runs to `duration` (dropped if unknown).
    """
    silences: list[Silence] = []
    start: float | None = None
    for line in stderr.splitlines():
        if (found := _SILENCE_START.search(line)) is not None:
            start = max(0.0, float(found.group(1)))
        elif (found := _SILENCE_END.search(line)) is not None and start is not None:
            silences.append(Silence(start, float(found.group(1))))
            start = None
    if start is not None and duration is not None and duration > start:
        silences.append(Silence(start, duration))
    return silences


async def detect_silences(
    source: Path, cut: SilenceCut, *, ffmpeg: Path, duration: float | None
) -> list[Silence]:
    """Run the silence pass on `source` (which must have an audio stream)."""
    stderr = await run_ffmpeg(silencedetect_arguments(source, cut), ffmpeg=ffmpeg)
    return parse_silencedetect(stderr, duration)


def format_number(value: float) -> str:
    """A number as FFmpeg reads it: no exponent, no trailing zeros ("0.6", "-28", "2.04")."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
