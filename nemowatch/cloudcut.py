"""A NemoVideo draft's cut, for the timelines of a nemo job (timelines.py): which stretches
of the output play the uploaded source, and from where in it, and which only the cloud
made (generated media, music, anything it does not take from the upload), which the
timeline can only play from the downloaded render. Pure.

The cloud's draft (nemo-api.md, State) has tracks `t`, their types `tt` and segments
`sg`, each placed in the output at `at` for `d` milliseconds. A segment taken from an
uploaded file names it (`src`, the upload's URL) and where in it it starts (`from`,
milliseconds); a segment without both, or naming another file, is the cloud's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from nemowatch.engines.base import AUDIO_TRACK, VIDEO_TRACK, Draft, Track, TrackSegment


@dataclass(frozen=True)
class Uploaded:
    """The source as the cloud knows it: the URLs it names the upload by, and what the
    upload's answer said of it (the draft itself says no frame rate)."""

    urls: frozenset[str]
    fps: float | None = None
    duration_ms: int | None = None

    @classmethod
    def of_media(cls, media: Mapping[str, object] | None) -> Uploaded:
        """From a job's recorded upload (`Media` as the ledger keeps it)."""
        media = media or {}
        data = media.get("data")
        url = data.get("cdn_url") if isinstance(data, Mapping) else None
        fps, duration = media.get("fps"), media.get("duration")
        return cls(
            urls=frozenset([url]) if isinstance(url, str) and url else frozenset(),
            fps=float(fps) if isinstance(fps, int | float) and fps > 0 else None,
            duration_ms=round(duration * 1000)
            if isinstance(duration, int | float) and duration > 0
            else None,
        )


@dataclass(frozen=True)
class Piece:
    """A stretch of the output, in milliseconds: `at` for `duration`, playing the source
    from `start` (`from_source`) or, the cloud's own, the render at `at`."""

    at: int
    duration: int
    from_source: bool
    start: int  # where it starts in the file it plays
    name: str  # what the cloud calls what plays there (a file's name, else what it is)


def picture(draft: Draft, uploaded: Uploaded) -> list[Piece]:
    """The first video track's segments as pieces, back to back over the whole output:
    a stretch no segment covers plays the render too (what the cloud showed there)."""
    track = next((item for item in draft.tracks if item.get("tt") == VIDEO_TRACK), None)
    return _pieces(track, uploaded, draft.duration_ms, fill=True)


def sounds(draft: Draft, uploaded: Uploaded) -> list[tuple[str, Track, list[Piece]]]:
    """Each audio track of the draft: its kind (`m.kind`, "audio" when unsaid), the track,
    and its segments as pieces (no filling: silence between them)."""
    found = []
    for track in draft.tracks:
        if track.get("tt") == AUDIO_TRACK:
            kind = track.get("m", {}).get("kind")
            pieces = _pieces(track, uploaded, draft.duration_ms, fill=False)
            found.append((kind if isinstance(kind, str) and kind else "audio", track, pieces))
    return found


def generated(pieces: Sequence[Piece]) -> list[str]:
    """The names of what the cloud made among `pieces`, once each, in order."""
    return list(dict.fromkeys(piece.name for piece in pieces if not piece.from_source))


def _pieces(track: Track | None, uploaded: Uploaded, total: int, *, fill: bool) -> list[Piece]:
    segments = sorted(
        (item for item in (track or {}).get("sg", []) if _placed(item)),
        key=lambda item: item["at"],
    )
    pieces: list[Piece] = []
    position = 0
    for item in segments:
        at, end = int(item["at"]), int(item["at"]) + int(item["d"])
        if fill and at > position:
            pieces.append(Piece(position, at - position, False, position, "the render"))
        skipped = max(0, position - at)  # overlapping the one before: its rest only
        if end - at - skipped <= 0:
            continue
        start, name = _from_source(item, uploaded)
        if start is not None:
            pieces.append(Piece(at + skipped, end - at - skipped, True, start + skipped, name))
        else:
            pieces.append(Piece(at + skipped, end - at - skipped, False, at + skipped, name))
        position = max(position, end)
    if fill and total > position:
        pieces.append(Piece(position, total - position, False, position, "the render"))
    return pieces


def _placed(item: TrackSegment) -> bool:
    at, duration = item.get("at"), item.get("d")
    return isinstance(at, int | float) and isinstance(duration, int | float) and duration > 0


def _from_source(item: TrackSegment, uploaded: Uploaded) -> tuple[int | None, str]:
    """Where in the source `item` starts, and its name; (None, what it is) when the cloud
    made it."""
    source, start = item.get("src"), item.get("from")
    name = PurePosixPath(urlsplit(source).path).name if isinstance(source, str) else ""
    if isinstance(source, str) and source in uploaded.urls and isinstance(start, int | float):
        return max(0, round(start)), name
    return None, name or "generated media"
