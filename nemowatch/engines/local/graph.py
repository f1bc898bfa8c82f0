"""What the local engine's graph builders share: the files a render reads, how a chain of
filters is written, and whether there is sound. (What they read of the draft itself is in
`timeline`: `TimelineFacts`, `cuts_of`, `music_of`...)

The builders are pure (a Draft and an ExportSpec in, text out) and tested by equality:
`picture` (the video run's graph), `sound` (the audio run's), `text` (titles), `loudness`
(the normalisation, measured in the analysis), `arguments` (whole FFmpeg command lines).
`render` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.timeline import (
    Cut,
    TimelineFacts,
    music_of,
    source_audio_of,
)
from nemowatch.errors import EngineError
from nemowatch.rules import ExportSpec

AUDIO_SAMPLE_RATE = 48000


AUDIO_CHANNELS = 2


# A segment ending this close to the source's end is not a cut (no fade needed there).
END_TOLERANCE = 0.001


@dataclass(frozen=True)
class RenderFiles:
    """The files a render reads besides the source, resolved by the executor."""

    font: Path
    text_files: tuple[Path, ...] = ()  # one per text of the draft, in order
    music: Path | None = None  # the music track (a generated loop or the user's file)
    # The text files hold a line each, every line of every text in order, each drawn on
    # its own (for an FFmpeg whose drawtext lacks `text_align`, before 6.1).
    line_by_line: bool = False


def chain(head: str, filters: Sequence[str], tail: str) -> str:
    return f"{head}{','.join(filters) or 'null'}{tail}"


def fade_filters(name: str, draft: Draft) -> list[str]:
    """The fade in and out the draft asks for, as `name` filters ("fade" for the picture,
    "afade" for the sound), over the draft's whole duration."""
    facts = TimelineFacts.of(draft)
    filters = []
    if facts.fade_in:
        filters.append(f"{name}=t=in:st=0:d={format_number(facts.fade_in)}")
    if facts.fade_out:
        start = format_number(max(0.0, draft.duration - facts.fade_out))
        filters.append(f"{name}=t=out:st={start}:d={format_number(facts.fade_out)}")
    return filters


def uses_source_audio(draft: Draft, spec: ExportSpec) -> bool:
    return spec.format != "gif" and source_audio_of(draft) is not None


def has_sound(draft: Draft, spec: ExportSpec) -> bool:
    return spec.format != "gif" and (
        source_audio_of(draft) is not None or music_of(draft) is not None
    )


def music_path(files: RenderFiles) -> Path:
    if files.music is None:
        raise EngineError("the draft has music, but no music file was given to the render")
    return files.music


def trim_range(cut: Cut) -> str:
    return f"start={format_number(cut.start)}:end={format_number(cut.end)}"


def even(value: float) -> int:
    return max(2, 2 * round(value / 2))
