"""Upload: local checks before any network use, and a body streamed from disk."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from nemowatch.engines.base import Session
from nemowatch.engines.nemo.upload import MAX_UPLOAD_BYTES
from nemowatch.errors import MediaError
from tests.fakes.nemo_kit import Sleeps, make_engine, serving
from tests.fakes.nemo_server import Endpoint, FakeNemo, Fault

MB = 1024 * 1024


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNemo]:
    with serving(tmp_path) as server:
        yield server


def session_of(fake: FakeNemo, token: str) -> Session:
    """A new session, its draft still empty."""
    session_id = fake.open_session(token)
    return Session(id=session_id, data={"session_id": session_id, "job_id": "job1"})


@pytest.mark.parametrize("name", ["clip.mts", "clip", "notes.txt", "clip.mp4.part"])
async def test_an_unsupported_extension_is_refused_before_any_request(
    fake: FakeNemo, tmp_path: Path, name: str
) -> None:
    source = tmp_path / name
    source.write_bytes(b"x" * 100)
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    with pytest.raises(MediaError, match="does not accept"):
        await engine.upload(session_of(fake, token), source)
    await engine.close()
    assert fake.books.requests == []


async def test_a_file_over_500_mb_is_refused_before_any_request(
    fake: FakeNemo, tmp_path: Path
) -> None:
    source = tmp_path / "huge.mp4"
    with source.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_UPLOAD_BYTES + 1)
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    with pytest.raises(MediaError, match="at most 500 MB") as raised:
        await engine.upload(session_of(fake, token), source)
    await engine.close()
    assert raised.value.hint is not None and "compress" in raised.value.hint
    assert fake.books.requests == []


async def test_an_empty_or_missing_file_is_refused(fake: FakeNemo, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    with pytest.raises(MediaError, match="empty"):
        await engine.upload(session_of(fake, token), empty)
    with pytest.raises(MediaError, match="cannot read"):
        await engine.upload(session_of(fake, token), tmp_path / "gone.mov")
    await engine.close()
    assert fake.books.requests == []


@pytest.mark.parametrize("extension", [".MP4", ".mov", ".webm", ".png", ".m4a", ".aac"])
async def test_supported_extensions_are_uploaded(
    fake: FakeNemo, tmp_path: Path, extension: str
) -> None:
    source = tmp_path / f"clip{extension}"
    source.write_bytes(b"data" * 10)
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    await engine.upload(session_of(fake, token), source)
    await engine.close()
    assert len(fake.books.requests_to(Endpoint.UPLOAD)) == 1


async def test_the_media_comes_from_the_first_file_of_the_answer(
    fake: FakeNemo, tmp_path: Path
) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video" * 100)
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    session = session_of(fake, token)
    media = await engine.upload(session, source)
    await engine.close()
    facts = fake.video_facts
    assert (media.name, media.duration, media.width, media.height, media.fps) == (
        "clip.mp4",
        facts.duration,
        facts.width,
        facts.height,
        facts.fps,
    )
    assert media.data["cdn_url"] == f"{fake.base_url}/cdn/{session.id}/clip.mp4"
    assert media.data["hash"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert media.data["session_state_applied"] is True


async def test_a_retried_upload_sends_the_whole_file_again(fake: FakeNemo, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(os.urandom(300_000))
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token, sleep=Sleeps())
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.UPLOAD, status=503)
    session = session_of(fake, token)
    await engine.upload(session, source)
    await engine.close()
    uploads = fake.books.requests_to(Endpoint.UPLOAD)
    assert [request.status for request in uploads] == [503, 200]
    assert all(request.body_bytes > 300_000 for request in uploads)
    assert fake.books.upload_bytes(session.id) == 300_000


async def test_a_50_mb_upload_is_streamed_not_read_into_memory(
    fake: FakeNemo, tmp_path: Path
) -> None:
    source = tmp_path / "big.mp4"
    block = os.urandom(MB)
    with source.open("wb") as handle:
        for _ in range(50):
            handle.write(block)
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    session = session_of(fake, token)
    tracemalloc.start()
    try:
        await engine.upload(session, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await engine.close()
    (upload,) = fake.books.requests_to(Endpoint.UPLOAD)
    assert upload.headers["content-length"] == str(upload.body_bytes)  # from the file's size
    assert fake.books.upload_bytes(session.id) == 50 * MB
    assert peak < 8 * MB, f"peak traced memory {peak / MB:.1f} MB for a 50 MB upload"
