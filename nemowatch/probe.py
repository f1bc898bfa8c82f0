"""What a media file holds: container, streams and their durations, read with PyAV.

Engine-neutral: the local engine probes sources before editing, and the outbox probes
results before publishing them. Errors of PyAV and the filesystem become `MediaError` here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from nemowatch.errors import MediaError

if TYPE_CHECKING:
    import av.container
    import av.stream

# PyAV is imported by the functions that read files (`import av.error` binds `av`): loading
# it costs 50-70 ms of CPU, which commands that only import this module for its types and
# names (status, jobs, retry through nemowatch.outbox) need not pay.

# PyAV reports the container's duration in FFmpeg's AV_TIME_BASE (microseconds).
_MICROSECONDS = 1_000_000

_TIMED = ("video", "audio")  # stream kinds whose duration is the file's
_TAIL_SECONDS = 5.0  # how much of the stated end is read back to see that it is there
# Stated seconds allowed to have no data behind them (muxers round, and audio priming
# and edit lists shift ends a little); longer files get a share of their length.
_MISSING_SECONDS = 1.0
_MISSING_SHARE = 0.01
_INCOMPLETE_HINT = (
    "copy or export the original again (a copy may have stopped early, or the recording"
    " was cut off), check that it plays to the end, then drop it into the inbox"
)

_UNREADABLE_HINT = (
    "check that the file opens in a player or viewer, then copy or export it again "
    "and drop the new copy into the inbox"
)


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file. Fields that do not apply to its kind are None."""

    kind: str  # "video", "audio", "image" (cover art), "subtitle", "data", ...
    codec: str
    duration: float | None  # seconds
    profile: str | None = None
    pix_fmt: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class Probe:
    """A media file's container and streams."""

    format_name: str
    duration: float  # seconds, as the container states it
    streams: tuple[StreamInfo, ...]

    @property
    def video(self) -> StreamInfo | None:
        """The first video stream (cover art excluded), if any."""
        return next((stream for stream in self.streams if stream.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        """The first audio stream, if any."""
        return next((stream for stream in self.streams if stream.kind == "audio"), None)

    @property
    def still_image(self) -> bool:
        """A picture (PNG, JPEG, ...), whatever its name says: FFmpeg read it as an image."""
        return self.format_name == "image2" or self.format_name.endswith("_pipe")


def probe(path: Path) -> Probe:
    """Read the container and stream facts of `path`.

    Raises `MediaError` when the file is missing, empty, unreadable or not a media file,
    and when its data ends well before the duration it states (truncated or corrupt).
    """
    import av.error

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    if size == 0:
        raise _unreadable(path, "the file is empty, 0 bytes")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            facts = _read(container, path)
        if not facts.still_image:
            _check_complete(path, facts)
        return facts
    except (av.error.FFmpegError, OSError) as exc:
        raise _unreadable(path, _reason(exc)) from exc


class MediaKind(StrEnum):
    """What a source is, by its content (never by its name)."""

    VIDEO = "video"  # moving pictures, with or without sound
    PHOTO = "photo"  # one picture (a PNG, a JPEG, a GIF or WebP of one frame)
    ANIMATION = "animation"  # an animated GIF or WebP: frames, no sound
    SOUND = "sound"  # sound only (embedded cover art at most)


def kind_of(path: Path, facts: Probe) -> MediaKind:
    """The kind of the media file `path`, probed as `facts`.

    Raises `MediaError` for a file with neither a picture nor sound (cover art alone, data).
    """
    if facts.video is None:
        if facts.audio is not None:
            return MediaKind.SOUND
        raise MediaError(
            f"{path.name} holds no sound and no picture (only {_stream_kinds(facts)}):"
            f" {_EMPTY_MEDIA_HINT}",
            hint=_EMPTY_MEDIA_HINT,
        )
    if facts.format_name == "gif":
        if _frames_over_one(path):
            return MediaKind.ANIMATION
    elif facts.video.codec == "webp" and facts.still_image:
        if _animated_webp(path):
            return MediaKind.ANIMATION
    elif not facts.still_image:
        return MediaKind.VIDEO
    _check_picture(path)
    if facts.video.codec == "mjpeg":
        _check_jpeg_end(path)
    return MediaKind.PHOTO


_PHOTO_HINT = (
    "check that the picture opens in an image viewer, then save or export it again (as JPEG"
    " or PNG) and drop the new copy into the inbox"
)


def _check_picture(path: Path) -> None:
    """Decode a photo (one frame: cheap) so a corrupt one fails before any work."""
    import av.error

    reason = "it holds no picture"
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if frame.width and frame.height:
                    return
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        reason = _reason(exc)
    raise MediaError(
        f"{path.name} is not a readable photo ({reason}): {_PHOTO_HINT}", hint=_PHOTO_HINT
    )


_EMPTY_MEDIA_HINT = (
    "export the recording again with its sound (or its picture), then drop the new file"
    " into the inbox"
)


def _stream_kinds(facts: Probe) -> str:
    kinds = sorted(
        {"cover art" if stream.kind == "image" else stream.kind for stream in facts.streams}
    )
    return ", ".join(kinds) or "nothing"


def _check_jpeg_end(path: Path) -> None:
    """Refuse a JPEG cut short: FFmpeg would show its missing part grey without a word.

    Its picture data never holds the end marker FF D9 (an FF there is always followed by
    00 or a restart marker), so a JPEG with no FF D9 after its first scan stops early.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    scan = data.find(b"\xff\xda")
    if scan >= 0 and data.find(b"\xff\xd9", scan) < 0:
        raise MediaError(
            f"{path.name} is not a readable photo (its picture data ends early: the file is"
            f" cut short or damaged): {_PHOTO_HINT}",
            hint=_PHOTO_HINT,
        )


def _frames_over_one(path: Path) -> bool:
    """Whether a GIF holds more than one frame (its packets are counted, not decoded)."""
    import av.error

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            count = 0
            for packet in container.demux(video=0):
                if packet.size:
                    count += 1
                    if count > 1:
                        return True
    except (av.error.FFmpegError, OSError) as exc:
        raise _unreadable(path, _reason(exc)) from exc
    return False


def _animated_webp(path: Path) -> bool:
    """Whether a WebP is animated: its extended header (VP8X) sets the animation flag."""
    try:
        with path.open("rb") as file:
            header = file.read(21)
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    if len(header) < 21 or header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        return False
    return header[12:16] == b"VP8X" and bool(header[20] & 0x02)


def moov_before_mdat(path: Path) -> bool:
    """Whether an MP4's index (`moov`) comes before its media data (`mdat`): "fast start".

    A player can then start streaming before the whole file has arrived.
    """
    try:
        with path.open("rb") as file:
            for box_type in _top_level_box_types(file):
                if box_type == b"moov":
                    return True
                if box_type == b"mdat":
                    return False
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from exc
    return False


def _read(container: av.container.InputContainer, path: Path) -> Probe:
    streams = container.streams
    if not streams:
        raise _unreadable(path, "it holds no audio or video streams")
    durations = {stream.index: _declared_duration(stream) for stream in streams}
    undeclared = [stream for stream in streams if durations[stream.index] is None]
    if undeclared:
        # Matroska, WebM and MPEG-TS often state no per-stream duration: measure it from
        # the packets, which is cheap (no decoding) and exact to the last packet.
        durations.update(_measured_durations(container, undeclared))
    infos = tuple(_stream_info(stream, durations[stream.index]) for stream in streams)
    if container.duration is not None:
        duration = container.duration / _MICROSECONDS
    else:
        duration = max((info.duration or 0.0 for info in infos), default=0.0)
    return Probe(format_name=container.format.name, duration=duration, streams=infos)


def _declared_duration(stream: av.stream.Stream) -> float | None:
    if stream.duration is None or stream.time_base is None or stream.duration <= 0:
        return None
    return float(stream.duration * stream.time_base)


def _measured_durations(
    container: av.container.InputContainer, streams: list[av.stream.Stream]
) -> dict[int, float | None]:
    ends: dict[int, float] = {}
    for packet in container.demux(*streams):
        if packet.pts is None or packet.time_base is None:
            continue  # the flush packet at the end of each stream
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        index = packet.stream.index
        ends[index] = max(end, ends.get(index, end))
    measured: dict[int, float | None] = {}
    for stream in streams:
        last = ends.get(stream.index)
        start = 0.0
        if stream.start_time is not None and stream.time_base is not None:
            start = float(stream.start_time * stream.time_base)
        measured[stream.index] = None if last is None else max(0.0, last - start)
    return measured


def _stream_info(stream: av.stream.Stream, duration: float | None) -> StreamInfo:
    import av
    from av.stream import Disposition

    context = stream.codec_context
    codec = context.name if context is not None else "unknown"
    profile = context.profile if context is not None else None
    if isinstance(stream, av.VideoStream):
        rate = stream.average_rate or stream.guessed_rate
        attached = bool(stream.disposition & Disposition.attached_pic)
        return StreamInfo(
            kind="image" if attached else "video",
            codec=codec,
            profile=profile,
            pix_fmt=stream.codec_context.pix_fmt,
            width=stream.codec_context.width or None,
            height=stream.codec_context.height or None,
            fps=float(rate) if rate else None,
            duration=duration,
        )
    if isinstance(stream, av.AudioStream):
        return StreamInfo(
            kind="audio",
            codec=codec,
            profile=profile,
            sample_rate=stream.codec_context.sample_rate or None,
            channels=stream.codec_context.layout.nb_channels or None,
            duration=duration,
        )
    return StreamInfo(kind=stream.type, codec=codec, duration=duration)


def _check_complete(path: Path, facts: Probe) -> None:
    """Refuse a file whose data ends well before the duration its header states.

    A copy or recording cut off, or a forged header, says "3 hours" over seconds of data:
    an edit planned on that would render hours of nothing. Only the last few seconds the
    header promises are read (a seek, then a few packets), so this is cheap for any size.
    """
    import av.error

    stated = max(
        [facts.duration]
        + [stream.duration or 0.0 for stream in facts.streams if stream.kind in _TIMED]
    )
    if stated <= 0:
        return
    start = max(0.0, stated - _TAIL_SECONDS)
    with av.open(str(path), metadata_errors="ignore") as container:
        if start > 0:
            offset = (container.start_time or 0) + int(start * _MICROSECONDS)
            try:
                container.seek(offset, backward=True, any_frame=False)
            except (av.error.FFmpegError, OSError):
                return  # a format that cannot seek: nothing to compare with, let it through
        reached = _data_end(container)
    if reached is not None and stated - reached <= max(_MISSING_SECONDS, _MISSING_SHARE * stated):
        return
    if reached is not None:
        found = f"its data ends at {_clock(reached)}"
    else:
        found = f"it holds no readable data after {_clock(start)}"
    raise MediaError(
        f"{path.name} says it lasts {_clock(stated)}, but {found}, so it is truncated or"
        f" corrupt: {_INCOMPLETE_HINT}",
        hint=_INCOMPLETE_HINT,
    )


def _data_end(container: av.container.InputContainer) -> float | None:
    """Seconds into the file at which the last readable packet from here on ends."""
    import av.error
    from av.stream import Disposition

    reached: float | None = None
    try:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None or packet.is_corrupt:
                continue
            stream = packet.stream
            if stream.disposition & Disposition.attached_pic:
                continue  # cover art: one picture, at the start
            begin = stream.start_time or 0
            end = float((packet.pts + (packet.duration or 0) - begin) * packet.time_base)
            reached = end if reached is None else max(reached, end)
    except (av.error.FFmpegError, OSError):
        pass  # the data stops being readable here: it reaches as far as was read
    return reached


def _clock(seconds: float) -> str:
    """3:00:00.0"""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}"


def _top_level_box_types(file: BinaryIO) -> Iterator[bytes]:
    """The types of an ISO-BMFF file's top-level boxes, in file order."""
    offset = 0
    while True:
        file.seek(offset)
        header = file.read(8)
        if len(header) < 8:
            return
        size, box_type = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:  # the real size follows as a 64-bit number
            large = file.read(8)
            if len(large) < 8:
                return
            (size,) = struct.unpack(">Q", large)
            header_size = 16
        yield box_type
        if size == 0:  # the box runs to the end of the file
            return
        if size < header_size:
            return  # a damaged header: stop rather than loop forever
        offset += size


def _reason(exc: BaseException) -> str:
    import av.error

    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _unreadable(path: Path, reason: str) -> MediaError:
    return MediaError(
        f"{path.name} is not a readable video, photo or sound file ({reason}): {_UNREADABLE_HINT}",
        hint=_UNREADABLE_HINT,
    )
