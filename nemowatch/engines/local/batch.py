"""A folder's files as one video (`batch: combine`, issue 13): what plays, for how long,
and the FFmpeg arguments that join them. Pure: `footage.py` probes and runs.

The files play in name order: a video as it is, an animation as its frames, a photo as a
still shot (made by `inputs.photo_arguments` first). Every piece is fitted into one frame
(the first picture's shape, at most PHOTO_MAX_SIDE long), padded with black where its shape
differs. A sound file, when the folder holds exactly one, is the soundtrack: photos share
its length (what the videos leave of it; or the rule's duration, when shorter), and it
plays under the whole, mixed with the videos' own sound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nemowatch.engines.base import JSON, Draft, JSONObject
from nemowatch.engines.local.inputs import AUDIO_CODEC, FPS, VIDEO_CODEC

MIN_SHOT = 0.5  # seconds a photo shows at least, however many share the time
SAMPLE_RATE = 48_000
_AUDIO = f"aresample={SAMPLE_RATE},aformat=sample_fmts=s16:channel_layouts=stereo"


@dataclass(frozen=True)
class Piece:
    """One part of the combined video: a file (or a photo's shot) that plays `seconds`."""

    path: Path
    seconds: float
    has_audio: bool


@dataclass(frozen=True)
class Part:
    """A file of the folder as the joined footage plays it, in turn: its name in the
    folder, for how long, and whether it is a photo (shown as a still shot)."""

    file: str
    seconds: float
    still: bool = False


PARTS_KEY = "parts"  # in a draft's `m`: the Parts its footage joins (timelines link each)
SOUNDTRACK_KEY = "soundtrack"  # ... and the name of the soundtrack under them, if any


def parts_metadata(parts: Sequence[Part], soundtrack: str | None) -> JSONObject:
    """What a draft's `m` keeps of the footage's parts."""
    listed: list[JSON] = [
        {"file": part.file, "seconds": round(part.seconds, 3), "still": part.still}
        for part in parts
    ]
    return {PARTS_KEY: listed, SOUNDTRACK_KEY: soundtrack}


def with_parts(draft: Draft, parts: Sequence[Part], soundtrack: str | None) -> Draft:
    """`draft` with the parts of a combined batch's footage in its `m` (the timelines link
    each file); as it is when there are none (not a combined batch)."""
    if not parts:
        return draft
    return replace(draft, metadata={**draft.metadata, **parts_metadata(parts, soundtrack)})


def parts_of(metadata: Mapping[str, object]) -> tuple[tuple[Part, ...], str | None]:
    """The parts and soundtrack `parts_metadata` kept (none: not a combined batch)."""
    found, soundtrack = metadata.get(PARTS_KEY), metadata.get(SOUNDTRACK_KEY)
    parts = tuple(
        Part(str(item["file"]), float(item["seconds"]), bool(item.get("still", False)))
        for item in (found if isinstance(found, list) else [])
        if isinstance(item, dict) and isinstance(item.get("seconds"), int | float)
    )
    return parts, soundtrack if isinstance(soundtrack, str) else None


def photo_seconds(
    photos: int,
    *,
    videos_seconds: float,
    soundtrack: float | None,
    longest: float | None,
    still: float,
) -> float:
    """How long each photo shows: the slideshow lasts as long as the soundtrack, or as the
    rule's duration (`longest`, `max_duration`) when that is shorter; what the videos leave
    of it is shared out (at least MIN_SHOT each). With neither, or nothing left, the rule's
    still duration."""
    if photos <= 0:
        return 0.0
    lengths = [length for length in (soundtrack, longest) if length is not None]
    if lengths and min(lengths) - videos_seconds >= MIN_SHOT:
        return max(MIN_SHOT, (min(lengths) - videos_seconds) / photos)
    return still


def combine_arguments(
    pieces: list[Piece],
    target: Path,
    *,
    size: tuple[int, int],
    soundtrack: Path | None,
) -> list[str]:
    """FFmpeg arguments that join `pieces` in order into one Matroska file at `size`, with
    `soundtrack` (if any) under it all; the result lasts as long as the pieces together."""
    width, height = size
    total = sum(piece.seconds for piece in pieces)
    inputs: list[str] = []
    chains: list[str] = []
    joined = ""
    for index, piece in enumerate(pieces):
        inputs += ["-i", str(piece.path)]
        chains.append(
            f"[{index}:v:0]scale=w={width}:h={height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:-1:-1:color=black,setsar=1,fps={FPS},format=yuv420p,"
            f"trim=end={piece.seconds:.3f},setpts=PTS-STARTPTS[v{index}]"
        )
        if piece.has_audio:  # as long as its picture: cut, or padded with silence
            sound = f"[{index}:a:0]{_AUDIO},apad=whole_dur={piece.seconds:.3f},"
        else:
            sound = f"aevalsrc=exprs=0:s={SAMPLE_RATE}:d={piece.seconds:.3f}:c=stereo,{_AUDIO},"
        chains.append(f"{sound}atrim=end={piece.seconds:.3f},asetpts=PTS-STARTPTS[a{index}]")
        joined += f"[v{index}][a{index}]"
    chains.append(f"{joined}concat=n={len(pieces)}:v=1:a=1[v][joined]")
    audio = "[joined]"
    if soundtrack is not None:
        inputs += ["-i", str(soundtrack)]
        chains.append(f"[{len(pieces)}:a:0]{_AUDIO},apad=whole_dur={total:.3f}[music]")
        # the pieces' own sound (silence, for photos) and the soundtrack, at their levels
        chains.append("[joined][music]amix=inputs=2:duration=first:normalize=0[a]")
        audio = "[a]"
    return [
        "-nostdin", "-y", "-hide_banner", "-v", "error",
        *inputs,
        "-filter_complex", ";".join(chains),
        "-map", "[v]", "-map", audio, "-t", f"{total:.3f}",
        *VIDEO_CODEC, *AUDIO_CODEC, "-f", "matroska", str(target),
    ]  # fmt: skip
