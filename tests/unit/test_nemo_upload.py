"""Upload: local checks before any network use, and a body streamed from disk."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import httpx
import pytest

from nemowatch.engines.base import Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.upload import MAX_UPLOAD_BYTES
from nemowatch.errors import MediaError
from tests.unit.test_nemo_fakeapi import (
    FakeApi,
    Sleeps,
    envelope,
    make_engine,
    server_error,
    settings,
)

MB = 1024 * 1024


def session_of(fake: FakeApi) -> Session:
    session_id = fake.new_session()
    return Session(id=session_id, data={"session_id": session_id, "job_id": "job1"})


@pytest.mark.parametrize("name", ["clip.mts", "clip", "notes.txt", "clip.mp4.part"])
async def test_an_unsupported_extension_is_refused_before_any_request(
    tmp_path: Path, name: str
) -> None:
    fake = FakeApi()
    source = tmp_path / name
    source.write_bytes(b"x" * 100)
    engine = make_engine(fake, tmp_path)
    with pytest.raises(MediaError, match="does not accept"):
        await engine.upload(session_of(fake), source)
    await engine.close()
    assert fake.requests == []


async def test_a_file_over_500_mb_is_refused_before_any_request(tmp_path: Path) -> None:
    fake = FakeApi()
    source = tmp_path / "huge.mp4"
    with source.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_UPLOAD_BYTES + 1)
    engine = make_engine(fake, tmp_path)
    with pytest.raises(MediaError, match="at most 500 MB") as raised:
        await engine.upload(session_of(fake), source)
    await engine.close()
    assert raised.value.hint is not None and "compress" in raised.value.hint
    assert fake.requests == []


async def test_an_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    fake = FakeApi()
    empty = tmp_path / "empty.mp4"
    empty.touch()
    engine = make_engine(fake, tmp_path)
    with pytest.raises(MediaError, match="empty"):
        await engine.upload(session_of(fake), empty)
    with pytest.raises(MediaError, match="cannot read"):
        await engine.upload(session_of(fake), tmp_path / "gone.mov")
    await engine.close()
    assert fake.requests == []


@pytest.mark.parametrize("extension", [".MP4", ".mov", ".webm", ".png", ".m4a", ".aac"])
async def test_supported_extensions_are_uploaded(tmp_path: Path, extension: str) -> None:
    fake = FakeApi()
    source = tmp_path / f"clip{extension}"
    source.write_bytes(b"data" * 10)
    engine = make_engine(fake, tmp_path)
    await engine.upload(session_of(fake), source)
    await engine.close()
    assert fake.count("upload") == 1


async def test_the_media_comes_from_the_first_file_of_the_answer(tmp_path: Path) -> None:
    fake = FakeApi()
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video" * 100)
    engine = make_engine(fake, tmp_path)
    media = await engine.upload(session_of(fake), source)
    await engine.close()
    assert (media.name, media.duration, media.width, media.height, media.fps) == (
        "clip.mp4",
        12.5,
        1920,
        1080,
        30.0,
    )
    assert media.data["cdn_url"] == "https://cdn.test/clip.mp4"
    assert media.data["session_state_applied"] is True


async def test_a_retried_upload_sends_the_whole_file_again(tmp_path: Path) -> None:
    fake = FakeApi()
    source = tmp_path / "clip.mp4"
    content = os.urandom(300_000)
    source.write_bytes(content)
    engine = make_engine(fake, tmp_path, sleep=Sleeps())
    fake.fail("upload", server_error(503))
    await engine.upload(session_of(fake), source)
    await engine.close()
    uploads = [request for request in fake.requests if request.url.path.startswith("/api/upload")]
    assert len(uploads) == 2
    assert all(content in request.content for request in uploads)


class CountingServer(httpx.AsyncBaseTransport):
    """Reads an upload chunk by chunk, as a server would, keeping only a digest."""

    def __init__(self) -> None:
        self.received = 0
        self.largest_chunk = 0
        self.digest = hashlib.sha256()
        self.content_length: int | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.content_length = int(request.headers["content-length"])
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            self.received += len(chunk)
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            self.digest.update(chunk)
        files = [{"filename": "big.mp4", "duration": 600, "width": 640, "height": 360, "fps": 25}]
        return httpx.Response(200, json=envelope({"files": files}))


async def test_a_50_mb_upload_is_streamed_not_read_into_memory(tmp_path: Path) -> None:
    source = tmp_path / "big.mp4"
    block = os.urandom(MB)
    with source.open("wb") as handle:
        for _ in range(50):
            handle.write(block)
    server = CountingServer()
    engine = NemoEngine(
        settings(),
        state_dir=tmp_path,
        environ={"NEMO_TOKEN": "nmv_env_token_123456"},
        sleep=Sleeps(),
        transport=server,
        system="linux",
    )
    tracemalloc.start()
    try:
        media = await engine.upload(Session(id="1001", data={}), source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await engine.close()
    assert media.duration == 600
    assert server.received == server.content_length  # the length came from the file's size
    assert server.received > 50 * MB
    assert server.largest_chunk <= MB
    assert peak < 8 * MB, f"peak traced memory {peak / MB:.1f} MB for a 50 MB upload"
