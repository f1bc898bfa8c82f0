"""Photos, animations and sound files as footage: the FFmpeg arguments that turn each into
a video the rest of the edit works on as on any other. Pure: nothing here runs anything
(`footage.py` does).

- A photo becomes a still shot of `edit.still.duration` seconds with a slow pan and zoom
  (Ken Burns) chosen from the file's bytes, so the same photo always moves the same way,
  turned upright as its EXIF orientation asks.
- An animated GIF or WebP becomes a clip of its frames.
- A sound file becomes an audiogram: its waveform (or spectrum) drawn over a background
  (a colour, or a cover picture), with the sound.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from nemowatch.rules import Audiogram, Still

FPS = 30  # frames a second of the footage made from a photo or a sound file
PHOTO_MAX_SIDE = 1920  # a photo's footage is at most this long on its long side
AUDIOGRAM_SIZE = (1280, 720)  # a sound file's footage without an aspect asked for
ZOOM_RANGE = 0.12  # the Ken Burns zoom: from 1 to 1.12, or back
# The picture is scaled up this much before the pan: the pan moves by whole pixels of its
# input, so a finer input makes a smoother move.
PAN_OVERSAMPLE = 2
# Encoding of the footage: close to lossless (it is encoded once more by the render).
VIDEO_CODEC = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "14", "-pix_fmt", "yuv420p")
AUDIO_CODEC = ("-c:a", "pcm_s16le")  # lossless in Matroska: the loudness pass comes later
FOOTAGE_NAME = "footage.mkv"  # in the job's work folder
COVER_NAME = "cover.png"  # an embedded cover picture, taken out of the sound file

# EXIF orientation (1-8) -> the filters that show the picture upright.
_UPRIGHT: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("hflip",),
    3: ("hflip", "vflip"),
    4: ("vflip",),
    5: ("transpose=dir=cclock_flip",),
    6: ("transpose=dir=clock",),
    7: ("transpose=dir=clock_flip",),
    8: ("transpose=dir=cclock",),
}
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Motion:
    """A Ken Burns move: the zoom at the start and end, and where the view is centred
    (0..1 across and down the room the zoom leaves) at the start and end."""

    zoom_start: float
    zoom_end: float
    across_start: float
    across_end: float
    down_start: float
    down_end: float

    @classmethod
    def still(cls) -> Motion:
        return cls(1.0, 1.0, 0.5, 0.5, 0.5, 0.5)


def motion_for(content_digest: bytes) -> Motion:
    """The move a photo gets, chosen from its bytes' digest (the same photo, the same move):
    a zoom in or out, panning between two points of the middle of the picture."""
    seed = hashlib.sha256(content_digest).digest()
    zoom_in = seed[0] % 2 == 0
    points = [0.2 + 0.6 * byte / 255 for byte in seed[1:5]]
    start, end = (1.0, 1.0 + ZOOM_RANGE) if zoom_in else (1.0 + ZOOM_RANGE, 1.0)
    return Motion(start, end, points[0], points[1], points[2], points[3])


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a JPEG's bytes; 1 (upright) when it states none."""
    if data[:2] != b"\xff\xd8":
        return 1
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return 1
        marker = data[offset + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more headers
            return 1
        (length,) = struct.unpack_from(">H", data, offset + 2)
        body = data[offset + 4 : offset + 2 + length]
        if marker == 0xE1 and body[:6] == b"Exif\x00\x00":
            return _tiff_orientation(body[6:])
        offset += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    (first,) = struct.unpack_from(f"{order}I", tiff, 4)
    if first + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(f"{order}H", tiff, first)
    for index in range(count):
        entry = first + 2 + 12 * index
        if entry + 12 > len(tiff):
            return 1
        tag, kind = struct.unpack_from(f"{order}HH", tiff, entry)
        if tag == _ORIENTATION_TAG and kind == 3:  # SHORT
            (value,) = struct.unpack_from(f"{order}H", tiff, entry + 8)
            return value if value in _UPRIGHT else 1
    return 1


def upright_filters(orientation: int) -> tuple[str, ...]:
    return _UPRIGHT.get(orientation, ())


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The picture's size as shown, once turned upright."""
    return (height, width) if orientation >= 5 else (width, height)


def photo_size(width: int, height: int) -> tuple[int, int]:
    """The footage's size for a photo shown `width` x `height`: the same shape, at most
    PHOTO_MAX_SIDE long, both sides even."""
    scale = min(1.0, PHOTO_MAX_SIDE / max(width, height))
    return _even(width * scale), _even(height * scale)


def audiogram_size(size: tuple[int | None, int | None]) -> tuple[int, int]:
    """The footage's size for a sound file: the output's (when the edit fixes it), else
    AUDIOGRAM_SIZE."""
    width, height = size
    return (width, height) if width and height else AUDIOGRAM_SIZE


def photo_arguments(
    source: Path,
    target: Path,
    *,
    size: tuple[int, int],
    orientation: int,
    still: Still,
    motion: Motion,
) -> list[str]:
    """FFmpeg arguments for a photo's footage: `still.duration` seconds at FPS, moving."""
    width, height = size
    frames = max(2, round(still.duration * FPS))
    if not still.motion:
        motion = Motion.still()
    steps = frames - 1
    progress = f"(on/{steps})"

    def between(start: float, end: float) -> str:
        return f"({start:.4f}+({end - start:.4f})*{progress})"

    zoom = between(motion.zoom_start, motion.zoom_end)
    across = f"(iw-iw/zoom)*{between(motion.across_start, motion.across_end)}"
    down = f"(ih-ih/zoom)*{between(motion.down_start, motion.down_end)}"
    chain = [
        # FFmpeg 7 and later also read the EXIF orientation, as a display matrix the
        # encoder would copy: turned here, the picture must not be turned again on playback
        "sidedata=mode=delete:type=DISPLAYMATRIX",
        *upright_filters(orientation),
        f"scale=w={width * PAN_OVERSAMPLE}:h={height * PAN_OVERSAMPLE}:flags=lanczos",
        "setsar=1",
        f"zoompan=z='{zoom}':x='{across}':y='{down}':d={frames}:s={width}x{height}:fps={FPS}",
        "format=yuv420p",
    ]
    return [
        "-nostdin", "-y", "-hide_banner", "-v", "error",
        "-noautorotate", "-i", str(source),
        "-filter_complex", f"[0:v:0]{','.join(chain)}[v]",
        "-map", "[v]", "-frames:v", str(frames), "-an",
        *VIDEO_CODEC, "-f", "matroska", str(target),
    ]  # fmt: skip


def animation_arguments(source: Path, target: Path) -> list[str]:
    """FFmpeg arguments for an animated GIF's or WebP's footage: its frames as a clip."""
    chain = "scale=w='trunc(iw/2)*2':h='trunc(ih/2)*2',setsar=1,format=yuv420p"
    return [
        "-nostdin", "-y", "-hide_banner", "-v", "error",
        "-i", str(source),
        "-filter_complex", f"[0:v:0]{chain}[v]", "-map", "[v]", "-an",
        *VIDEO_CODEC, "-f", "matroska", str(target),
    ]  # fmt: skip


def cover_arguments(source: Path, target: Path) -> list[str]:
    """FFmpeg arguments that take the embedded cover picture out of a sound file."""
    return [
        "-nostdin", "-y", "-hide_banner", "-v", "error",
        "-i", str(source), "-map", "0:v:0", "-frames:v", "1", "-c:v", "png",
        "-f", "image2", "-update", "1", str(target),
    ]  # fmt: skip


def audiogram_arguments(
    source: Path,
    target: Path,
    *,
    size: tuple[int, int],
    seconds: float,
    settings: Audiogram,
    cover: Path | None,
) -> list[str]:
    """FFmpeg arguments for a sound file's footage: the wave or spectrum, moving with the
    sound, over the cover picture (filling the frame) or a plain colour, and the sound."""
    width, height = size
    band = _even(height / 3)
    colour = _colour(settings.color)
    if settings.style == "spectrum":
        drawn = (
            f"showfreqs=s={width}x{band}:rate={FPS}:mode=bar:ascale=log:fscale=log:colors={colour}"
        )
    else:
        # cube-root scale: a quiet recording still draws a wave one can see
        wave = f"s={width}x{band}:mode=cline:rate={FPS}:scale=cbrt:draw=full"
        drawn = f"showwaves={wave}:colors={colour}"
    if cover is not None:
        background_input = ["-loop", "1", "-framerate", str(FPS), "-i", str(cover)]
        background = (
            f"[1:v]scale=w={width}:h={height}:force_original_aspect_ratio=increase,"
            f"crop={width}:{height},setsar=1,format=yuv420p[bg]"
        )
    else:
        background_input = []
        background = (
            f"color=c={_colour(settings.background)}:s={width}x{height}:r={FPS},format=yuv420p[bg]"
        )
    graph = ";".join(
        [
            background,
            f"[0:a:0]{drawn},format=rgba[wave]",
            f"[bg][wave]overlay=x=0:y={(height - band) // 2},format=yuv420p[v]",
        ]
    )
    return [
        "-nostdin", "-y", "-hide_banner", "-v", "error",
        "-i", str(source), *background_input,
        "-filter_complex", graph,
        "-map", "[v]", "-map", "0:a:0", "-t", f"{seconds:.3f}",
        *VIDEO_CODEC, *AUDIO_CODEC, "-f", "matroska", str(target),
    ]  # fmt: skip


def cover_beside(source: Path, original_name: str) -> Path | None:
    """A cover picture dropped beside a sound file: one named like it (`song.jpg` for
    `song.mp3`), else `cover.jpg` (or .jpeg, .png, .webp). Looked for in the file's folder
    and, for a claimed file, in the inbox it was claimed from."""
    folders = [source.parent]
    if source.parent.name == "processing":
        folders.append(source.parent.parent)
    stems = [Path(original_name).stem, source.stem, "cover"]
    for folder in folders:
        for stem in stems:
            for extension in (".jpg", ".jpeg", ".png", ".webp", ".JPG", ".PNG"):
                candidate = folder / f"{stem}{extension}"
                if candidate.is_file():
                    return candidate
    return None


def _colour(value: str) -> str:
    """A colour for FFmpeg: "#1a2b3c" is written 0x1a2b3c, a name as it is."""
    return f"0x{value[1:]}" if value.startswith("#") else value


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)
