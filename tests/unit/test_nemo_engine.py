"""NemoEngine through the whole protocol, and what it leaves in the ledger for a restart."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from nemowatch.engines.base import EditEventKind, Engine, Job, Render, RenderState, Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.errors import CreditsExhausted, MediaError
from nemowatch.rules import EditSpec, ExportSpec
from tests.fakes.nemo_kit import DEFAULT_TURN, VIDEO, make_engine, serving
from tests.fakes.nemo_server import Endpoint, FakeNemo, Fault
from tests.media import TOOL_FFMPEG


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNemo]:
    with serving(tmp_path) as server:
        yield server


def job(tmp_path: Path, source: Path) -> Job:
    if not source.exists():
        source.write_bytes(b"video" * 1000)  # the engine checks it before opening a session
    return Job(
        id="job1",
        rule="reels",
        source=source,
        instructions=("cut out silences",),
        edit=EditSpec(),
        export=ExportSpec(),
        work_dir=tmp_path / "work",
    )


def test_nemo_engine_is_an_engine(fake: FakeNemo, tmp_path: Path) -> None:
    engine: Engine = make_engine(fake, tmp_path)
    assert engine.name == "nemo"


async def test_a_job_from_session_to_downloaded_video(fake: FakeNemo, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video" * 1000)
    engine = make_engine(fake, tmp_path)
    fake.script_turn(*DEFAULT_TURN)

    session = await engine.open_session(job(tmp_path, source))
    assert session.data == {
        "session_id": session.id,
        "task_id": fake.books.sessions[0].task_id,
        "user_id": fake.books.sessions[0].user_id,
        "job_id": "job1",
    }
    media = await engine.upload(session, source)
    before = await engine.edit_checkpoint(session)
    events = [event async for event in engine.edit(session, "cut out silences")]
    assert await engine.edit_checkpoint(session) != before
    assert [event.text for event in events if event.kind is EditEventKind.TEXT] == ["Done."]
    draft = await engine.draft(session)
    render = await engine.export(session, draft, ExportSpec(format="mp4"))
    states = [(await engine.poll(render)).state for _ in range(2)]
    dest = tmp_path / "out" / "result.mp4"
    dest.parent.mkdir()
    await engine.download(render, dest)
    await engine.close()

    assert media.duration == fake.video_facts.duration
    assert draft.duration == fake.video_facts.duration
    assert states == [RenderState.PROCESSING, RenderState.COMPLETED]
    assert dest.read_bytes() == VIDEO


async def test_session_and_render_survive_a_restart_as_json(fake: FakeNemo, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video" * 1000)
    token = fake.mint_token()
    first = make_engine(fake, tmp_path, token=token)
    session = await first.open_session(job(tmp_path, source))
    await first.upload(session, source)
    render = await first.export(session, await first.draft(session), ExportSpec())
    kept_session = json.loads(json.dumps(asdict(session)))
    kept_render = json.loads(json.dumps(asdict(render)))
    await first.close()

    second = make_engine(fake, tmp_path, token=token)  # a new daemon, the same ledger
    rebuilt = Session(**kept_session)
    again = Render(**kept_render)
    assert await second.edit_checkpoint(rebuilt)
    statuses = [(await second.poll(again)).state for _ in range(2)]
    dest = tmp_path / "out.mp4"
    await second.download(again, dest)
    await second.close()
    assert statuses[-1] is RenderState.COMPLETED
    assert dest.read_bytes() == VIDEO


@pytest.mark.parametrize(
    ("name", "size", "message"),
    [
        (
            "talk.mp4",
            500 * 1024 * 1024 + 1,
            r"talk\.mp4 is 500 MB; NemoVideo accepts at most 500 MB",
        ),
        ("scan.tiff", 1000, r"scan\.tiff: NemoVideo does not accept \.tiff"),
        ("empty.mp3", 0, r"empty\.mp3 is empty"),
    ],
)
async def test_what_nemovideo_would_refuse_fails_before_a_session_is_opened(
    fake: FakeNemo, tmp_path: Path, name: str, size: int, message: str
) -> None:
    source = tmp_path / name
    with source.open("wb") as handle:
        handle.truncate(size)  # sparse: 500 MB of nothing on disk
    engine = make_engine(fake, tmp_path)

    with pytest.raises(MediaError, match=message) as raised:
        await engine.open_session(job(tmp_path, source))
    await engine.close()

    assert fake.books.sessions == []
    assert raised.value.hint


async def test_an_anonymous_session_knows_its_user(fake: FakeNemo, tmp_path: Path) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    session = await engine.open_session(job(tmp_path, tmp_path / "clip.mp4"))
    await engine.close()
    assert str(session.data["user_id"]).startswith("anon_")


async def test_credits_report_the_balance_and_whose_it_is(fake: FakeNemo, tmp_path: Path) -> None:
    fake.set_credits(None, 90.0)
    engine = make_engine(fake, tmp_path, token=None)
    credits = await engine.credits()
    await engine.close()
    assert (credits.available, credits.frozen, credits.total) == (90.0, 0.0, 90.0)
    assert credits.anonymous
    assert credits.user_id is not None and credits.user_id.startswith("anon_")


async def test_no_credits_during_an_edit_tells_an_anonymous_user_where_to_register(
    fake: FakeNemo, tmp_path: Path
) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    session = await engine.open_session(job(tmp_path, tmp_path / "clip.mp4"))
    fake.faults.next(Fault.NO_CREDITS, Endpoint.RUN_SSE)
    with pytest.raises(CreditsExhausted) as raised:
        _ = [event async for event in engine.edit(session, "cut out silences")]
    await engine.close()
    assert f"register?bind={session.data['user_id']}" in str(raised.value)
    assert fake.books.applied_instructions(session.id) == []


async def test_close_is_safe_to_call_twice(fake: FakeNemo, tmp_path: Path) -> None:
    engine: NemoEngine = make_engine(fake, tmp_path)
    await engine.close()
    await engine.close()


@pytest.mark.parametrize(
    ("name", "arguments", "says"),
    [
        ("clip.jpg", ("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=0.5", "-f", "mp4"),
         "clip.jpg holds a video, but its name says a picture"),
        ("still.mp4", ("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1", "-c:v", "png",
                       "-f", "image2pipe"), "still.mp4 holds a picture, but its name says a video"),
    ],
)  # fmt: skip
async def test_a_file_whose_content_its_name_belies_fails_before_a_session(
    fake: FakeNemo, tmp_path: Path, name: str, arguments: tuple[str, ...], says: str
) -> None:
    source = tmp_path / name
    subprocess.run(
        [str(TOOL_FFMPEG), "-nostdin", "-v", "error", *arguments, str(source)], check=True
    )
    engine = make_engine(fake, tmp_path)

    with pytest.raises(MediaError, match=says) as raised:
        await engine.open_session(job(tmp_path, source))
    await engine.close()

    assert fake.books.sessions == []
    assert "rename it with the extension of its format" in (raised.value.hint or "")
