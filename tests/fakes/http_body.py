"""Request bodies read in chunks: Content-Length or chunked, and multipart counted as it streams.

The fake must take a 300 MB upload without holding it: bodies are read 64 KiB at a time and
multipart parts are counted and hashed on the fly, keeping at most one chunk plus a
boundary's length in memory.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

CHUNK = 64 * 1024
HEADER_LIMIT = 16 * 1024  # a part's headers; more is not a real client


class BadBody(ValueError):
    """The body is not what its headers say (answered with HTTP 400 or 422)."""


class BodyReader:
    """The request body of one request, read once, in chunks."""

    def __init__(self, stream: io.BufferedIOBase, headers: Message) -> None:
        self._stream = stream
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self._remaining = 0
        self._chunk_left = 0  # of the current chunk, in chunked encoding
        self._finished = False
        self.consumed = 0
        if not self.chunked:
            try:
                self._remaining = int(headers.get("Content-Length") or 0)
            except ValueError as exc:
                raise BadBody("Content-Length is not a number") from exc
            if self._remaining < 0:
                raise BadBody("Content-Length is negative")
            self._finished = self._remaining == 0

    @property
    def finished(self) -> bool:
        return self._finished

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The rest of the body, at most `size` bytes at a time."""
        while not self._finished:
            data = self._read(size)
            if data:
                self.consumed += len(data)
                yield data

    def read_all(self, limit: int) -> bytes:
        """The whole body, for small JSON bodies; BadBody past `limit` bytes."""
        parts: list[bytes] = []
        total = 0
        for data in self.chunks():
            total += len(data)
            if total > limit:
                raise BadBody(f"body larger than {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    def skip(self, count: int) -> int:
        """Read and forget up to `count` bytes; how many there were."""
        skipped = 0
        while skipped < count and not self._finished:
            data = self._read(min(CHUNK, count - skipped))
            self.consumed += len(data)
            skipped += len(data)
        return skipped

    def drain(self) -> int:
        """Read and forget the rest, so the connection can carry the answer."""
        return sum(len(data) for data in self.chunks())

    def _read(self, size: int) -> bytes:
        if not self.chunked:
            data = self._stream.read(min(size, self._remaining))
            if not data:
                raise BadBody("the body ended before Content-Length")
            self._remaining -= len(data)
            self._finished = self._remaining == 0
            return data
        if self._chunk_left == 0:
            self._chunk_left = self._next_chunk_size()
            if self._chunk_left == 0:
                self._read_trailers()
                self._finished = True
                return b""
        data = self._stream.read(min(size, self._chunk_left))
        if not data:
            raise BadBody("the body ended inside a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._stream.read(2) != b"\r\n":
            raise BadBody("a chunk does not end with CRLF")
        return data

    def _next_chunk_size(self) -> int:
        line = self._stream.readline(1024)
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadBody(f"bad chunk size line {line[:40]!r}") from exc

    def _read_trailers(self) -> None:
        while True:
            line = self._stream.readline(HEADER_LIMIT)
            if line in (b"\r\n", b"\n", b""):
                return


@dataclass
class Part:
    """One part of a multipart body: its headers, and its content counted, not kept."""

    name: str | None
    filename: str | None
    content_type: str | None
    size: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return self.hasher.hexdigest()


class MultipartCounter:
    """An incremental multipart/form-data parser that counts and hashes each part.

    Feed it chunks of any size (a boundary may be split across them); `finish` checks the
    closing boundary came. Only a chunk plus a delimiter's length is ever buffered.
    """

    def __init__(self, boundary: str) -> None:
        if not boundary:
            raise BadBody("multipart body without a boundary")
        self._marker = b"\r\n--" + boundary.encode("latin-1")
        # A CRLF in front lets the first delimiter (which has none) match the same marker.
        self._buffer = b"\r\n"
        self._state = "preamble"
        self._part: Part | None = None
        self.parts: list[Part] = []

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._step():
            pass

    def finish(self) -> list[Part]:
        if self._state != "epilogue":
            raise BadBody("multipart body ended before its closing boundary")
        return self.parts

    def _step(self) -> bool:
        """Advance once; False when more input is needed."""
        if self._state == "preamble":
            index = self._buffer.find(self._marker)
            if index < 0:
                self._buffer = self._buffer[-(len(self._marker) - 1) :]
                return False
            self._buffer = self._buffer[index + len(self._marker) :]
            self._state = "delimiter"
            return True
        if self._state == "delimiter":
            # After a delimiter: "--" closes the body, CRLF opens a part (padding allowed).
            stripped = self._buffer.lstrip(b" \t")
            if len(stripped) < 2:
                return False
            if stripped.startswith(b"--"):
                self._state, self._buffer = "epilogue", b""
                return False
            if not stripped.startswith(b"\r\n"):
                raise BadBody("a multipart delimiter is not followed by CRLF")
            self._buffer, self._state = stripped[2:], "headers"
            return True
        if self._state == "headers":
            index = self._buffer.find(b"\r\n\r\n")
            if index < 0:
                if len(self._buffer) > HEADER_LIMIT:
                    raise BadBody("a multipart part's headers are too long")
                return False
            self._part = _part_from_headers(self._buffer[:index])
            self.parts.append(self._part)
            self._buffer = self._buffer[index + 4 :]
            self._state = "body"
            return True
        if self._state == "body":
            assert self._part is not None
            index = self._buffer.find(self._marker)
            if index < 0:
                # Keep what could be the start of a delimiter split across chunks.
                keep = len(self._marker) - 1
                if len(self._buffer) > keep:
                    self._count(self._buffer[:-keep])
                    self._buffer = self._buffer[-keep:]
                return False
            self._count(self._buffer[:index])
            self._buffer = self._buffer[index + len(self._marker) :]
            self._state = "delimiter"
            return True
        self._buffer = b""  # the epilogue is ignored
        return False

    def _count(self, data: bytes) -> None:
        assert self._part is not None
        self._part.size += len(data)
        self._part.hasher.update(data)


def _part_from_headers(block: bytes) -> Part:
    # UTF-8 because clients send non-ASCII file names raw (as browsers and httpx do).
    headers = HeaderParser().parsestr(block.decode("utf-8", errors="replace") + "\r\n\r\n")
    disposition = headers.get("Content-Disposition")
    if disposition is None:
        raise BadBody("a multipart part without Content-Disposition")
    name = headers.get_param("name", header="content-disposition")
    return Part(
        name=name if isinstance(name, str) else None,
        filename=headers.get_filename(),
        content_type=headers.get_content_type() if headers.get("Content-Type") else None,
    )
