"""A downloaded result made to match the rule's export where the engine could not be told
(issue 14): NemoVideo's render request says only format and quality, so a rule's
`resolution` and `fps` are applied here, with the local FFmpeg, before the result is
verified and published; the job's warnings say it was done (and so its report does).

`needs` is pure; `conform` runs FFmpeg once, into a hidden file beside the result, and
replaces the result only when FFmpeg succeeded. The local engine renders what the rule
asks, so for it nothing is ever needed.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from nemowatch.errors import EngineError
from nemowatch.probe import probe
from nemowatch.rules import ExportSpec

log = structlog.get_logger("nemowatch.pipeline")

FPS_TOLERANCE = 0.05  # frames a second: 29.97 asked and 30 given is the same thing here


@dataclass(frozen=True)
class Change:
    """What the result must become: its frame size and rate (None: as it is)."""

    size: tuple[int, int] | None
    fps: float | None
    had: str  # what it was, for the warning ("1920x1080 at 25 fps")


def needs(
    width: int | None, height: int | None, fps: float | None, export: ExportSpec
) -> Change | None:
    """The change a result of `width` x `height` at `fps` needs to be what `export` asks;
    None when it is already (or when the format is not one this conforms: MP4 and MOV)."""
    if export.format not in ("mp4", "mov") or not (width and height):
        return None
    size = None
    short = export.short_side
    if short is not None and min(width, height) != short:
        scale = short / min(width, height)
        long_side = 2 * round(max(width, height) * scale / 2)
        size = (long_side, short) if width >= height else (short, long_side)
    rate = None
    if export.fps is not None and (fps is None or abs(fps - export.fps) > FPS_TOLERANCE):
        rate = export.fps
    if size is None and rate is None:
        return None
    return Change(size, rate, had=f"{width}x{height}" + (f" at {fps:g} fps" if fps else ""))


def arguments(source: Path, target: Path, change: Change, export: ExportSpec) -> list[str]:
    """FFmpeg arguments that make `source` into `target` as `change` says; the sound as it
    is, the index at the front (as every published MP4)."""
    from nemowatch.engines.local.arguments import video_encoder_arguments  # only when needed

    filters = []
    if change.size is not None:
        filters.append(f"scale=w={change.size[0]}:h={change.size[1]}:flags=lanczos")
    if change.fps is not None:
        filters.append(f"fps={change.fps:g}")
    return [
        "-nostdin", "-y", "-hide_banner", "-v", "error",
        "-i", str(source), "-map", "0:v:0", "-map", "0:a?",
        "-vf", ",".join([*filters, "setsar=1"]),
        *video_encoder_arguments(export), "-c:a", "copy",
        "-movflags", "+faststart", "-f", export.format, str(target),
    ]  # fmt: skip


def describe(change: Change) -> str:
    """The warning a job carries: what it was, what it became."""
    became = []
    if change.size is not None:
        became.append(f"{change.size[0]}x{change.size[1]}")
    if change.fps is not None:
        became.append(f"{change.fps:g} fps")
    return (
        f"the engine rendered {change.had}; conformed to {' at '.join(became)} with the local"
        " FFmpeg, as the rule's export asks"
    )


async def conform(result: Path, export: ExportSpec) -> str | None:
    """Make the downloaded `result` what `export` asks, in place; the warning to keep, or
    None when nothing was needed. Raises EngineError when FFmpeg fails (the result is then
    left as it was, for the retry)."""
    from nemowatch.engines.local.ffmpeg import find_ffmpeg, run_ffmpeg  # only when needed

    facts = await asyncio.to_thread(probe, result)
    video = facts.video
    change = needs(
        video.width if video else None, video.height if video else None,
        video.fps if video else None, export,
    )  # fmt: skip
    if change is None:
        return None
    # ends as `result` does (`.<job>` and the temporary suffix): a kill leaves it to the
    # stray-temporaries clean-up, as a half-downloaded result
    partial = result.with_name(".conform-" + result.name.lstrip("."))
    try:
        ffmpeg = await asyncio.to_thread(find_ffmpeg)
        await run_ffmpeg(arguments(result, partial, change, export), ffmpeg=ffmpeg)
        os.replace(partial, result)
    except EngineError as error:
        raise EngineError(
            f"could not conform the result to the rule's export: {error}", retryable=True
        ) from error
    finally:
        partial.unlink(missing_ok=True)
    warning = describe(change)
    log.info("render.conformed", output=result.name, change=warning)
    return warning
