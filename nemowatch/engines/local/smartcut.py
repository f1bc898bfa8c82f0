"""Smart rendering of a job that only cuts (pure): whole GOPs of the source are copied as
they are, and only the frames from a cut to the next keyframe (and from the last keyframe
to a cut's end) are encoded again.

- `refusal(draft, spec)`: why the edit changes the source's frames (or None): a reframe,
  a new size or frame rate, speed, effects, texts, burned captions or fades all do;
- `source_refusal(video, draft)`: why the source's video cannot be copied into the output
  (or None): see SourceVideo and the rules in `source_refusal`;
- `plan_pieces(video, cuts)`: per kept segment, the head encoded, the whole GOPs copied,
  the tail encoded (`Piece`s in playing order);
- `decode_plan`, `run_starts`, `encode_arguments`, `join_arguments`: what the encode run
  decodes and keeps, where its IDR frames go, and the FFmpeg runs.

The pieces travel as H.264 Annex-B streams (start codes, the parameter sets in-band
before every keyframe), each frame one access unit: the copied packets are converted as
FFmpeg's `h264_mp4toannexb` does (`annexb`), the encoded ones come from x264 in that form.
They are joined and put into the container once: a source without B-frames decodes in
the order it plays, so the joined stream is timed from the frame rate by FFmpeg
(`-framerate`); one with B-frames is muxed packet by packet with the times the plan
gives each (`smartrender`). Either way the frames keep their order and count exactly.
A decoder meets each piece's SPS and PPS right before the IDR frame that starts it, so
the copied and the encoded pieces may differ in them. The plan counts frames in playing
order; in closed GOPs (the only ones copied) a GOP's frames are the same in decoding
order, between the same two IDR frames.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Literal

from nemowatch.engines.base import Draft
from nemowatch.engines.local.effects import Effects
from nemowatch.engines.local.timeline import Cut, TimelineFacts, fps_value, texts_of
from nemowatch.rules import ExportSpec, Quality

# The containers whose H.264 may be copied: the output's (H.264 High in MP4 or MOV).
COPY_FORMATS = frozenset({"mp4", "mov"})


# H.264 profiles the output (High) can hold, and x264's name for each.
PROFILES = {
    "High": "high",
    "Main": "main",
    "Constrained Baseline": "baseline",
    "Baseline": "baseline",
}


# FFmpeg's numbers for the colour tags (AVColorPrimaries, ...) and x264's names for them;
# a tag missing here (or unspecified) is left for the encoder to leave unspecified too.
PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}
TRANSFERS = {1: "bt709", 6: "smpte170m", 7: "smpte240m", 13: "iec61966-2-1"}
MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc"}


# A frame is kept when it starts within a quarter frame of a kept stretch (the cuts are
# on the source's frame grid: see `cuts_of`), as FFmpeg's `trim` keeps it.
FRAME_TOLERANCE = 0.25


# How far a timestamp may stray from the regular grid, in ticks of the time base (a 1 ms
# time base holds 30 fps as 33, 33, 34, ...) and the frame rate from the draft's.
GRID_TICKS = 1
FPS_TOLERANCE = 0.01


@dataclass(frozen=True)
class Packet:
    """One frame of the source's video, in decoding order."""

    pts: int  # in the stream's time base
    keyframe: bool  # an IDR frame: decoding can start here, no frame before it is needed
    dts: int | None = None  # when it decodes (None: not stored)


@dataclass(frozen=True)
class SourceVideo:
    """What smart rendering reads of the source's video stream (no frame decoded)."""

    codec: str  # "h264", "hevc", ...
    profile: str | None  # "High", "Main", ...
    level: int  # level_idc (40 is 4.0)
    pixel_format: str | None
    width: int  # coded, before any rotation
    height: int
    time_base: Fraction
    start: Fraction  # the file's start (seconds), which the render's times count from
    reorders: bool  # B-frames: frames decode in another order than they play
    rotated: bool  # the container asks players to rotate the picture
    length_prefixed: bool  # MP4-style packets (the parameter sets in the extradata)
    color_range: int
    color_primaries: int
    color_trc: int
    colorspace: int
    packets: tuple[Packet, ...]
    # keyframes (sync samples) that are no IDR frame: I frames of open GOPs, whose
    # leading frames refer to the GOP before
    open_keyframes: int = 0

    @cached_property
    def order(self) -> list[int]:
        """The packets' indices (decoding order) in playing order: frame i of the output's
        plan is packet `order[i]`. The plan counts frames in playing order."""
        return sorted(range(len(self.packets)), key=lambda index: self.packets[index].pts)

    @cached_property
    def times(self) -> list[float]:
        """When each frame plays (in playing order), in the render's seconds."""
        return [
            float(self.packets[index].pts * self.time_base - self.start) for index in self.order
        ]

    @cached_property
    def keyframes(self) -> list[int]:
        """The IDR frames, as frame indices (playing order)."""
        return [frame for frame, index in enumerate(self.order) if self.packets[index].keyframe]

    @cached_property
    def reorder_delay(self) -> int:
        """How many frames later than it plays a frame is decoded, at most (0: no
        B-frames); the output's decoding times lag its playing times by this many frames."""
        played = {index: frame for frame, index in enumerate(self.order)}
        return max((index - played[index] for index in range(len(self.packets))), default=0)

    def decoding(self, first: int, end: int) -> tuple[int, int]:
        """The packets (decoding order) of frames `first` to `end`, GOP boundaries (in a
        closed GOP a keyframe is the first of its GOP in both orders, so the frames of
        whole GOPs are the packets between the same two keyframes)."""
        count = len(self.packets)
        return (self.order[first] if first < count else count), (
            self.order[end] if end < count else count
        )

    @property
    def rate(self) -> float:
        """Frames a second, over the whole stream (0.0 for a single frame)."""
        span = (
            (self.packets[self.order[-1]].pts - self.packets[self.order[0]].pts)
            if self.packets
            else 0
        )
        return (len(self.packets) - 1) / float(span * self.time_base) if span > 0 else 0.0


@dataclass(frozen=True)
class Piece:
    """Frames `first` to `end` (exclusive, indices into SourceVideo.packets) of the output,
    copied as they are or encoded again."""

    kind: Literal["copy", "encode"]
    first: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.first


@dataclass(frozen=True)
class DecodeEntry:
    """A run of packets the encode run decodes: from a keyframe (`first`) to `end`
    (exclusive), source packet indices."""

    first: int
    end: int


def refusal(draft: Draft, spec: ExportSpec) -> str | None:
    """Why smart rendering does not apply to `draft` exported as `spec`, or None when the
    edit keeps the source's frames as they are (cuts only) and the export asks for it.

    `smart: auto` applies at `quality: high` only: a copied GOP is the source's own
    picture, which no encode of it can better, so it meets the quality asked; `medium` and
    `low` ask for a smaller file than a phone's, which copying would not give.
    """
    if spec.smart == "off":
        return "smart rendering is off"
    if spec.quality is not Quality.HIGH:
        return f"quality is {spec.quality.value} (smart rendering keeps the source's bitrate)"
    if spec.format not in COPY_FORMATS:
        return f"the output is {spec.format}, not H.264"
    facts = TimelineFacts.of(draft)
    if facts.source_size is None or facts.source_fps is None or not facts.sized:
        return "the draft does not know the source's size or frame rate"
    if facts.output_size != facts.source_size:
        return "the output's size differs from the source's"
    if facts.aspect is not None:
        return "the edit changes the aspect"
    if not math.isclose(facts.speed, 1.0):
        return "the edit changes the speed"
    if facts.fps is None or abs(facts.fps - facts.source_fps) > FPS_TOLERANCE:
        return "the output's frame rate differs from the source's"
    if facts.fade_in or facts.fade_out:
        return "the edit fades the picture"
    if Effects.of(draft).any:
        return "the edit has effects (colour, denoise, watermark, reverse or loop)"
    if texts_of(draft):
        return "the edit draws texts (titles or burned captions)"
    return None


def source_refusal(video: SourceVideo, draft: Draft) -> str | None:
    """Why `video` cannot be copied into the output of `draft`, or None.

    The rules: H.264 (the output's codec; H.265 would change it) in a profile of High's
    family, 8-bit 4:2:0 in the limited range, in closed GOPs (B-frames, pyramids too, are
    fine, but no frame of a GOP may decode after the next GOP's IDR frame or play before
    its own: a copied GOP is whole in both orders), not rotated by the container, at a
    constant frame rate equal to the output's (every timestamp within GRID_TICKS of a
    regular grid), starting at zero.
    """
    facts = TimelineFacts.of(draft)
    if video.codec != "h264":
        return f"the source's video is {video.codec}, not H.264"
    if video.pixel_format != "yuv420p":
        return f"the source's pixels are {video.pixel_format}, not 8-bit 4:2:0 (limited range)"
    if video.profile not in PROFILES:
        return f"the source's H.264 profile is {video.profile}"
    if not video.length_prefixed:
        return "the source's H.264 is not stored as MP4 or Matroska stores it"
    if video.rotated:
        return "the source's container rotates the picture"
    if facts.source_size not in ((video.width, video.height), None):
        return "the source's coded size differs from its displayed size"
    if len(video.packets) < 2 or not video.packets[0].keyframe:
        return "the source's video does not start with a keyframe"
    if video.open_keyframes or not _closed_gops(video):
        return "the source has open GOPs (frames before a keyframe decode after it)"
    played = [video.packets[index].pts for index in video.order]
    if any(earlier >= later for earlier, later in pairwise(played)):
        return "two of the source's frames play at the same time"
    rate = video.rate
    if rate <= 0 or facts.fps is None:
        return "the source's frame rate is unknown"
    if abs(rate - facts.fps) > FPS_TOLERANCE:
        return f"the source plays {rate:.3f} fps, the output {facts.fps:g}"
    exact = Fraction(1) / (Fraction(facts.fps).limit_denominator(1001) * video.time_base)
    if any(abs(pts - played[0] - index * exact) > GRID_TICKS for index, pts in enumerate(played)):
        return "the source's frame rate is not constant"
    if abs(video.times[0]) > float(video.time_base) * GRID_TICKS + 1e-9:
        return "the source's video starts later than its sound (an edit list or a delay)"
    return None


def kept_frames(video: SourceVideo, cut: Cut) -> tuple[int, int]:
    """The frames `cut` keeps, as indices `first`, `end` (exclusive)."""
    slack = FRAME_TOLERANCE / video.rate
    first = bisect_left(video.times, cut.start - slack)
    end = bisect_left(video.times, cut.end - slack)
    return first, max(first, end)


def plan_pieces(video: SourceVideo, cuts: Sequence[Cut]) -> tuple[Piece, ...]:
    """The output as pieces, in playing order: for each kept segment, the frames before
    its first keyframe encoded, the whole GOPs from there to its last keyframe copied, the
    frames after that encoded. A segment with no whole GOP in it is encoded whole.
    Neighbouring encoded pieces (the tail of one segment, the head of the next) are one."""
    boundaries = [*video.keyframes, len(video.packets)]
    pieces: list[Piece] = []
    for cut in cuts:
        first, end = kept_frames(video, cut)
        if end <= first:
            continue
        start = boundaries[bisect_left(boundaries, first)]  # the first keyframe at or after
        stop = boundaries[bisect_right(boundaries, end) - 1]  # the last at or before the end
        if stop <= start:
            _append(pieces, Piece("encode", first, end))
            continue
        _append(pieces, Piece("encode", first, start))
        _append(pieces, Piece("copy", start, stop))
        _append(pieces, Piece("encode", stop, end))
    return tuple(pieces)


def decode_plan(
    video: SourceVideo, pieces: Sequence[Piece]
) -> tuple[list[DecodeEntry], list[tuple[int, int]]]:
    """What the encode run decodes and keeps: the entries (for each encoded piece, the
    packets from the keyframe at or before it to its end; pieces whose stretches overlap
    or touch share one), and where each encoded piece is in the decoded stream (first,
    last frame, inclusive; increasing, as `select` keeps frames in decoding order).

    Raises ValueError when the pieces would need frames out of order."""
    entries: list[DecodeEntry] = []
    ranges: list[tuple[int, int]] = []
    decoded = 0  # frames in the entries before the last one
    for piece in pieces:
        if piece.kind != "encode":
            continue
        key = video.keyframes[bisect_right(video.keyframes, piece.first) - 1]
        end = piece.end
        if video.reorder_delay:  # the frames after `end` in the GOP may be needed before it
            boundaries = [*video.keyframes, len(video.packets)]
            end = boundaries[bisect_left(boundaries, piece.end)]
        last = entries[-1] if entries else None
        if last is not None and last.first <= key <= last.end and end >= last.end:
            entries[-1] = DecodeEntry(last.first, end)
        else:
            if last is not None:
                decoded += last.end - last.first
            entries.append(DecodeEntry(key, end))
        low = decoded + piece.first - entries[-1].first
        if ranges and low <= ranges[-1][1]:
            raise ValueError("the kept segments overlap or play out of order")
        ranges.append((low, low + piece.frames - 1))
    return entries, ranges


def run_starts(pieces: Sequence[Piece]) -> list[int]:
    """Where each run of encoded pieces (those with no copied piece between them) starts
    in the encoded stream, in frames: each starts with an IDR frame, as it follows a
    copied piece (or starts the output)."""
    starts = []
    position = 0
    previous = "copy"
    for piece in pieces:
        if piece.kind == "encode":
            if previous == "copy":
                starts.append(position)
            position += piece.frames
        previous = piece.kind
    return starts


def encode_arguments(
    video: SourceVideo,
    spec: ExportSpec,
    fps: float,
    ranges: Sequence[tuple[int, int]],
    starts: Sequence[int],
    decode: Path,
    output: Path,
    *,
    crf: int,
    preset: str,
) -> list[str]:
    """The encode run: `decode` (Annex-B, the decode entries back to back) decoded, the
    kept `ranges` of its frames selected, encoded as the copied pieces are coded (profile,
    level, size, pixels, colour tags; the sample aspect travels with the frames), without
    B-frames, an IDR frame at each of `starts` (frames of the output), to `output` (Annex-B)."""
    rate = fps_value(fps)
    select = "+".join(f"between(n\\,{low}\\,{high})" for low, high in ranges)
    keys = "+".join(f"eq(n,{start})" for start in starts)
    arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    arguments += ["-f", "h264", "-framerate", rate, "-i", str(decode)]
    arguments += ["-vf", f"select='{select}',setpts=N/FRAME_RATE/TB"]
    arguments += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf)]
    arguments += ["-profile:v", PROFILES[video.profile or "High"], "-level:v", str(video.level)]
    arguments += ["-pix_fmt", "yuv420p", "-bf", "0", "-sc_threshold", "0", "-g", "100000"]
    arguments += ["-force_key_frames", f"expr:{keys}", "-r", rate]
    arguments += _colour_arguments(video)
    return [*arguments, "-an", "-sn", "-dn", "-f", "h264", str(output)]


def join_arguments(fps: float, joined: Path, output: Path, *, fast_start: bool) -> list[str]:
    """The joined Annex-B stream put into an MP4 (the frames copied, timed by `fps`)."""
    arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    arguments += ["-f", "h264", "-framerate", fps_value(fps), "-i", str(joined)]
    arguments += ["-map", "0:v:0", "-c:v", "copy"]
    arguments += ["-video_track_timescale", str(track_timescale(fps))]
    if fast_start:
        arguments += ["-movflags", "+faststart"]
    return [*arguments, "-f", "mp4", str(output)]


def track_timescale(fps: float) -> int:
    """The MP4 track's ticks a second: a whole number of them a frame, at least 10000 (as
    FFmpeg chooses for an encode: 15360 for 30 fps, 30000 for 29.97)."""
    rate = Fraction(fps).limit_denominator(1001)
    scale = rate.numerator
    while scale < 10000:
        scale *= 2
    return scale


def _colour_arguments(video: SourceVideo) -> list[str]:
    arguments = []
    for option, table, value in (
        ("-color_primaries", PRIMARIES, video.color_primaries),
        ("-color_trc", TRANSFERS, video.color_trc),
        ("-colorspace", MATRICES, video.colorspace),
    ):
        if value in table:
            arguments += [option, table[value]]
    if video.color_range == 1:
        arguments += ["-color_range", "tv"]
    return arguments


def copied_seconds(pieces: Sequence[Piece], fps: float) -> tuple[float, float]:
    """Seconds of the output copied and encoded."""
    copied = sum(piece.frames for piece in pieces if piece.kind == "copy")
    encoded = sum(piece.frames for piece in pieces if piece.kind == "encode")
    return copied / fps, encoded / fps


# Annex-B (pure byte work)

START_CODE = b"\x00\x00\x00\x01"


def parameter_sets(extradata: bytes) -> tuple[int, bytes]:
    """The NAL length size and the SPS and PPS (Annex-B) of an `avcC` record.

    Raises ValueError when `extradata` is no avcC record."""
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (extradata[4] & 3) + 1
    sets = bytearray()
    position = 5
    for mask in (0x1F, 0xFF):  # SPS (count in 5 bits), then PPS
        count = extradata[position] & mask
        position += 1
        for _ in range(count):
            size = int.from_bytes(extradata[position : position + 2], "big")
            position += 2
            sets += START_CODE + extradata[position : position + size]
            position += size
    return length_size, bytes(sets)


def nal_units(data: bytes | memoryview, length_size: int) -> Iterator[memoryview]:
    """The NAL units of a length-prefixed packet."""
    view = memoryview(data)
    position = 0
    while position + length_size <= len(view):
        size = int.from_bytes(view[position : position + length_size], "big")
        position += length_size
        if size == 0 or position + size > len(view):
            raise ValueError("a NAL unit runs past its packet")
        yield view[position : position + size]
        position += size


def annexb(data: bytes | memoryview, length_size: int, sets: bytes, *, keyframe: bool) -> bytes:
    """A length-prefixed packet as Annex-B, the parameter sets `sets` before a keyframe
    (unless it carries its own)."""
    units = list(nal_units(data, length_size))
    out = bytearray()
    if keyframe and not any(unit[0] & 0x1F == 7 for unit in units):
        out += sets
    for unit in units:
        out += START_CODE
        out += unit
    return bytes(out)


def is_idr(data: bytes | memoryview, length_size: int) -> bool:
    """Whether a length-prefixed packet's picture is an IDR picture."""
    for unit in nal_units(data, length_size):
        kind = unit[0] & 0x1F
        if kind in (1, 5):
            return kind == 5
    return False


def split_access_units(stream: bytes) -> list[tuple[int, bool]]:
    """Where each picture of an Annex-B stream `stream` (one slice a picture or more)
    starts, and whether it is an IDR picture: (offset of its first NAL unit that is not a
    slice, or of its first slice; idr). x264 writes SEI, SPS and PPS before the slice."""
    starts: list[tuple[int, bool]] = []
    pending: int | None = None  # where the non-slice units before the next picture begin
    for offset, header in _nal_offsets(stream):
        kind = stream[header] & 0x1F
        if kind in (1, 5):
            first_slice = header + 1 < len(stream) and stream[header + 1] & 0x80  # ue(v) 0
            if first_slice:
                starts.append((pending if pending is not None else offset, kind == 5))
            pending = None
        elif kind in (6, 7, 8, 9) and pending is None:
            pending = offset
    return starts


def annexb_units(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex-B stream (without their start codes)."""
    offsets = list(_nal_offsets(stream))
    units = []
    for number, (_, header) in enumerate(offsets):
        end = offsets[number + 1][0] if number + 1 < len(offsets) else len(stream)
        units.append(stream[header:end])
    return units


def _nal_offsets(stream: bytes) -> Iterator[tuple[int, int]]:
    """(offset of the start code, offset of the NAL header) of each NAL unit."""
    position = stream.find(b"\x00\x00\x01")
    while position >= 0:
        start = position - 1 if position > 0 and stream[position - 1] == 0 else position
        header = position + 3
        yield start, header
        position = stream.find(b"\x00\x00\x01", header)


def _closed_gops(video: SourceVideo) -> bool:
    """Whether every GOP is closed: its IDR frame is the first of it in decoding and in
    playing order, and its frames are those between it and the next IDR frame in both."""
    played = {index: frame for frame, index in enumerate(video.order)}
    start, end = 0, 0  # the current GOP's first packet and the next keyframe's
    keys = [index for index, packet in enumerate(video.packets) if packet.keyframe]
    following = iter([*keys[1:], len(video.packets)])
    for index, packet in enumerate(video.packets):
        if packet.keyframe:
            start, end = index, next(following)
            if played[index] != index:
                return False
        elif not start <= played[index] < end:
            return False
    return True


def _append(pieces: list[Piece], piece: Piece) -> None:
    if piece.frames <= 0:
        return
    if pieces and pieces[-1].kind == piece.kind == "encode" and pieces[-1].end == piece.first:
        pieces[-1] = Piece("encode", pieces[-1].first, piece.end)
    else:
        pieces.append(piece)
