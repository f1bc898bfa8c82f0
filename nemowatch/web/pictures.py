"""A job's pictures on its page: the timeline of its edit (SVG) and thumbnails of its
output, drawn by `nemowatch.picture` when it is there; the page goes without them when
it is not, or when a job has no plan or no output yet.

Drawing reads files and runs FFmpeg: it is done on a thread, and remembered per job (by
the output's size and time) so that a page reloaded does not draw again.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import ModuleType

import structlog

from nemowatch.engines.base import Draft
from nemowatch.ledger import JobRecord

log = structlog.get_logger("nemowatch.web")

REMEMBERED = 64  # pictures kept in memory


def _picture_module() -> ModuleType | None:
    try:
        return importlib.import_module("nemowatch.picture")
    except ImportError:
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
        self._module = _picture_module()
        self._cache: dict[tuple[str, str, object], tuple[bytes, str]] = {}

    def can_draw(self, record: JobRecord) -> bool:
        return self._module is not None and bool(record.draft)

    def can_thumbnail(self, record: JobRecord) -> bool:
        output = _output(record)
        return self._module is not None and output is not None and output.is_file()

    async def timeline(self, record: JobRecord) -> str | None:
        if not self.can_draw(record) or record.draft is None:
            return None
        key = ("timeline", record.id, record.updated_at)
        if key not in self._cache:
            draft = Draft.from_json(record.draft)
            source = record.claimed if record.claimed and record.claimed.is_file() else None
            if source is None and record.source.is_file():
                source = record.source
            svg = await self._draw("svg_for_draft", draft, source)
            if not isinstance(svg, str):
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
            data = await self._draw("thumbnails", output)
            if not isinstance(data, bytes):
                return None
            self._remember(key, (data, _kind(data)))
        return self._cache[key]

    async def _draw(self, name: str, *args: object) -> object:
        function = getattr(self._module, name, None)
        if function is None:
            return None
        try:
            return await asyncio.to_thread(function, *args)
        except Exception as error:  # a picture must never take the page down
            log.warning("web.picture_failed", picture=name, error=repr(error))
            return None

    def _remember(self, key: tuple[str, str, object], value: tuple[bytes, str]) -> None:
        if len(self._cache) >= REMEMBERED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = value


def _output(record: JobRecord) -> Path | None:
    if record.output is not None:
        return record.output
    published = [path for path in record.published.values() if path]
    return Path(published[0]) if published else None
