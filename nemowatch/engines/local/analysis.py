"""Analysis for the local engine: what the planner needs to know about a source.

At most two FFmpeg passes, run at the same time, each parsed by a pure function:

- audio only (`-vn`: the video is never decoded): `silencedetect` for the silences;
  for a highlight reel, `astats` over half-second windows for loudness; and, for the
  loudness normalisation, the sound as the output hears it (48 kHz stereo) measured every
  100 ms (`Level`: its BS.1770 loudness and true peak), from which the render knows the
  loudness of the kept stretches joined without decoding them again (see `loudness`);
- key frames only (`-skip_frame nokey`, shrunk to a thumbnail): `select`'s scene score
  between consecutive key frames, for where the shots change. Encoders put key frames at
  hard cuts and every second or few, so this sees the cuts for a tiny share of the
  decoding work.

Beside them, for captions and filler cuts, speech to text (speech.py) in a thread.

Only what the edit needs is run: nothing for a plain transcode.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nemowatch.engines.local.ffmpeg import run_ffmpeg
from nemowatch.engines.local.speech import Transcript
from nemowatch.rules import EditSpec, SilenceCut

LOUDNESS_WINDOW = 0.5  # seconds of audio per loudness measurement
SILENT_DB = -120.0  # the loudness given to digital silence (astats says -inf)
# The audio is resampled for loudness so a window is a fixed count of samples whatever
# the source's rate; 16 kHz keeps the speech band and costs little.
# The pauses that words are placed by (fillers said on their own): shorter and a little
# deeper than the silences the silence cut removes.
PAUSES = SilenceCut(threshold_db=-40.0, margin=0.0, min_cut=0.12)
_LOUDNESS_RATE = 16000
_LOUDNESS_KEY = "lavfi.astats.Overall.RMS_level"
_CHANNEL_KEYS = ("lavfi.astats.1.RMS_level", "lavfi.astats.2.RMS_level")
_PEAK_KEY = "lavfi.astats.Overall.Peak_level"
# BS.1770's K-weighting at 48 kHz, its two stages as biquads (b0, b1, b2, a1, a2; a0 = 1):
# a high shelf (+4 dB above about 1.7 kHz, the head's effect), then a high pass (the
# "RLB" curve, from about 38 Hz).
_K_WEIGHTING = (
    (1.53512485958697, -2.69169618940638, 1.19839281085285, -1.69065929318241, 0.73248077421585),
    (1.0, -2.0, 1.0, -1.99004745483398, 0.99007225036621),
)
# What the output hears: the render's audio graph takes the source's sound to this rate
# and layout first (graph.AUDIO_SAMPLE_RATE; a mono source is upmixed at -3 dB a side,
# which keeps its BS.1770 loudness: measured after the same conversion, it needs no
# `dualmono` correction).
_LEVEL_RATE = 48000
_TRUE_PEAK_RATE = 4 * _LEVEL_RATE  # BS.1770's true peak: the peak oversampled 4 times
_SCENE_KEY = "lavfi.scene_score"
# Scene scores compare whole frames: a thumbnail scores hard cuts as well as full size.
_THUMBNAIL = "64:36"

_SILENCE_START = re.compile(r"\bsilence_start:\s*(-?[\d.]+(?:e-?\d+)?)")
_SILENCE_END = re.compile(r"\bsilence_end:\s*(-?[\d.]+(?:e-?\d+)?)")
_PTS_TIME = re.compile(r"\bpts_time:\s*(\S+)")


@dataclass(frozen=True)
class Stretch:
    """A stretch of the source, in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Silence(Stretch):
    """A stretch of the source quieter than the threshold."""


@dataclass(frozen=True)
class Segment(Stretch):
    """A stretch of the source to keep (or to consider keeping)."""


@dataclass(frozen=True)
class Level:
    """The source's sound over one 100 ms step, as the output hears it."""

    STEP = 0.1  # seconds

    time: float  # the step's start, in source seconds
    loudness: float  # LUFS of these 100 ms alone (-inf: digital silence)
    peak: float  # dBTP: the step's true peak


@dataclass(frozen=True)
class Analysis:
    """What the analysis passes found in a source; empty where a pass was not needed."""

    duration: float  # source seconds
    silences: tuple[Silence, ...] = ()  # in order, from the audio pass
    # (window start, loudness in dB RMS) per LOUDNESS_WINDOW seconds; empty without audio
    loudness: tuple[tuple[float, float], ...] = ()
    # (time, scene-change score 0..1) at key frames that differ from the one before
    scenes: tuple[tuple[float, float], ...] = ()
    transcript: Transcript | None = None  # the words spoken, for captions and fillers
    pauses: tuple[Silence, ...] = ()  # short quiet stretches (PAUSES), to place fillers by
    levels: tuple[Level, ...] = ()  # every 100 ms, for the loudness normalisation

    def speech(self) -> tuple[Segment, ...]:
        """The stretches between the silences, within [0, duration]."""
        spans: list[Segment] = []
        position = 0.0
        for silence in sorted(self.silences, key=lambda silence: silence.start):
            start = min(max(silence.start, 0.0), self.duration)
            if start > position:
                spans.append(Segment(position, start))
            position = max(position, min(silence.end, self.duration))
        if self.duration > position:
            spans.append(Segment(position, self.duration))
        return tuple(spans)


def snap(time: float, fps: float | None, duration: float) -> float:
    """`time` moved to the nearest frame boundary (and not past the end of the source)."""
    if fps is None or fps <= 0:
        return min(time, duration)
    return min(round(time * fps) / fps, duration)


def shortest_silence(cut: SilenceCut) -> float:
    """The shortest silence worth detecting: after its margins it is still `min_cut` long."""
    return cut.min_cut + 2 * cut.margin


def audio_arguments(
    source: Path, cut: SilenceCut | None, *, loudness: bool, levels: bool = False
) -> list[str]:
    """FFmpeg arguments for the audio pass over the first audio stream of `source`.

    `cut`: silencedetect reports the silences it defines. With `loudness`, the same pass
    also prints the RMS level of every LOUDNESS_WINDOW; with `levels`, each 100 ms step's
    loudness and true peak (`level_chains`).
    """
    chain = []
    if cut is not None:
        chain.append(
            f"silencedetect=n={format_number(cut.threshold_db)}dB"
            f":d={format_number(shortest_silence(cut))}"
        )
    windows: list[str] = []
    if loudness:
        samples = round(LOUDNESS_WINDOW * _LOUDNESS_RATE)
        windows = [
            f"aresample={_LOUDNESS_RATE}",
            f"asetnsamples=n={samples}:p=0",
            "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level",
            f"ametadata=mode=print:key={_LOUDNESS_KEY}",
        ]
    # -vn as an input option: the video is never decoded
    head = ["-hide_banner", "-nostdin", "-nostats", "-vn", "-sn", "-dn", "-i", str(source)]
    tail = ["-f", "null", "-"]
    if not levels:
        return [*head, "-map", "0:a:0", "-af", ",".join(chain + windows), *tail]
    branches = ["[levels]"]
    graph = []
    if windows:  # the windows at 16 kHz beside the levels at 48 kHz
        chain.append("asplit=2")
        branches.insert(0, "[windows]")
        graph.append(f"[windows]{','.join([*windows, 'anullsink'])}")
    head_chain = f"[0:a:0]{','.join(chain or ['anull'])}{''.join(branches)}"
    graph = [head_chain, *graph, *level_chains("[levels]", "[heard]")]
    return [*head, "-filter_complex", ";".join(graph), "-map", "[heard]", *tail]


def level_chains(head: str, tail: str) -> list[str]:
    """Chains that print, for every 100 ms of the sound at `head` taken to 48 kHz stereo as
    the render takes it, its BS.1770 energy (the K-weighted mean square of each channel)
    and its true peak (the sample peak at 4 times the rate); to `tail`."""
    weighting = [
        f"biquad=b0={b0}:b1={b1}:b2={b2}:a0=1:a1={a1}:a2={a2}"
        for b0, b1, b2, a1, a2 in _K_WEIGHTING
    ]
    weighted = [
        *weighting,
        f"asetnsamples=n={round(Level.STEP * _LEVEL_RATE)}:p=0",
        "astats=metadata=1:reset=1:measure_perchannel=RMS_level:measure_overall=none",
        "ametadata=mode=print",
    ]
    oversampled = [
        f"aresample={_TRUE_PEAK_RATE}",
        f"asetnsamples=n={round(Level.STEP * _TRUE_PEAK_RATE)}:p=0",
        "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=Peak_level",
        f"ametadata=mode=print:key={_PEAK_KEY}",
        "anullsink",
    ]
    return [
        f"{head}aresample={_LEVEL_RATE},"
        "aformat=sample_fmts=dblp:channel_layouts=stereo,asplit=2[weighted][oversampled]",
        f"[weighted]{','.join(weighted)}{tail}",
        f"[oversampled]{','.join(oversampled)}",
    ]


def silencedetect_arguments(source: Path, cut: SilenceCut) -> list[str]:
    """FFmpeg arguments for the silence pass alone."""
    return audio_arguments(source, cut, loudness=False)


def scene_arguments(source: Path) -> list[str]:
    """FFmpeg arguments for the scene pass: key frames only, as thumbnails, scored."""
    return [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-skip_frame",
        "nokey",  # the decoder drops every other frame before decoding it
        "-an",
        "-sn",
        "-dn",
        "-i",
        str(source),
        "-map",
        "0:v:0",
        "-vf",
        f"scale={_THUMBNAIL}:flags=fast_bilinear,select='gt(scene\\,0)',"
        f"metadata=mode=print:key={_SCENE_KEY}",
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


def parse_loudness(stderr: str, duration: float | None = None) -> list[tuple[float, float]]:
    """(window start, dB) for each window `astats` measured, silence floored at SILENT_DB.

    A window starting at the end (`duration`) is dropped: FFmpeg 5.1 measures an empty one
    there, as silence.
    """
    return [
        (time, max(SILENT_DB, value))
        for time, value in _printed_metadata(stderr, _LOUDNESS_KEY)
        if duration is None or time < duration - 1e-3
    ]


def parse_levels(stderr: str) -> list[Level]:
    """The 100 ms steps `level_chains` printed: each step's loudness (from the energies of
    its two channels) with the true peak printed for the same time (steps without all
    three are dropped)."""
    peaks = {round(time, 2): value for time, value in _printed_metadata(stderr, _PEAK_KEY)}
    right = {
        round(time, 2): value
        for time, value in _printed_metadata(stderr, _CHANNEL_KEYS[1], nan=-math.inf)
    }
    levels = []
    for time, left in _printed_metadata(stderr, _CHANNEL_KEYS[0], nan=-math.inf):
        other, peak = right.get(round(time, 2)), peaks.get(round(time, 2))
        if other is None or peak is None:
            continue
        # BS.1770: the channels' mean squares summed (front left and right weigh 1)
        energy = 10 ** (left / 10) + 10 ** (other / 10)
        loudness = -0.691 + 10 * math.log10(energy) if energy > 0 else -math.inf
        levels.append(Level(time, loudness, peak))
    return levels


def parse_scene_scores(stderr: str, fps: float | None = None) -> list[tuple[float, float]]:
    """(time, score) for each key frame `select` scored above 0, times on the frame grid."""
    # pts_time is printed with 6 digits: NTSC frame times come back a hair off the grid.
    return [
        (snap(time, fps, math.inf), min(1.0, max(0.0, value)))
        for time, value in _printed_metadata(stderr, _SCENE_KEY)
    ]


async def analyse(
    source: Path,
    spec: EditSpec,
    *,
    ffmpeg: Path,
    duration: float,
    has_audio: bool,
    fps: float | None,
    transcribe: Callable[[], Awaitable[Transcript]] | None = None,
    levels: bool = False,
) -> Analysis:
    """Run the passes `spec` needs on `source`, at the same time, and gather their findings.

    Silences when `spec` cuts them or asks for a highlight (with the default SilenceCut if
    it does not cut them); loudness and scene scores only for a highlight; the words
    (`transcribe`) for captions and filler cuts; the levels (every 100 ms) with `levels`,
    in the same audio pass. A source without audio has no silences, no loudness, no
    levels and no words.
    """
    highlight = spec.max_duration is not None
    silences_needed = spec.cut_silences is not None or highlight
    listen = has_audio and (silences_needed or levels)
    cut = (spec.cut_silences or SilenceCut()) if silences_needed else None

    async def audio_pass() -> tuple[list[Silence], list[tuple[float, float]], list[Level]]:
        if not listen:
            return [], [], []
        arguments = audio_arguments(source, cut, loudness=highlight, levels=levels)
        stderr = await run_ffmpeg(arguments, ffmpeg=ffmpeg)
        return (
            parse_silencedetect(stderr, duration),
            parse_loudness(stderr, duration),
            parse_levels(stderr) if levels else [],
        )

    async def scene_pass() -> list[tuple[float, float]]:
        if not highlight:
            return []
        stderr = await run_ffmpeg(scene_arguments(source), ffmpeg=ffmpeg)
        return parse_scene_scores(stderr, fps)

    async def speech_pass() -> tuple[Transcript | None, list[Silence]]:
        if transcribe is None or not has_audio:
            return None, []
        heard, pauses = await asyncio.gather(
            transcribe(),
            detect_silences(source, PAUSES, ffmpeg=ffmpeg, duration=duration),
        )
        return heard, pauses

    audio_task = asyncio.ensure_future(audio_pass())
    scene_task = asyncio.ensure_future(scene_pass())
    speech_task = asyncio.ensure_future(speech_pass())
    tasks = (audio_task, scene_task, speech_task)
    try:
        (silences, loudness, heard), scenes, (transcript, pauses) = await asyncio.gather(*tasks)
    except BaseException:
        # gather leaves the other passes running when one fails: stop their FFmpeg too.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return Analysis(
        duration=duration,
        silences=tuple(silences),
        loudness=tuple(loudness),
        scenes=tuple(scenes),
        transcript=transcript,
        pauses=tuple(pauses),
        levels=tuple(heard),
    )


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


def _printed_metadata(
    stderr: str, key: str, *, nan: float | None = None
) -> list[tuple[float, float]]:
    """(pts_time, value) for each `key=value` line that `metadata=mode=print` wrote.

    Each frame's values follow a line with its `pts_time`; unreadable values are skipped,
    and so are "nan" ones unless `nan` gives them a value.
    """
    found: list[tuple[float, float]] = []
    time: float | None = None
    prefix = key + "="
    for line in stderr.splitlines():
        if (match := _PTS_TIME.search(line)) is not None:
            time = _number_or_none(match.group(1))  # "NOPTS": a frame without a time
            continue
        position = line.find(prefix)
        if position < 0 or time is None:
            continue
        text = line[position + len(prefix) :].strip()
        value = _number_or_none(text)
        if value is None and nan is not None and text.lower() == "nan":
            value = nan
        if value is not None:
            found.append((time, value))
    return found


def _number_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value
