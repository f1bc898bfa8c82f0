"""Uploading a source: `POST /api/upload-video/nemo_agent/me/<sid>`, multipart field `files`.

Local checks come first (exists, not empty, a supported extension, at most 500 MB), so a
file NemoVideo would refuse costs no upload. The body is streamed from disk: httpx's
multipart encoder reads an open file object in 64 KiB chunks and takes its length from
fstat, so memory does not grow with the file. Each retry opens the file again.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import structlog

from nemowatch import progress
from nemowatch.engines.base import Media
from nemowatch.engines.formats import NEMO_CONTENT_TYPES as CONTENT_TYPES
from nemowatch.engines.formats import NEMO_EXTENSIONS as SUPPORTED_EXTENSIONS
from nemowatch.engines.nemo.client import CallKind, NemoClient
from nemowatch.engines.nemo.kept import NemoMediaState
from nemowatch.engines.nemo.replies import UploadReply, parse
from nemowatch.errors import MediaError
from nemowatch.probe import MediaKind, kind_of, probe

log = structlog.get_logger("nemowatch.nemo")

MAX_UPLOAD_BYTES = 500 * 1024 * 1024  # the documented limit, "500 MB"
UPLOAD_READ_TIMEOUT = 300.0  # seconds: NemoVideo inspects the file before it answers


def upload_path(session_id: str) -> str:
    return f"/api/upload-video/nemo_agent/me/{session_id}"


def check_source(source: Path, *, size: int) -> None:
    """Refuse, before any upload, what NemoVideo would refuse. Pure (size given)."""
    extension = source.suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        supported = " ".join(sorted(name[1:] for name in SUPPORTED_EXTENSIONS))
        raise MediaError(
            f"{source.name}: NemoVideo does not accept {extension or 'files without an extension'}"
            f" (supported: {supported})",
            hint="convert it to MP4, or narrow the rule's `match` patterns",
        )
    if size == 0:
        raise MediaError(
            f"{source.name} is empty, 0 bytes",
            hint="copy or export the file again, then drop the new copy into the inbox",
        )
    if size > MAX_UPLOAD_BYTES:
        raise MediaError(
            f"{source.name} is {size / 1024 / 1024:.0f} MB; NemoVideo accepts at most"
            f" {MAX_UPLOAD_BYTES // 1024 // 1024} MB",
            hint="compress or trim it, then drop it again",
        )


# The kind of file each upload type is (what NemoVideo is told by the Content-Type).
_FAMILIES = {"video": "a video", "image": "a picture", "audio": "a sound file"}


def check_content(source: Path) -> None:
    """Refuse a file whose content is not what its name says (a video named .jpg): the
    upload's type comes from the name. A file that cannot be probed here is left for
    NemoVideo to judge (it inspects every upload)."""
    named = CONTENT_TYPES.get(source.suffix.lower(), "").split("/")[0]
    try:
        facts = probe(source)
        kind = kind_of(source, facts)
    except MediaError:
        return
    family = {
        MediaKind.VIDEO: "video",
        MediaKind.PHOTO: "image",
        MediaKind.ANIMATION: "image",
        MediaKind.SOUND: "audio",
    }[kind]
    if named and family != named:
        fitting = " ".join(
            sorted(name for name, type_ in CONTENT_TYPES.items() if type_.startswith(family))
        )
        raise MediaError(
            f"{source.name} holds {_FAMILIES[family]}, but its name says {_FAMILIES[named]};"
            " NemoVideo takes the type from the name",
            hint=f"rename it with the extension of its format ({fitting}), or convert it,"
            " then drop it again",
        )


def local_size(source: Path) -> int:
    try:
        return source.stat().st_size
    except OSError as error:
        raise MediaError(f"cannot read {source}: {error.strerror}") from error


def parse_upload(data: Any, *, fallback_name: str) -> Media:
    """The Media in `data.files[0]`. Pure."""
    reply = parse(UploadReply, data, endpoint="upload")
    first = reply.files[0]
    file_type = first.file_type or ""
    return Media(
        name=first.filename or fallback_name,
        duration=first.duration or 0.0,
        width=int(first.width) if first.width else None,
        height=int(first.height) if first.height else None,
        fps=first.fps,
        has_audio=file_type.startswith("audio"),
        data=NemoMediaState(
            file_type=first.file_type,
            cdn_url=first.cdn_url,
            hash=first.hash,
            session_state_applied=reply.session_state_applied,
        ).dump(),
    )


async def upload_file(client: NemoClient, session_id: str, source: Path) -> Media:
    size = local_size(source)
    check_source(source, size=size)
    content_type = CONTENT_TYPES[source.suffix.lower()]

    @contextlib.asynccontextmanager
    async def files() -> AsyncIterator[dict[str, Any]]:
        try:
            handle = _Reporting(io.FileIO(source, "rb"), size)
        except OSError as error:
            raise MediaError(f"cannot read {source}: {error.strerror}") from error
        with handle:
            yield {"files": (source.name, handle, content_type)}

    timeout = httpx.Timeout(
        client.settings.request_timeout,
        read=max(client.settings.request_timeout, UPLOAD_READ_TIMEOUT),
    )
    log.info("nemo.upload.started", file=source.name, bytes=size)
    data = await client.request_json(
        CallKind.UPLOAD,
        "POST",
        upload_path(session_id),
        what=f"upload {source.name}",
        files=files,
        timeout=timeout,
    )
    media = parse_upload(data, fallback_name=source.name)
    log.info("nemo.upload.done", file=source.name, bytes=size, duration=media.duration)
    return media


class _Reporting(io.BufferedReader):
    """The source as httpx's multipart encoder reads it, reporting how much has been read
    ("uploading", N %). A file object still (fstat gives httpx the length)."""

    def __init__(self, raw: io.FileIO, size: int) -> None:
        super().__init__(raw)
        self._size = size

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if self._size:
            progress.report("uploading", 100.0 * self.tell() / self._size)
        return chunk
