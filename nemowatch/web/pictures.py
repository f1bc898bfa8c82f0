"""A job's pictures on its page: the timeline of its edit (SVG) and thumbnails of its
output, drawn by `nemowatch.picture`; the page goes without them when a job has no plan
or no output yet, or when drawing fails (logged).

Drawing reads files and runs FFmpeg: it is done on a thread, and remembered per job (by
the output's size and time) so that a page reloaded does not draw again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

from nemowatch import picture
from nemowatch.engines.base import Draft
from nemowatch.ledger import JobRecord

log = structlog.get_logger("nemowatch.web")

REMEMBERED = 64  # pictures kept in memory
T = TypeVar("T")


def source_of(record: JobRecord) -> Path | None:
    """Where the job's source is now, for its waveform: archived (under done/ or failed/),
    still claimed, or where it was found; None when it is nowhere (deleted, moved on)."""
    disposed = record.disposed
    archived = (
        Path(disposed) if disposed and disposed not in ("kept", "deleted", "missing") else None
    )
    for place in (archived, record.claimed, record.source):
        if place is not None and place.is_file():
            return place
    return None


def _kind(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


class Pictures:
    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, object], tuple[bytes, str]] = {}

    def can_draw(self, record: JobRecord) -> bool:
        return bool(record.draft)

    def can_thumbnail(self, record: JobRecord) -> bool:
        output = _output(record)
        return output is not None and output.is_file()

    async def timeline(self, record: JobRecord) -> str | None:
        if not self.can_draw(record) or record.draft is None:
            return None
        key = ("timeline", record.id, record.updated_at)
        if key not in self._cache:
            draft = Draft.from_json(record.draft)
            # named as the person dropped it, not as it was claimed (`<job id>__name`)
            draft = Draft(
                draft.tracks, draft.duration_ms, {**draft.metadata, "source": record.source.name}
            )
            source = source_of(record)
            svg = await _drawn(picture.svg_for_draft, draft, source)
            if svg is None:
                return None
            self._remember(key, (svg.encode(), "image/svg+xml"))
        return self._cache[key][0].decode()

    async def thumbnails(self, record: JobRecord) -> tuple[bytes, str] | None:
        output = _output(record)
        if output is None or not self.can_thumbnail(record):
            return None
        stat = output.stat()
        key = ("thumbnails", record.id, (str(output), stat.st_size, stat.st_mtime_ns))
        if key not in self._cache:
            data = await _drawn(picture.thumbnails, output)
            if data is None:
                return None
            self._remember(key, (data, _kind(data)))
        return self._cache[key]

    def _remember(self, key: tuple[str, str, object], value: tuple[bytes, str]) -> None:
        if len(self._cache) >= REMEMBERED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = value


def _output(record: JobRecord) -> Path | None:
    if record.output is not None:
        return record.output
    published = [path for path in record.published.values() if path]
    return Path(published[0]) if published else None


async def _drawn(draw: Callable[..., T], *args: object) -> T | None:
    """`draw(*args)` on a thread (it reads files and runs FFmpeg); None when it fails."""
    try:
        return await asyncio.to_thread(draw, *args)
    except Exception as error:  # a picture must never take the page down
        log.warning("web.picture_failed", picture=draw.__name__, error=repr(error))
        return None
