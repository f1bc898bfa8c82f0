"""Running a smart render (see `smartcut` for the plan): the source's video indexed
without decoding, the pieces written and encoded, joined and checked.

`smart_video` makes the video part of a render, or raises `SmartRefused` with the reason
(the render then falls back to a full one): before any work when the edit or the source
does not qualify, after it when a check fails (a frame count off by one is a refusal,
never a shipped file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO

import av
import av.error

from nemowatch.engines.base import Draft
from nemowatch.engines.local.arguments import X264_SETTINGS
from nemowatch.engines.local.ffmpeg import run_ffmpeg
from nemowatch.engines.local.smartcut import (
    Packet,
    Piece,
    SourceVideo,
    annexb,
    annexb_units,
    copied_seconds,
    decode_plan,
    encode_arguments,
    is_idr,
    join_arguments,
    parameter_sets,
    plan_pieces,
    refusal,
    run_starts,
    source_refusal,
    split_access_units,
    track_timescale,
)
from nemowatch.engines.local.timeline import TimelineFacts, cuts_of
from nemowatch.errors import EngineError
from nemowatch.rules import ExportSpec


class SmartRefused(Exception):
    """Smart rendering does not apply, or a check of its result failed: `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SmartResult:
    """What a smart render did: seconds of the output copied and encoded, frames in all."""

    copied: float
    encoded: float
    frames: int


async def smart_video(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    *,
    ffmpeg: Path,
    fast_start: bool,
    progress: Callable[[float], None] | None = None,
) -> SmartResult:
    """The video of `draft` to `output` (MP4, no sound), its whole GOPs copied from
    `source`. Raises SmartRefused when it does not apply or a check fails; EngineError
    from FFmpeg runs and OSError are turned into a refusal too (the full render may still
    succeed, or fail saying why). `progress` is called with the seconds of the output
    encoded once the encode run is done."""
    reason = refusal(draft, spec)
    if reason is not None:
        raise SmartRefused(reason)
    try:
        return await _smart_video(draft, spec, source, output, ffmpeg, fast_start, progress)
    except OSError as exc:  # a full disk, say: the full render meets it too, and says so
        raise SmartRefused(f"could not write a part of the smart render: {exc}") from exc


async def _smart_video(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    ffmpeg: Path,
    fast_start: bool,
    progress: Callable[[float], None] | None,
) -> SmartResult:
    video, extradata = await asyncio.to_thread(read_source_video, source)
    reason = source_refusal(video, draft)
    if reason is not None:
        raise SmartRefused(reason)
    try:
        length_size, sets = parameter_sets(extradata)
    except (ValueError, IndexError) as exc:
        raise SmartRefused(f"the source's H.264 parameter sets are unreadable: {exc}") from exc
    pieces = plan_pieces(video, cuts_of(draft))
    if not any(piece.kind == "copy" for piece in pieces):
        raise SmartRefused("no whole GOP lies inside a kept segment")
    fps = TimelineFacts.of(draft).fps or 0.0
    work = [output.with_name(f"{output.stem}.smart-{name}.h264") for name in ("decode", "encoded")]
    joined = output.with_name(f"{output.stem}.smart-joined.h264")
    try:
        encoded: list[bytes] = []
        if any(piece.kind == "encode" for piece in pieces):
            try:
                entries, ranges = decode_plan(video, pieces)
            except ValueError as exc:
                raise SmartRefused(str(exc)) from exc
            spans = [video.decoding(entry.first, entry.end) for entry in entries]
            await asyncio.to_thread(
                _write_packets, source, video, spans, work[0], length_size, sets
            )
            crf, preset = X264_SETTINGS[spec.quality]
            starts = run_starts(pieces)
            arguments = encode_arguments(
                video, spec, fps, ranges, starts, work[0], work[1], crf=crf, preset=preset
            )
            await _run(arguments, ffmpeg)
            encoded = _encoded_runs(work[1].read_bytes(), pieces, starts)
            if progress is not None:
                progress(copied_seconds(pieces, fps)[1])
        if video.reorder_delay:  # B-frames: muxed here, each packet given its times
            await asyncio.to_thread(
                _mux_joined, source, video, pieces, encoded, output, fps, fast_start, sets
            )
        else:  # every frame decodes as it plays: timed from the frame rate by FFmpeg
            await asyncio.to_thread(
                _write_joined, source, video, pieces, encoded, joined, length_size, sets
            )
            await _run(join_arguments(fps, joined, output, fast_start=fast_start), ffmpeg)
        frames = sum(piece.frames for piece in pieces)
        counted = await asyncio.to_thread(_count_frames, output)
        if counted != frames:
            raise SmartRefused(f"the joined video has {counted} frames, {frames} were planned")
    finally:
        for path in (*work, joined):
            path.unlink(missing_ok=True)
    copied, encoded_seconds = copied_seconds(pieces, fps)
    return SmartResult(copied=copied, encoded=encoded_seconds, frames=frames)


def read_source_video(source: Path) -> tuple[SourceVideo, bytes]:
    """The source's video stream as smart rendering needs it, and its extradata: every
    packet's time and whether it is an IDR frame (only keyframes' bytes are read), and
    the first frame decoded for the rotation the container asks for."""
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise SmartRefused("the source has no video")
            stream = container.streams.video[0]
            context = stream.codec_context
            extradata = bytes(context.extradata or b"")
            length_prefixed = len(extradata) > 6 and extradata[0] == 1
            length_size = (extradata[4] & 3) + 1 if length_prefixed else 4
            packets: list[Packet] = []
            open_keyframes = 0
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise SmartRefused("a packet of the source's video has no timestamp")
                keyframe = bool(packet.is_keyframe) and length_prefixed
                if keyframe:
                    try:
                        keyframe = is_idr(memoryview(packet), length_size)
                    except ValueError as exc:
                        raise SmartRefused(f"the source's video is damaged: {exc}") from exc
                    open_keyframes += not keyframe
                dts = int(packet.dts) if packet.dts is not None else None
                packets.append(Packet(pts=int(packet.pts), keyframe=keyframe, dts=dts))
            container.seek(0)
            rotation = 0
            for frame in container.decode(stream):
                rotation = int(frame.rotation or 0)
                break
            start = Fraction(container.start_time or 0, 1_000_000)
            video = SourceVideo(
                codec=context.name,
                profile=context.profile,
                level=int(getattr(context, "level", 0) or 0),
                pixel_format=context.pix_fmt,
                width=context.width,
                height=context.height,
                time_base=Fraction(stream.time_base or 0),
                start=start,
                reorders=bool(context.has_b_frames),
                open_keyframes=open_keyframes,
                rotated=rotation % 360 != 0,
                length_prefixed=length_prefixed,
                color_range=int(context.color_range or 0),
                color_primaries=int(context.color_primaries or 0),
                color_trc=int(context.color_trc or 0),
                colorspace=int(context.colorspace or 0),
                packets=tuple(packets),
            )
            return video, extradata
    except (av.error.FFmpegError, OSError) as exc:
        raise SmartRefused(f"could not read the source's video: {exc}") from exc


def _write_packets(
    source: Path,
    video: SourceVideo,
    spans: Sequence[tuple[int, int]],
    output: Path,
    length_size: int,
    sets: bytes,
) -> None:
    """Packets `first` to `end` of each span of `source`'s video, as Annex-B, to `output`."""
    with output.open("wb") as sink:
        _copy_spans(source, video, spans, sink, length_size, sets)


def _copy_spans(
    source: Path,
    video: SourceVideo,
    spans: Sequence[tuple[int, int]],
    sink: BinaryIO,
    length_size: int,
    sets: bytes,
) -> int:
    """Write the packets of `spans` (each starting at a keyframe) to `sink`; returns how
    many. Each span is found by seeking to its keyframe and checked packet by packet
    against the index."""
    written = 0
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            for first, end in spans:
                if first >= end:
                    continue
                for index, data in enumerate(_packets(container, stream, video, first, end), first):
                    keyframe = video.packets[index].keyframe
                    sink.write(annexb(memoryview(data), length_size, sets, keyframe=keyframe))
                    written += 1
    except (av.error.FFmpegError, ValueError) as exc:
        raise SmartRefused(f"could not copy the source's video: {exc}") from exc
    return written


def _encoded_runs(stream: bytes, pieces: Sequence[Piece], starts: Sequence[int]) -> list[bytes]:
    """The encode run's output cut into its runs (each starting at an IDR frame), checked:
    as many pictures as the encoded pieces hold, an IDR frame at each run's start."""
    pictures = split_access_units(stream)
    expected = sum(piece.frames for piece in pieces if piece.kind == "encode")
    if len(pictures) != expected:
        raise SmartRefused(f"the encoder made {len(pictures)} frames, {expected} were planned")
    if not all(pictures[start][1] for start in starts):
        raise SmartRefused("the encoder did not start every encoded piece at an IDR frame")
    offsets = [pictures[start][0] for start in starts] + [len(stream)]
    return [stream[begin:end] for begin, end in pairwise(offsets)]


def _write_joined(
    source: Path,
    video: SourceVideo,
    pieces: Sequence[Piece],
    encoded: Sequence[bytes],
    output: Path,
    length_size: int,
    sets: bytes,
) -> None:
    """The pieces in playing order, as one Annex-B stream: copied pieces from `source`,
    each run of encoded pieces from `encoded`."""
    runs = iter(encoded)
    previous = "copy"
    with output.open("wb") as sink:
        for piece in pieces:
            if piece.kind == "copy":
                spans = [video.decoding(piece.first, piece.end)]
                _copy_spans(source, video, spans, sink, length_size, sets)
            elif previous == "copy":
                sink.write(next(runs))
            previous = piece.kind


def _mux_joined(
    source: Path,
    video: SourceVideo,
    pieces: Sequence[Piece],
    encoded: Sequence[bytes],
    output: Path,
    fps: float,
    fast_start: bool,
    sets: bytes,
) -> None:
    """The pieces in playing order muxed into `output` (MP4) with PyAV, each packet timed:
    a copied packet plays at its frame's place in the output and decodes at its place in
    the piece's decoding order, `reorder_delay` frames earlier; an encoded one (no
    B-frames) decodes that many frames before it plays too, so decoding times rise across
    every join. Packets are length-prefixed, as the source's are; the parameter sets go
    in-band before each copied IDR frame (the encoded ones carry x264's)."""
    timescale = track_timescale(fps)
    tick = Fraction(timescale) / Fraction(fps).limit_denominator(1001)
    if tick.denominator != 1:
        raise SmartRefused(f"{fps:g} fps is no whole number of ticks in the MP4 track")
    frame = int(tick)
    delay = video.reorder_delay
    options = {"movflags": "+faststart"} if fast_start else {}
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            template = container.streams.video[0]
            extradata = bytes(template.codec_context.extradata or b"")
            length_size = (extradata[4] & 3) + 1
            prefixed_sets = b"".join(
                len(unit).to_bytes(length_size, "big") + bytes(unit) for unit in annexb_units(sets)
            )
            with av.open(str(output), "w", format="mp4", options=options) as sink:
                stream = sink.add_stream_from_template(template)
                stream.time_base = Fraction(1, timescale)
                time_base = Fraction(1, timescale)

                def mux(data: bytes, played: int, decoded: int, keyframe: bool) -> None:
                    packet = av.Packet(data)
                    packet.pts, packet.dts = played * frame, (decoded - delay) * frame
                    packet.time_base = time_base
                    packet.stream = stream
                    packet.is_keyframe = keyframe
                    sink.mux(packet)

                played = {index: frame for frame, index in enumerate(video.order)}
                position = 0
                runs = iter(encoded)
                previous = "copy"
                for piece in pieces:
                    if piece.kind == "copy":
                        first, end = video.decoding(piece.first, piece.end)
                        for offset, data in enumerate(
                            _packets(container, template, video, first, end)
                        ):
                            index = first + offset
                            keyframe = video.packets[index].keyframe
                            payload = (prefixed_sets if keyframe else b"") + data
                            place = position + played[index] - piece.first
                            mux(payload, place, position + offset, keyframe)
                        position += piece.frames
                    elif previous == "copy":
                        run = next(runs)
                        pictures = _pictures(run)
                        for number, (begin, stop, idr) in enumerate(pictures):
                            units = annexb_units(run[begin:stop])
                            payload = b"".join(
                                len(unit).to_bytes(length_size, "big") + bytes(unit)
                                for unit in units
                            )
                            mux(payload, position + number, position + number, idr)
                        position += len(pictures)
                    previous = piece.kind
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise SmartRefused(f"could not mux the smart render: {exc}") from exc


def _pictures(run: bytes) -> list[tuple[int, int, bool]]:
    """Each picture of an Annex-B run: (start, end, idr)."""
    starts = split_access_units(run)
    ends = [offset for offset, _ in starts[1:]] + [len(run)]
    return [(start, end, idr) for (start, idr), end in zip(starts, ends, strict=True)]


def _packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    video: SourceVideo,
    first: int,
    end: int,
) -> Iterator[bytes]:
    """The bytes of packets `first` to `end` (decoding order; `first` a keyframe),
    found by seeking and checked against the index."""
    container.seek(video.packets[first].pts, stream=stream, backward=True)
    index = None
    for packet in container.demux(stream):
        if packet.size == 0 or packet.pts is None:
            continue
        if index is None:
            wanted = video.packets[first]
            if packet.pts != wanted.pts:
                if packet.dts is not None and wanted.dts is not None:
                    before = packet.dts < wanted.dts  # in decoding order
                else:
                    before = packet.pts < wanted.pts
                if before:
                    continue  # a packet before the keyframe the seek landed ahead of
                raise SmartRefused("seeking missed a keyframe of the source")
            index = first
        if packet.pts != video.packets[index].pts:
            raise SmartRefused("the source's packets differ from its index")
        yield bytes(packet)
        index += 1
        if index >= end:
            return
    raise SmartRefused("the source ended before a copied stretch did")


def _count_frames(path: Path) -> int:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.error.FFmpegError as exc:
        raise SmartRefused(f"could not read the joined video: {exc}") from exc


async def _run(arguments: list[str], ffmpeg: Path) -> None:
    try:
        await run_ffmpeg(arguments, ffmpeg=ffmpeg)
    except EngineError as exc:
        raise SmartRefused(f"an FFmpeg run failed: {exc}") from exc
