"""Pictures of an edit: the timeline drawn to scale as SVG, and a strip of thumbnails.

The timeline (`svg_for_draft`, `svg_for_plan`) is pure: a Draft (and, when known, the
source's waveform) in, SVG text out. It draws, on one time scale,

- the source: its waveform, the stretches the edit keeps (`class="kept"`) and those it
  cuts (`class="cut"`), each rect with `data-start`/`data-end` in source seconds;
- the output: the kept pieces where they play (`class="piece"`, output seconds), joined
  to their place in the source, a loop's further passes (`class="repeat"`), and the
  output's whole duration (`class="output"`);
- the music bed (`class="music"`), its volume line with fades and ducking
  (`class="volume"`) and the windows it is ducked under (`class="duck"`);
- titles and texts (`class="title"`) and captions (`class="caption"`) as bars;
- a legend. Plain SVG: no script, no external font, no stylesheet (the shapes carry
  their colours), so a web page can inline it as it is.

The effectful parts are small and apart: `waveform_of` (one FFmpeg run reading the
source's sound at a low sample rate) and `thumbnails` (one FFmpeg run tiling frames of an
output into one JPEG).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from nemowatch.engines.base import AUDIO_TRACK, JSON, TEXT_TRACK, VIDEO_TRACK, Draft, Track
from nemowatch.engines.local.analysis import LOUDNESS_WINDOW, Analysis, Level
from nemowatch.engines.local.ffmpeg import choose_ffmpeg, stderr_tail
from nemowatch.errors import EngineError
from nemowatch.probe import probe

if TYPE_CHECKING:
    from nemowatch.engines.local.engine import LocalPlan

WIDTH = 960  # pixels, the whole picture
LABELS = 84  # the left column, for row names
MARGIN = 16
PLOT = WIDTH - LABELS - MARGIN  # the width the longer timeline fills
ROW = 34  # height of a bar row
SOURCE_ROW = 64  # the source's row (the waveform needs room)
FLOOR_DB = -60.0  # the waveform's silence; louder is taller
WAVEFORM_RATE = 4000  # Hz: enough to see speech, little to read
WAVEFORM_STEP = 0.05  # seconds per waveform value
CHARACTER = 6.0  # pixels: the width of a character of 11 px sans-serif text, about
THUMB_WIDTH = 160  # pixels, each thumbnail of the strip
FONT = 'font-family="sans-serif"'  # the viewer's own: no font is fetched

COLOURS = {
    "kept": "#3a9d5d",
    "cut": "#d64545",
    "waveform": "#44536a",
    "piece": "#3a9d5d",
    "repeat": "#3a9d5d",
    "output": "#e4e8ee",
    "map": "#3a9d5d",
    "music": "#b98ee0",
    "volume": "#6a3d9a",
    "duck": "#5b5f66",
    "title": "#e0a030",
    "caption": "#3f88c5",
    "text": "#222222",
    "faint": "#8a94a3",
}


@dataclass(frozen=True)
class Waveform:
    """The source's sound, one peak level (dBFS, -inf: digital silence) per `step` seconds."""

    step: float
    levels: tuple[float, ...]

    @property
    def duration(self) -> float:
        return self.step * len(self.levels)

    @classmethod
    def of_analysis(cls, analysis: Analysis) -> Waveform | None:
        """What the analysis measured already (the 100 ms levels, else the loudness
        windows), or None when it measured neither."""
        if analysis.levels:
            return cls(Level.STEP, tuple(level.peak for level in analysis.levels))
        if analysis.loudness:
            return cls(LOUDNESS_WINDOW, tuple(level for _, level in analysis.loudness))
        return None


@dataclass(frozen=True)
class _Stretch:
    start: float
    end: float


@dataclass(frozen=True)
class _Piece:
    """A kept stretch: where it is in the source, and where it plays in the output."""

    source: _Stretch | None
    output: _Stretch


@dataclass(frozen=True)
class _Bar:
    kind: str  # title | caption
    text: str
    start: float
    end: float


# ---- the timeline ----------------------------------------------------------------------------


def svg_for_plan(plan: LocalPlan, waveform: Waveform | None = None) -> str:
    """The timeline of the local engine's plan (what `explain --picture` draws): the
    waveform given, else what the analysis measured, else none."""
    shown = waveform or Waveform.of_analysis(plan.analysis)
    return svg_for_timeline(plan.draft, waveform=shown, source_duration=plan.analysis.duration)


def svg_for_draft(
    draft: Draft, source: Path | None = None, *, ffmpeg: str | os.PathLike[str] | None = None
) -> str:
    """The timeline of a job's draft (as the ledger keeps it). With `source`, an existing
    file, the waveform is read from it (one FFmpeg run; blocking); else none is drawn."""
    waveform = waveform_of(source, ffmpeg=ffmpeg) if source is not None else None
    return svg_for_timeline(draft, waveform=waveform)


def svg_for_timeline(
    draft: Draft, *, waveform: Waveform | None = None, source_duration: float | None = None
) -> str:
    """The picture of `draft`, pure. `source_duration` (seconds) when the draft may not
    know it (drafts of the nemo engine); the waveform is drawn on the source's row."""
    pieces = _pieces(draft)
    source_end = source_duration or _source_end(draft, pieces, waveform)
    output_end = draft.duration or max((piece.output.end for piece in pieces), default=0.0)
    longest = max(source_end or 0.0, output_end, 0.001)
    scale = PLOT / longest  # pixels per second, the same for every row
    shapes: list[str] = []
    y = 44.0
    shapes.append(_heading(draft, pieces, source_end, output_end))
    if source_end and any(piece.source for piece in pieces):
        shapes += _source_row(pieces, source_end, waveform, scale, y)
        shapes += _axis(source_end, scale, y + SOURCE_ROW + 4)
        y += SOURCE_ROW + 22
        shapes += _mapping(pieces, scale, y, y + 26)
        y += 26
    shapes += _output_row(pieces, output_end, scale, y)
    y += ROW + 2
    shapes += _axis(output_end, scale, y)
    y += 20
    music = _track(draft, AUDIO_TRACK, "music")
    if music is not None:
        shapes += _music_row(music, output_end, scale, y)
        y += ROW + 8
    texts = _bars(draft)
    for kind, bars in texts.items():
        if bars:
            shapes += _bar_row(kind, bars, scale, y)
            y += ROW + 8
    legend, y = _legend(music is not None, texts, y + 6)
    shapes += legend
    height = round(y + 10)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" role="img" class="nemowatch-timeline"'
        f' {FONT} font-size="12">\n'
        f"<title>{escape(_summary(draft, pieces, source_end, output_end))}</title>\n"
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>\n'
        + "\n".join(shapes)
        + "\n</svg>\n"
    )


def _heading(
    draft: Draft, pieces: Sequence[_Piece], source_end: float | None, output_end: float
) -> str:
    return _text(MARGIN, 24, _summary(draft, pieces, source_end, output_end), size=14, bold=True)


def _summary(
    draft: Draft, pieces: Sequence[_Piece], source_end: float | None, output_end: float
) -> str:
    name = draft.metadata.get("source")
    what = f"{name}: " if isinstance(name, str) and name else ""
    source = f"source {_seconds(source_end)} → " if source_end else ""
    cut = _cuts(pieces, source_end) if source_end else []
    cuts = f", {len(cut)} cut{'s' if len(cut) != 1 else ''}" if source_end else ""
    count = len(pieces)
    return (
        f"{what}{source}output {_seconds(output_end)}"
        f" ({count} piece{'s' if count != 1 else ''}{cuts})"
    )


def _source_row(
    pieces: Sequence[_Piece],
    source_end: float,
    waveform: Waveform | None,
    scale: float,
    top: float,
) -> list[str]:
    shapes = [_label("source", top + SOURCE_ROW / 2)]
    for piece in pieces:
        if piece.source is not None:
            shapes.append(_rect("kept", piece.source, scale, top, SOURCE_ROW, opacity=0.22))
    for cut in _cuts(pieces, source_end):
        shapes.append(_rect("cut", cut, scale, top, SOURCE_ROW, opacity=0.35))
    if waveform is not None and waveform.levels:
        shapes.append(_waveform(waveform, min(source_end, waveform.duration), scale, top))
    else:
        shapes.append(_text(LABELS + 6, top + SOURCE_ROW / 2 + 4, "(no waveform)", colour="faint"))
    return shapes


def _waveform(waveform: Waveform, end: float, scale: float, top: float) -> str:
    """A filled outline, mirrored about the row's middle, one column per 2 pixels."""
    middle = top + SOURCE_ROW / 2
    columns = max(1, math.ceil(end * scale / 2))
    per_column = end / columns
    upper: list[str] = []
    for column in range(columns):
        first = int(column * per_column / waveform.step)
        last = max(first + 1, int((column + 1) * per_column / waveform.step))
        level = max(waveform.levels[first:last], default=-math.inf)
        height = max(0.0, min(1.0, (level - FLOOR_DB) / -FLOOR_DB)) * (SOURCE_ROW / 2 - 3)
        x = LABELS + (column + 0.5) * per_column * scale
        upper.append(f"{x:.1f},{middle - height:.1f}")
    lower = [
        f"{point.split(',')[0]},{2 * middle - float(point.split(',')[1]):.1f}" for point in upper
    ]
    points = " ".join(upper + lower[::-1])
    return (
        f'<polygon class="waveform" points="{points}" fill="{COLOURS["waveform"]}"'
        ' fill-opacity="0.75"/>'
    )


def _mapping(pieces: Sequence[_Piece], scale: float, top: float, bottom: float) -> list[str]:
    """Each kept stretch joined to where it plays: the cuts close the gaps."""
    shapes = []
    for piece in pieces:
        if piece.source is None:
            continue
        points = (
            (piece.source.start, top),
            (piece.source.end, top),
            (piece.output.end, bottom),
            (piece.output.start, bottom),
        )
        shown = " ".join(f"{LABELS + time * scale:.1f},{y:.1f}" for time, y in points)
        shapes.append(
            f'<polygon class="map" points="{shown}" fill="{COLOURS["map"]}" fill-opacity="0.12"/>'
        )
    return shapes


def _output_row(pieces: Sequence[_Piece], output_end: float, scale: float, top: float) -> list[str]:
    whole = _Stretch(0.0, output_end)
    shapes = [_label("output", top + ROW / 2), _rect("output", whole, scale, top, ROW)]
    for piece in pieces:
        shapes.append(_rect("piece", piece.output, scale, top + 3, ROW - 6, opacity=0.8))
    # a loop plays the pieces (one pass) again: the passes after the first, fainter
    pass_end = max((piece.output.end for piece in pieces), default=0.0)
    passes = round(output_end / pass_end) if pass_end > 0 else 1
    for again in range(1, passes):
        for piece in pieces:
            shifted = _Stretch(
                piece.output.start + again * pass_end, piece.output.end + again * pass_end
            )
            shapes.append(_rect("repeat", shifted, scale, top + 3, ROW - 6, opacity=0.4))
    end_x = LABELS + output_end * scale
    shapes.append(
        _text(end_x + 4, top + ROW / 2 + 4, _seconds(output_end), colour="faint")
        if end_x + 60 < WIDTH
        else _text(end_x - 4, top - 4, _seconds(output_end), colour="faint", anchor="end")
    )
    return shapes


def _music_row(track: Track, output_end: float, scale: float, top: float) -> list[str]:
    metadata = track.get("m") or {}
    span = _span_of(track, output_end)
    name = Path(str(metadata.get("source", "music"))).stem
    volume = _number(metadata.get("volume"))
    level = f" {round(volume * 100)} %" if volume is not None else ""
    shapes = [_label("music", top + ROW / 2)]
    rect = _rect("music", span, scale, top, ROW, opacity=0.35)
    shapes.append(rect.replace("/>", f" data-source={quoteattr(name)}/>"))
    duck = metadata.get("duck")
    windows = _windows(duck.get("under")) if isinstance(duck, dict) else []
    for window in windows:
        shapes.append(_rect("duck", window, scale, top, ROW, opacity=0.18))
    shapes.append(_volume_line(metadata, span, windows, scale, top))
    shapes.append(_text(LABELS + span.start * scale + 4, top + 13, f"{name}{level}", size=11))
    return shapes


def _volume_line(
    metadata: dict[str, JSON], span: _Stretch, windows: Sequence[_Stretch], scale: float, top: float
) -> str:
    """The music's level over time, a point every 2 pixels: up through the fade in, down
    under each ducked window, out through the fade out (the shape the render plays; the
    heights are not to a decibel scale)."""
    full, ducked, silent = top + 8, top + ROW - 12, top + ROW - 2
    fade_in = _number(metadata.get("fade_in")) or 0.0
    fade_out = _number(metadata.get("fade_out")) or 0.0
    columns = max(1, math.ceil((span.end - span.start) * scale / 2))
    points = []
    for column in range(columns + 1):
        time = span.start + (span.end - span.start) * column / columns
        fade = min(
            1.0,
            (time - span.start) / fade_in if fade_in else 1.0,
            (span.end - time) / fade_out if fade_out else 1.0,
        )
        under = any(window.start <= time <= window.end for window in windows)
        level = (ducked if under else full) * fade + silent * (1 - fade)
        points.append(f"{LABELS + time * scale:.1f},{level:.1f}")
    return (
        f'<polyline class="volume" points="{" ".join(points)}" fill="none"'
        f' stroke="{COLOURS["volume"]}" stroke-width="1.5"/>'
    )


def _bar_row(kind: str, bars: Sequence[_Bar], scale: float, top: float) -> list[str]:
    shapes = [_label("captions" if kind == "caption" else "texts", top + ROW / 2)]
    for bar in bars:
        stretch = _Stretch(bar.start, bar.end)
        shapes.append(
            _rect(kind, stretch, scale, top + 4, ROW - 8, opacity=0.7).replace(
                "/>", f"><title>{escape(bar.text)}</title></rect>"
            )
        )
        width = (bar.end - bar.start) * scale
        if kind == "title" and width > 30:  # a caption's words would not fit
            fits = int((width - 8) / CHARACTER)  # characters of 11 px text, about
            shown = bar.text if len(bar.text) <= fits else bar.text[: max(1, fits - 1)] + "…"
            shapes.append(_text(LABELS + bar.start * scale + 4, top + ROW / 2 + 4, shown, size=11))
    return shapes


def _axis(end: float, scale: float, top: float) -> list[str]:
    """Ticks every 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10 min...: at most about twelve."""
    step = next(
        (step for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600) if end / step <= 12),
        7200,
    )
    shapes = []
    tick = 0.0
    while tick <= end + 1e-9:
        x = LABELS + tick * scale
        shapes.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{top + 4:.1f}"'
            f' stroke="{COLOURS["faint"]}"/>'
        )
        shapes.append(_text(x, top + 15, _clock(tick), size=10, colour="faint", anchor="middle"))
        tick += step
    return shapes


def _legend(music: bool, bars: dict[str, list[_Bar]], top: float) -> tuple[list[str], float]:
    entries = [("kept", "kept"), ("cut", "cut"), ("waveform", "source sound")]
    if music:
        entries += [("volume", "music level"), ("duck", "ducked under speech")]
    entries += [(kind, name) for kind, name in (("title", "title / text"), ("caption", "caption"))
                if bars.get(kind)]  # fmt: skip
    shapes = []
    x = float(LABELS)
    for kind, name in entries:
        shapes.append(
            f'<rect class="legend-{kind}" x="{x:.1f}" y="{top:.1f}" width="12" height="12"'
            f' fill="{COLOURS[kind]}" fill-opacity="0.7"/>'
        )
        shapes.append(_text(x + 16, top + 10, name, size=11))
        x += 16 + len(name) * CHARACTER + 24
    return shapes, top + 14


# ---- reading the draft ----------------------------------------------------------------------


def _pieces(draft: Draft) -> list[_Piece]:
    track = _track(draft, VIDEO_TRACK)
    pieces = []
    for item in (track.get("sg") or []) if track is not None else []:
        at, length = _number(item.get("at")), _number(item.get("d"))
        if at is None or length is None:
            continue
        start, end = _number(item.get("s")), _number(item.get("e"))
        source = (
            _Stretch(start / 1000, end / 1000) if start is not None and end is not None else None
        )
        pieces.append(_Piece(source, _Stretch(at / 1000, (at + length) / 1000)))
    return pieces


def _source_end(draft: Draft, pieces: Sequence[_Piece], waveform: Waveform | None) -> float | None:
    stated = _number(draft.metadata.get("source_duration_ms"))
    if stated:
        return stated / 1000
    if waveform is not None and waveform.levels:
        return waveform.duration
    ends = [piece.source.end for piece in pieces if piece.source is not None]
    return max(ends) if ends else None


def _cuts(pieces: Sequence[_Piece], source_end: float) -> list[_Stretch]:
    """The stretches of the source no piece keeps (shorter than a millisecond: none)."""
    kept = sorted((piece.source for piece in pieces if piece.source), key=lambda s: s.start)
    cuts = []
    position = 0.0
    for stretch in kept:
        if stretch.start - position >= 0.001:
            cuts.append(_Stretch(position, stretch.start))
        position = max(position, stretch.end)
    if source_end - position >= 0.001:
        cuts.append(_Stretch(position, source_end))
    return cuts


def _track(draft: Draft, kind: int, name: str | None = None) -> Track | None:
    for track in draft.tracks:
        metadata = track.get("m") or {}
        if track.get("tt") == kind and (name is None or metadata.get("kind") == name):
            return track
    return None


def _bars(draft: Draft) -> dict[str, list[_Bar]]:
    bars: dict[str, list[_Bar]] = {"title": [], "caption": []}
    for track in draft.tracks:
        if track.get("tt") != TEXT_TRACK:
            continue
        kind = "caption" if (track.get("m") or {}).get("kind") == "captions" else "title"
        for item in track.get("sg") or []:
            at, length = _number(item.get("at")), _number(item.get("d"))
            if at is not None and length is not None:
                text = str(item.get("text", ""))
                bars[kind].append(_Bar(kind, text, at / 1000, (at + length) / 1000))
    return bars


def _span_of(track: Track, output_end: float) -> _Stretch:
    segments = track.get("sg") or []
    starts = [_number(item.get("at")) for item in segments]
    ends = [(_number(item.get("at")) or 0.0) + (_number(item.get("d")) or 0.0) for item in segments]
    known = [start for start in starts if start is not None]
    if not known:
        return _Stretch(0.0, output_end)
    return _Stretch(min(known) / 1000, max(ends) / 1000)


def _windows(value: JSON) -> list[_Stretch]:
    found = []
    for window in value if isinstance(value, list) else []:
        if isinstance(window, list) and len(window) == 2:
            start, end = _number(window[0]), _number(window[1])
            if start is not None and end is not None:
                found.append(_Stretch(start / 1000, end / 1000))
    return found


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


# ---- drawing helpers -------------------------------------------------------------------------


def _rect(
    kind: str, stretch: _Stretch, scale: float, top: float, height: float, opacity: float = 1.0
) -> str:
    x = LABELS + stretch.start * scale
    width = max(0.5, (stretch.end - stretch.start) * scale)
    return (
        f'<rect class="{kind}" data-start="{stretch.start:.3f}" data-end="{stretch.end:.3f}"'
        f' x="{x:.2f}" y="{top:.1f}" width="{width:.2f}" height="{height:.1f}"'
        f' fill="{COLOURS[kind]}" fill-opacity="{opacity:g}"/>'
    )


def _label(name: str, middle: float) -> str:
    return _text(LABELS - 8, middle + 4, name, anchor="end", bold=True)


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 12,
    colour: str = "text",
    anchor: str = "start",
    bold: bool = False,
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{COLOURS[colour]}"'
        f' text-anchor="{anchor}"{weight}>{escape(text)}</text>'
    )


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.1f} s"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60}:{whole % 60:02d}"


# ---- the effectful parts: one FFmpeg run each ------------------------------------------------


def waveform_of(source: Path, *, ffmpeg: str | os.PathLike[str] | None = None) -> Waveform | None:
    """The peak level of `source`'s first sound stream every WAVEFORM_STEP seconds, read by
    one FFmpeg run at WAVEFORM_RATE Hz mono; None for a file that is not there or has no
    sound (the picture is drawn without it). Raises EngineError when FFmpeg cannot start."""
    if not source.is_file():
        return None
    binary = choose_ffmpeg(ffmpeg).ffmpeg.path
    arguments = [
        os.fspath(binary), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source),
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(WAVEFORM_RATE), "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    result = _run(arguments, binary)
    if result.returncode != 0:
        return None  # no sound stream, or none FFmpeg can read: no waveform
    samples = array("h")
    samples.frombytes(result.stdout[: len(result.stdout) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    per_step = round(WAVEFORM_RATE * WAVEFORM_STEP)
    levels = []
    for first in range(0, len(samples), per_step):
        chunk = samples[first : first + per_step]
        peak = max(max(chunk), -min(chunk)) / 32768
        levels.append(20 * math.log10(peak) if peak > 0 else -math.inf)
    return Waveform(WAVEFORM_STEP, tuple(levels))


def thumbnails(
    video: Path, count: int = 6, *, ffmpeg: str | os.PathLike[str] | None = None
) -> bytes:
    """One JPEG of `count` frames of `video` side by side, evenly spread over it (the
    first at its start), each THUMB_WIDTH pixels wide: one FFmpeg run (fps, scale, tile).
    Raises MediaError for a file that is not a readable video, EngineError when FFmpeg fails."""
    if count < 1:
        raise ValueError("count must be at least 1")
    facts = probe(video)
    duration = (facts.video.duration if facts.video else None) or facts.duration
    if facts.video is None or not duration:
        raise EngineError(f"{video.name} has no picture to take thumbnails from")
    binary = choose_ffmpeg(ffmpeg).ffmpeg.path
    graph = (
        f"fps={count}/{duration:.6f},scale={THUMB_WIDTH}:-2,"
        f"tile={count}x1:nb_frames={count}"  # an incomplete tile is written too, at the end
    )
    arguments = [
        os.fspath(binary), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(video),
        "-an", "-vf", graph, "-frames:v", "1", "-q:v", "4", "-f", "image2pipe", "-c:v", "mjpeg",
        "pipe:1",
    ]  # fmt: skip
    result = _run(arguments, binary)
    if result.returncode != 0 or not result.stdout:
        stderr = stderr_tail(result.stderr.decode("utf-8", "replace"))
        raise EngineError(
            f"ffmpeg could not take thumbnails of {video.name} (exit {result.returncode}): {stderr}"
        )
    return result.stdout


def _run(arguments: list[str], binary: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            arguments, stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"could not run ffmpeg ({binary}): {exc}") from exc
