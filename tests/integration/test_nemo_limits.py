"""The nemo engine keeps to the service's limits (issue 14): a 429 is retried once and
then fails the step with the server's words; a download whose link is refused fails at
once (after one fresh link), one cut short is retried a few times, each logged; the
rule's `nemo.render_deadline` is the render's deadline. Against the fake NemoVideo server
on 127.0.0.1, the waits recorded instead of slept."""

# ruff: noqa: F811 (the `world` fixture, and `video` that it uses, come from test_nemo_engine)

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from nemowatch.errors import CreditsExhausted
from nemowatch.ledger import JobState
from nemowatch.pipeline import Pipeline
from nemowatch.probe import probe
from nemowatch.rules import ExportSpec, Quality
from tests.fakes.nemo_server import Endpoint, Fault
from tests.integration.test_nemo_engine import World, video, world  # noqa: F401
from tests.media import TOOL_FFMPEG


async def test_a_server_that_always_says_429_gets_two_requests_then_a_retryable_failure(
    world: World,
) -> None:
    world.fake.faults.next(Fault.RATE_LIMIT, Endpoint.SESSION, times=100, retry_after=7)

    record = await world.run()

    assert record.state is JobState.FAILED and record.retryable
    assert world.requests(Endpoint.SESSION) == 2  # the request, and the one retry
    assert world.sleeps.delays == [7.0]  # the wait it asked for, once
    report = world.error_report()
    assert "Too Many Requests" in report["error"] and report["retryable"] is True
    [retry] = world.events("retry")
    assert retry["wait_s"] == 7.0


async def test_a_render_poll_that_always_says_429_inside_a_download_is_asked_twice(
    world: World,
) -> None:
    engine = world.engine()
    world.fake.faults.next(Fault.RATE_LIMIT, Endpoint.FILES, times=100, retry_after=1)

    record = await world.run(world.pipeline(engine))

    assert record.state is JobState.FAILED and record.retryable
    assert world.requests(Endpoint.FILES) == 2  # not a retry inside a retry
    assert "download" in record.error and "rate limited" in record.error


async def test_a_download_link_that_answers_404_fails_at_once_after_one_fresh_link(
    world: World,
) -> None:
    world.fake.faults.next(Fault.ANSWER, Endpoint.FILES, times=100, status=404, body={})

    record = await world.run()

    assert record.state is JobState.FAILED and record.retryable
    assert world.requests(Endpoint.FILES) == 2  # the link, and one fresh one
    assert "download" in record.error and "HTTP 404" in record.error
    assert world.events("retry") == []  # no waiting: trying the same link would not help
    assert len(world.events("download.link_refused")) == 1
    assert "retry" in world.error_report()["hint"]


async def test_a_download_cut_short_is_retried_and_then_done_each_cut_logged(
    world: World,
) -> None:
    world.fake.faults.next(Fault.TRUNCATE, Endpoint.FILES, times=2, after_bytes=10_000)

    record = await world.run()

    assert record.state is JobState.DONE, record.error
    assert world.requests(Endpoint.FILES) == 3
    retries = world.events("retry")
    assert len(retries) == 2 and all("ended early" in entry["error"] for entry in retries)
    assert record.output is not None and record.output.stat().st_size == world.fake.video_size


async def test_a_download_that_keeps_being_cut_short_fails_with_what_happened(
    world: World,
) -> None:
    world.fake.faults.next(Fault.TRUNCATE, Endpoint.FILES, times=100, after_bytes=10_000)

    record = await world.run()

    assert record.state is JobState.FAILED and record.retryable
    assert world.requests(Endpoint.FILES) == 3
    assert "download" in record.error and "ended early 3 times" in record.error


async def test_the_render_deadline_is_the_rules(world: World) -> None:
    world.fake.variants = replace(world.fake.variants, render_polls=10_000)
    engine = world.engine(render_deadline=20.0)
    # the pipeline's clock is the time its recorded sleeps would have taken
    pipeline = Pipeline(
        engine,
        world.ledger,
        state_dir=world.state_dir,
        sleep=world.sleeps,
        clock=lambda: sum(world.sleeps.delays),
    )

    record = await world.run(pipeline)

    assert record.state is JobState.FAILED and record.retryable
    assert "did not finish within 20 s" in record.error
    assert "nemo.render_deadline" in world.error_report()["hint"]
    assert sum(world.sleeps.delays) <= 20.0 + 30.0  # the last poll's wait at most


async def test_the_registration_link_names_the_user_the_session_gave(world: World) -> None:
    # the anonymous token's answer has no user id; the session's has (nemo-api.md, 2001)
    world.fake.variants = replace(world.fake.variants, token_user_id=False)
    world.fake.set_credits(None, 1)  # enough for the first instruction only
    job_id = world.drop()

    with pytest.raises(CreditsExhausted) as raised:
        await world.pipeline().run(job_id, world.rule)

    user_id = world.fake.books.sessions[0].user_id
    assert user_id and f"https://nemovideo.com/register?bind={user_id}" in str(raised.value)
    kept = json.loads((world.state_dir / "nemo-auth.json").read_text())
    assert kept["user_id"] == user_id  # kept for the next start too


async def test_a_render_of_another_size_and_rate_is_conformed_to_the_rules_export(
    world: World, tmp_path: Path
) -> None:
    # the service renders 1080p at 25 fps; the rule asks for 720p at 30 fps
    rendered = tmp_path / "rendered-1080p25.mp4"
    subprocess.run(
        [
            str(TOOL_FFMPEG), "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=25:d=1",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
            "-movflags", "+faststart", str(rendered),
        ],
        check=True,
    )  # fmt: skip
    world.fake.serve_video(rendered)
    world.rule = world.rule.model_copy(
        update={
            "export": ExportSpec(resolution="720p", fps=30.0, quality=Quality.LOW),
            "report": True,
        }
    )

    record = await world.run()

    assert record.state is JobState.DONE, record.error
    assert record.output is not None
    video = probe(record.output).video
    assert video is not None and (video.width, video.height) == (1280, 720)
    assert video.fps == pytest.approx(30.0)
    [warning] = record.warnings
    assert "1920x1080 at 25 fps" in warning and "conformed to 1280x720 at 30 fps" in warning
    report = json.loads(record.output.with_name(record.output.name + ".json").read_text())
    assert report["warnings"] == [warning]
    assert not [path for path in world.rule.outbox.iterdir() if path.name.startswith(".")]


async def test_only_the_edit_goes_to_the_chat_and_export_1080p_reaches_the_render(
    world: World,
) -> None:
    instructions = ("cut out silences", "export 1080p", "check my credits")
    world.rule = world.rule.model_copy(update={"instructions": instructions})

    record = await world.run()

    assert record.state is JobState.DONE, record.error
    assert world.requests(Endpoint.RUN_SSE) == 1  # one paid turn, not three
    assert world.sent() == ["cut out silences"]
    assert record.output is not None
    video = probe(record.output).video
    assert video is not None and min(video.width or 0, video.height or 0) == 1080
    assert [entry["clause"] for entry in world.events("instruction.routed")] == [
        "export 1080p",
        "check my credits",
    ]
