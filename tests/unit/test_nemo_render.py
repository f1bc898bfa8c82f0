"""Export: deterministic render ids, every poll shape, and a download without the token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nemowatch.engines.base import Draft, Render, RenderState, Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.render import parse_status, size_problem, submit_body
from nemowatch.errors import EngineError, TransientError
from nemowatch.rules import ExportSpec, Quality
from tests.fakes.nemo_kit import START_DRAFT, VIDEO, Sleeps, make_engine, serving, session_in
from tests.fakes.nemo_server import (
    CompletedUrl,
    DownloadForm,
    Endpoint,
    FakeNemo,
    Fault,
    RenderRecord,
    RenderShape,
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


def test_the_submit_body_is_as_documented() -> None:
    body = submit_body("render_j_1", "42", {"t": []}, format="mp4", quality="high")
    assert body == {
        "id": "render_j_1",
        "sessionId": "42",
        "draft": {"t": []},
        "output": {"format": "mp4", "quality": "high"},
    }


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNemo]:
    with serving(tmp_path) as server:
        yield server


@pytest.fixture
def token(fake: FakeNemo) -> str:
    return fake.mint_token()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def engine(fake: FakeNemo, tmp_path: Path, sleeps: Sleeps, token: str) -> NemoEngine:
    return make_engine(fake, tmp_path, sleep=sleeps, token=token)


def session_of(fake: FakeNemo, token: str) -> Session:
    draft = {**START_DRAFT, "v": 2, "c": {"w": 1080}}  # keys Draft does not model
    return session_in(fake, token, draft)


def submitted(fake: FakeNemo) -> list[RenderRecord]:
    return [record for records in fake.books.renders.values() for record in records]


def requests(fake: FakeNemo, endpoint: Endpoint) -> int:
    return len(fake.books.requests_to(endpoint))


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


async def test_the_render_id_is_deterministic_and_the_draft_nemovideos_own(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_of(fake, token)
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
    (record,) = submitted(fake)
    assert (record.render_id, record.session_id, record.accepted) == (render.id, session.id, True)
    assert record.output == {"format": "mp4", "quality": "high"}
    assert record.draft["v"] == 2  # NemoVideo's own draft, keys and all


async def test_a_render_submitted_before_a_crash_is_found_again_not_resubmitted(
    fake: FakeNemo, tmp_path: Path, token: str
) -> None:
    session = session_of(fake, token)
    first = make_engine(fake, tmp_path, token=token)
    await export(first, session)
    await first.close()  # the daemon dies before the ledger write
    second = make_engine(fake, tmp_path, token=token)
    render = await export(second, session)
    await second.close()
    assert render.id == "render_job1_1"
    assert fake.books.accepted_renders() == ["render_job1_1"]


async def test_after_a_failed_render_the_next_number_is_submitted(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_of(fake, token)
    await export(engine, session)
    fake.fail_render("render_job1_1", "out of memory")
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_2"
    assert render.data["n"] == 2
    assert fake.books.accepted_renders() == ["render_job1_1", "render_job1_2"]


async def test_a_duplicate_id_that_is_not_ours_moves_to_the_next_number(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_of(fake, token)
    fake.add_render("render_job1_1", "x", fake.mint_token())  # someone else's: polls 404
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_2"
    assert [record.outcome for record in submitted(fake)] == ["duplicate", "accepted"]


async def test_a_submit_retried_after_its_answer_was_lost_adopts_the_first(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_of(fake, token)
    fake.faults.next(Fault.LOST_ANSWER, Endpoint.RENDER_SUBMIT, status=502)
    render = await export(engine, session)
    await engine.close()
    assert render.id == "render_job1_1"
    assert fake.books.accepted_renders() == ["render_job1_1"]


@pytest.mark.parametrize("shape", [RenderShape.A, RenderShape.B, RenderShape.C])
async def test_every_poll_shape_reaches_completed_with_a_url(
    engine: NemoEngine, fake: FakeNemo, token: str, shape: RenderShape
) -> None:
    fake.variants = replace(fake.variants, render_shape=shape)
    render = await export(engine, session_of(fake, token))
    seen = await poll_until_done(engine, render)
    status = await engine.poll(render)
    await engine.close()
    assert seen == [S.PROCESSING, S.COMPLETED]
    assert status.data["url"] == fake.file_url("render_job1_1")


async def test_a_failed_render_reports_its_error(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    render = await export(engine, session_of(fake, token))
    fake.fail_render(render.id, "codec error")
    status = await engine.poll(render)
    await engine.close()
    assert (status.state, status.error) == (S.FAILED, "codec error")


async def test_an_unknown_render_is_lost(engine: NemoEngine) -> None:
    status = await engine.poll(Render("render_nope_1", {}))
    await engine.close()
    assert status.state is S.LOST


async def test_completed_without_a_url_polls_a_little_more(
    engine: NemoEngine, fake: FakeNemo, token: str, tmp_path: Path
) -> None:
    fake.variants = replace(fake.variants, completed_url=CompletedUrl.LATER, url_delay_polls=2)
    render = await export(engine, session_of(fake, token))
    seen = await poll_until_done(engine, render)
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert seen == [S.PROCESSING, S.PROCESSING, S.PROCESSING, S.COMPLETED]
    assert dest.read_bytes() == VIDEO
    assert requests(fake, Endpoint.DOWNLOAD) == 0


@pytest.mark.parametrize("form", [DownloadForm.BYTES, DownloadForm.JSON])
async def test_completed_without_any_url_falls_back_to_the_download_endpoint(
    engine: NemoEngine, fake: FakeNemo, token: str, tmp_path: Path, form: DownloadForm
) -> None:
    fake.variants = replace(
        fake.variants, completed_url=CompletedUrl.DOWNLOAD_ONLY, download_form=form
    )
    render = await export(engine, session_of(fake, token))
    seen = await poll_until_done(engine, render)
    status = await engine.poll(render)
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert seen[-1] is S.COMPLETED
    assert seen.count(S.PROCESSING) == 1 + 3
    assert status.data["download"] == "/api/render/proxy/render_job1_1/download"
    assert dest.read_bytes() == VIDEO
    assert requests(fake, Endpoint.DOWNLOAD) == 1


async def test_the_video_is_fetched_without_the_token(
    engine: NemoEngine, fake: FakeNemo, token: str, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake, token))
    await poll_until_done(engine, render)
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert dest.read_bytes() == VIDEO
    (fetched,) = fake.books.requests_to(Endpoint.FILES)
    assert not fetched.has_token
    assert "x-skill-source" not in fetched.headers


async def test_an_html_page_is_not_saved_as_video(
    engine: NemoEngine, fake: FakeNemo, token: str, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake, token))
    await poll_until_done(engine, render)
    fake.serve_file(f"/files/{render.id}.mp4", b"<html>login</html>", "text/html")
    dest = tmp_path / "out.mp4"
    with pytest.raises(EngineError, match="text/html"):
        await engine.download(render, dest)
    await engine.close()
    assert not dest.exists()


async def test_a_json_answer_from_the_video_url_is_followed_to_its_output_url(
    engine: NemoEngine, fake: FakeNemo, token: str, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake, token))
    await poll_until_done(engine, render)
    real = fake.serve_file(f"/real/{render.id}.mp4", VIDEO, "application/octet-stream")
    redirect = json.dumps({"output": {"url": real}}).encode()
    fake.serve_file(f"/files/{render.id}.mp4", redirect, "application/json")
    dest = tmp_path / "out.mp4"
    await engine.download(render, dest)
    await engine.close()
    assert dest.read_bytes() == VIDEO


async def test_an_expired_link_answering_json_is_retried_with_a_fresh_poll(
    engine: NemoEngine, fake: FakeNemo, token: str, tmp_path: Path
) -> None:
    render = await export(engine, session_of(fake, token))
    await poll_until_done(engine, render)
    fake.variants = replace(fake.variants, files_as_json=True)
    dest = tmp_path / "out.mp4"
    with pytest.raises(TransientError, match="JSON, not video"):
        await engine.download(render, dest)
    await engine.close()
    # the DOWNLOAD policy: 3 attempts, each re-polled
    assert requests(fake, Endpoint.FILES) == 3
    assert not dest.exists()


async def test_a_draft_without_clips_is_not_exported(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_in(fake, token, {"t": [{"tt": 0, "sg": []}], "d": 0})
    with pytest.raises(EngineError, match="nothing to export yet"):
        await engine.draft(session)
    await engine.close()


async def test_a_draft_the_pipeline_changed_is_sent_as_the_pipeline_has_it(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_of(fake, token)
    own = Draft(tracks=({"tt": 0, "sg": [{"at": 0, "d": 1000}]},), duration_ms=1000)
    await engine.export(session, own, ExportSpec())
    await engine.close()
    (record,) = submitted(fake)
    assert record.draft == own.to_json()
