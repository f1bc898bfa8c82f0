"""Export: deterministic render ids, every poll shape, and a download without the token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from nemowatch.engines.base import Draft, Render, RenderState, Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.render import parse_status, size_problem
from nemowatch.errors import EngineError, TransientError
from nemowatch.rules import ExportSpec, Quality
from tests.unit.test_nemo_fakeapi import (
    FILES_HOST,
    START_DRAFT,
    VIDEO,
    FakeApi,
    Sleeps,
    make_engine,
    server_error,
)

S = RenderState

# ---------------------------------------------------------------- poll shapes (pure)


def test_shape_a_success_envelope_with_output_url() -> None:
    polled = parse_status(
        {"id": "r", "status": "completed", "progress": 100, "outputUrl": "https://x/v.mp4"}
    )
    assert (polled.state, polled.progress, polled.url) == (S.COMPLETED, 100.0, "https://x/v.mp4")


def test_shape_b_task_with_output_object() -> None:
    polled = parse_status(
        {
            "taskId": "r",
            "status": "completed",
            "progress": 100,
            "output": {"url": "https://x/v.mp4", "duration": 30.5, "size": 15728640},
        }
    )
    assert (polled.state, polled.url, polled.size, polled.duration) == (
        S.COMPLETED,
        "https://x/v.mp4",
        15728640,
        30.5,
    )


@pytest.mark.parametrize("status", ["pending", "processing", "queued", "rendering", ""])
def test_pending_processing_and_unknown_statuses_are_still_running(status: str) -> None:
    assert parse_status({"status": status, "progress": 5}).state is S.PROCESSING


def test_failed_carries_the_error() -> None:
    polled = parse_status({"status": "failed", "error": "out of memory"})
    assert (polled.state, polled.error) == (S.FAILED, "out of memory")


def test_remotion_progress_is_a_fraction_and_done_is_completed() -> None:
    running = parse_status({"done": False, "overallProgress": 0.42, "errors": []})
    finished = parse_status({"done": True, "overallProgress": 1, "outputFile": "https://x/o.mp4"})
    assert (running.state, running.progress) == (S.PROCESSING, 42.0)
    assert (finished.state, finished.url) == (S.COMPLETED, "https://x/o.mp4")


def test_remotion_errors_that_will_be_retried_or_are_not_fatal_are_not_failures() -> None:
    polled = parse_status(
        {
            "done": False,
            "overallProgress": 0.5,
            "errors": [
                {"message": "chunk 3 timed out", "isFatal": False},
                {"message": "lambda throttled", "isFatal": True, "willRetry": True},
            ],
        }
    )
    assert polled.state is S.PROCESSING


def test_remotion_fatal_errors_are_failures() -> None:
    fatal = parse_status({"done": False, "errors": [{"message": "bad codec", "isFatal": True}]})
    flagged = parse_status({"done": False, "fatalErrorEncountered": True, "errors": []})
    assert (fatal.state, fatal.error) == (S.FAILED, "bad codec")
    assert flagged.state is S.FAILED


def test_size_sanity() -> None:
    assert size_problem(0, announced=None) == "it is empty"
    assert size_problem(10, announced="12") == "10 bytes of the 12 announced"
    assert size_problem(12, announced="12") is None


# ---------------------------------------------------------------- against the fake


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def engine(fake: FakeApi, tmp_path: Path, sleeps: Sleeps) -> NemoEngine:
    return make_engine(fake, tmp_path, sleep=sleeps)


def session_of(fake: FakeApi, job_id: str = "job1") -> Session:
    draft = {**START_DRAFT, "v": 2, "c": {"w": 1080}}  # keys Draft does not model
    session_id = fake.new_session(draft)
    return Session(id=session_id, data={"session_id": session_id, "job_id": job_id})


async def export(engine: NemoEngine, session: Session) -> Render:
    draft = await engine.draft(session)
    return await engine.export(session, draft, ExportSpec(format="mp4", quality=Quality.HIGH))


async def poll_until_done(engine: NemoEngine, render: Render, limit: int = 20) -> list[S]:
    seen = []
    for _ in range(limit):
        status = await engine.poll(render)
        seen.append(status.state)
        if status.state not in (S.PENDING, S.PROCESSING):
            break
    return seen


async def test_the_render_id_is_deterministic_and_the_body_as_documented(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = session_of(fake)
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_1"
    assert render.data == {
        "job_id": "job1",
        "session_id": session.id,
        "format": "mp4",
        "quality": "high",
        "n": 1,
    }
    submitted = json.loads(next(r.content for r in fake.requests if r.method == "POST"))
    assert set(submitted) == {"id", "sessionId", "draft", "output"}
    assert submitted["output"] == {"format": "mp4", "quality": "high"}
    assert submitted["draft"]["v"] == 2  # NemoVideo's own draft, keys and all


async def test_a_render_submitted_before_a_crash_is_found_again_not_resubmitted(
    fake: FakeApi, tmp_path: Path
) -> None:
    session = session_of(fake)
    first = make_engine(fake, tmp_path)
    await export(first, session)
    await first.close()  # the daemon dies before the ledger write
    second = make_engine(fake, tmp_path)
    render = await export(second, session)
    await second.close()
    assert render.id == "render_job1_1"
    assert list(fake.renders) == ["render_job1_1"]


async def test_after_a_failed_render_the_next_number_is_submitted(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = session_of(fake)
    await export(engine, session)
    fake.renders["render_job1_1"]["failed"] = "out of memory"
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_2"
    assert render.data["n"] == 2
    assert list(fake.renders) == ["render_job1_1", "render_job1_2"]


async def test_a_duplicate_id_that_is_not_alive_moves_to_the_next_number(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = session_of(fake)
    fake.renders["render_job1_1"] = {"session": "x", "polls": 0, "failed": None}
    not_found = httpx.Response(404, json={"success": False, "error": "render not found"})
    fake.fail("poll", not_found, not_found)  # the probe and the check after the refusal
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_2"


async def test_a_submit_retried_after_its_answer_was_lost_adopts_the_first(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = session_of(fake)

    def accepted_then_lost(request: httpx.Request) -> httpx.Response:
        fake._submit(request)
        return server_error(502)

    fake.fail("submit", accepted_then_lost)
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_1"
    assert list(fake.renders) == ["render_job1_1"]


@pytest.mark.parametrize("shape", ["a", "b", "c"])
async def test_every_poll_shape_reaches_completed_with_a_url(
    engine: NemoEngine, fake: FakeApi, shape: str
) -> None:
    fake.render_shape = shape
    render = await export(engine, session_of(fake))
    seen = await poll_until_done(engine, render)
    status = await engine.poll(render)
    await engine.close()
    assert seen == [S.PROCESSING, S.COMPLETED]
    assert status.data["url"] == f"{FILES_HOST}/files/render_job1_1.mp4"


async def test_a_failed_render_reports_its_error(engine: NemoEngine, fake: FakeApi) -> None:
    render = await export(engine, session_of(fake))
    fake.renders[render.id]["failed"] = "codec error"
    status = await engine.poll(render)
    await engine.close()
    assert (status.state, status.error) == (S.FAILED, "codec error")


async def test_an_unknown_render_is_lost(engine: NemoEngine, fake: FakeApi) -> None:
    status = await engine.poll(Render("render_nope_1", {}))
    await engine.close()
    assert status.state is S.LOST


async def test_completed_without_a_url_polls_a_little_more(
    engine: NemoEngine, fake: FakeApi, tmp_path: Path
) -> None:
    fake.urlless_polls = 2
    render = await export(engine, session_of(fake))
    seen = await poll_until_done(engine, render)
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert seen == [S.PROCESSING, S.PROCESSING, S.PROCESSING, S.COMPLETED]
    assert dest.read_bytes() == VIDEO
    assert fake.count("download") == 0


@pytest.mark.parametrize("form", ["bytes", "json"])
async def test_completed_without_any_url_falls_back_to_the_download_endpoint(
    engine: NemoEngine, fake: FakeApi, tmp_path: Path, form: str
) -> None:
    fake.urlless_polls = 1000
    fake.download_form = form
    render = await export(engine, session_of(fake))
    seen = await poll_until_done(engine, render)
    status = await engine.poll(render)
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert seen[-1] is S.COMPLETED
    assert seen.count(S.PROCESSING) == 1 + 3
    assert status.data["download"] == "/api/render/proxy/render_job1_1/download"
    assert dest.read_bytes() == VIDEO
    assert fake.count("download") == 1


async def test_the_video_is_fetched_without_the_token(
    engine: NemoEngine, fake: FakeApi, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake))
    await poll_until_done(engine, render)
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert dest.read_bytes() == VIDEO
    assert len(fake.file_requests) == 1
    headers = fake.file_requests[0].headers
    assert "authorization" not in headers
    assert "x-skill-source" not in headers


async def test_an_html_page_is_not_saved_as_video(
    engine: NemoEngine, fake: FakeApi, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake))
    await poll_until_done(engine, render)
    fake.files[f"{FILES_HOST}/files/{render.id}.mp4"] = (b"<html>login</html>", "text/html")
    dest = tmp_path / "out.mp4"
    with pytest.raises(EngineError, match="text/html"):
        await engine.download(render, dest)
    await engine.close()
    assert not dest.exists()


async def test_a_json_answer_from_the_video_url_is_followed_to_its_output_url(
    engine: NemoEngine, fake: FakeApi, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake))
    await poll_until_done(engine, render)
    real = f"{FILES_HOST}/real/{render.id}.mp4"
    fake.files[real] = (VIDEO, "application/octet-stream")
    redirect = json.dumps({"output": {"url": real}}).encode()
    fake.files[f"{FILES_HOST}/files/{render.id}.mp4"] = (redirect, "application/json")
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert dest.read_bytes() == VIDEO


async def test_an_expired_link_answering_json_is_retried_with_a_fresh_poll(
    engine: NemoEngine, fake: FakeApi, tmp_path: Path, sleeps: Sleeps
) -> None:
    render = await export(engine, session_of(fake))
    await poll_until_done(engine, render)
    expired = json.dumps({"detail": "link expired"}).encode()
    fake.files[f"{FILES_HOST}/files/{render.id}.mp4"] = (expired, "application/json")
    dest = tmp_path / "out.mp4"
    with pytest.raises(TransientError, match="JSON, not video"):
        await engine.download(render, dest)
    await engine.close()
    assert len(fake.file_requests) == 3  # the DOWNLOAD policy: 3 attempts, each re-polled
    assert not dest.exists()


async def test_a_draft_without_clips_is_not_exported(engine: NemoEngine, fake: FakeApi) -> None:
    session_id = fake.new_session({"t": [{"tt": 0, "sg": []}], "d": 0})
    with pytest.raises(EngineError, match="nothing to export yet"):
        await engine.draft(Session(id=session_id, data={"job_id": "j"}))
    await engine.close()


async def test_a_draft_the_pipeline_changed_is_sent_as_the_pipeline_has_it(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = session_of(fake)
    own = Draft(tracks=({"tt": 0, "sg": [{"at": 0, "d": 1000}]},), duration_ms=1000)
    await engine.export(session, own, ExportSpec())
    await engine.close()
    assert fake.renders["render_job1_1"]["draft"] == own.to_json()
