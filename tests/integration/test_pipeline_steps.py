"""The pipeline's state machine, driven through a scripted engine: which steps run, in what
order, what a failure at each does, and where a stopped job takes up again.

The scripted engine retries its own calls as a real one does (nemowatch.retry, three tries);
the pipeline retries nothing, so the counts below are the whole story of a failing step."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.config import Rule
from nemowatch.engines.base import Draft, Job, Media, RenderState, RenderStatus, Session
from nemowatch.errors import EngineError, MediaError, RateLimited, TransientError
from nemowatch.files import claim
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.rules import ExportSpec
from nemowatch.steps import WaitForJob
from tests.fakes.scripted_engine import STALL, ScriptedEngine
from tests.ledgers import walk_to
from tests.media import Clips

EVERY_STEP = [
    "open_session",
    "upload",
    "edit_checkpoint",
    "edit",
    "draft",
    "export",
    "poll",
    "download",
]


@dataclass
class World:
    ledger: Ledger
    rule: Rule
    engine: ScriptedEngine
    sleeps: list[float]
    clip: Path

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def pipeline(self) -> Pipeline:
        return Pipeline(
            self.engine, self.ledger, state_dir=self.ledger.path.parent, sleep=self.sleep
        )

    def drop(self) -> str:
        source = self.rule.inbox / "clip.mp4"
        shutil.copy(self.clip, source)
        job_id = new_job_id()
        claimed = claim(source, self.rule.inbox, job_id)
        assert claimed is not None
        self.ledger.create(
            job_id=job_id, rule=self.rule.name, engine="scripted", source=source, claimed=claimed
        )
        return job_id

    def states(self, job_id: str) -> list[str]:
        return [to for _, to, _, _ in self.ledger.history(job_id)]


@pytest.fixture
def world(tmp_path: Path, clips: Clips) -> Iterator[World]:
    rule = Rule(
        name="clips",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=("cut out silences",),
        export=ExportSpec(quality="low"),
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir()
    ledger = Ledger.in_state_dir(tmp_path / "state")
    sleeps: list[float] = []
    world = World(
        ledger, rule, ScriptedEngine(clips.basic, 3.0, sleep=record_in(sleeps)), sleeps, clips.basic
    )
    yield world
    ledger.close()


async def stopped_at(world: World, step: str) -> str:
    """A new job, run until it is in `step`, then stopped there (the daemon stopping)."""
    world.engine.cue(step, STALL)
    job_id = world.drop()
    running = asyncio.ensure_future(world.pipeline().run(job_id, world.rule))
    while world.engine.count(step) < 1:
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    return job_id


def record_in(sleeps: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return sleep


async def test_a_job_calls_every_step_once_in_order_and_passes_every_state(world: World) -> None:
    job_id = world.drop()

    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.DONE
    assert world.engine.calls == EVERY_STEP
    assert world.states(job_id) == [
        "claimed",
        "uploading",
        "editing",
        "exporting",
        "downloading",
        "verifying",
        "done",
    ]
    assert record.output == world.rule.outbox / "clip.mp4" and record.output.is_file()


@pytest.mark.parametrize("step", EVERY_STEP)
async def test_a_transient_failure_at_a_step_is_tried_again_and_the_job_finishes(
    world: World, step: str
) -> None:
    world.engine.cue(step, TransientError("the service is busy"))

    with capture_logs() as logs:
        record = await world.pipeline().run(world.drop(), world.rule)

    assert record.state is JobState.DONE
    assert world.engine.count(step) == 2  # the failed call, then the one that worked
    assert world.engine.calls.count(step) == EVERY_STEP.count(step) + 1  # nothing else again
    assert world.sleeps == [1.0]  # one wait between them
    retries = [entry for entry in logs if entry["event"] == "retry"]
    assert [(e["what"], e["error"], e["attempt"], e["wait_s"]) for e in retries] == [
        (step, "the service is busy", 1, 1.0)
    ]  # every retry is heard of, once


@pytest.mark.parametrize("step", EVERY_STEP)
async def test_a_step_failing_past_the_engines_tries_fails_the_job_retryable_untried_again(
    world: World, step: str
) -> None:
    world.engine.cue(step, *[TransientError("down")] * 5)

    with capture_logs() as logs:
        record = await world.pipeline().run(world.drop(), world.rule)

    assert record.state is JobState.FAILED
    assert record.retryable is True
    assert world.engine.count(step) == 3  # the engine's three tries, and no layer above
    assert world.sleeps == [1.0, 2.0]
    assert len([entry for entry in logs if entry["event"] == "retry"]) == 2
    assert world.engine.calls[-1] == step  # nothing ran after it


async def test_a_429_is_retried_once_after_its_wait_then_fails_the_step_as_retryable(
    world: World,
) -> None:
    world.engine.cue(
        "upload", *[RateLimited("rate limited: try again in 30 s", retry_after=30.0)] * 4
    )
    job_id = world.drop()

    with capture_logs() as logs:
        record = await world.pipeline().run(job_id, world.rule)

    assert world.engine.count("upload") == 2
    assert world.sleeps == [30.0]
    assert record.state is JobState.FAILED
    assert record.retryable is True
    assert record.error == "uploading: rate limited: try again in 30 s"
    retries = [entry for entry in logs if entry["event"] == "retry"]
    assert [(e["what"], e["attempt"], e["wait_s"]) for e in retries] == [("upload", 1, 30.0)]
    assert world.states(job_id)[-2:] == ["uploading", "failed"]


@pytest.mark.parametrize("step", ["upload", "draft", "export", "download"])
async def test_a_failure_that_a_retry_cannot_help_fails_the_job_at_once(
    world: World, step: str
) -> None:
    world.engine.cue(step, MediaError("the file is not a video"))

    record = await world.pipeline().run(world.drop(), world.rule)

    assert record.state is JobState.FAILED
    assert record.retryable is False
    assert world.engine.count(step) == 1
    assert world.sleeps == []
    assert "the file is not a video" in (record.error or "")


async def test_a_failed_render_is_submitted_once_more_and_a_second_failure_fails_the_job(
    world: World,
) -> None:
    failed = RenderStatus(RenderState.FAILED, error="encoder crashed")
    world.engine.cue("poll", failed, failed)

    record = await world.pipeline().run(world.drop(), world.rule)

    assert record.state is JobState.FAILED
    assert world.engine.renders == 2
    assert "encoder crashed" in (record.error or "")


async def test_a_job_stopped_while_its_render_runs_polls_the_same_render_when_run_again(
    world: World,
) -> None:
    job_id = await stopped_at(world, "poll")
    assert world.ledger.get(job_id).state is JobState.EXPORTING

    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.DONE
    assert world.engine.renders == 1  # never submitted again
    assert world.engine.calls[-3:] == ["poll", "poll", "download"]


async def test_an_engine_error_at_open_session_fails_the_job_from_claimed(world: World) -> None:
    world.engine.cue("open_session", EngineError("no session today"))
    job_id = world.drop()

    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.FAILED
    assert world.states(job_id) == ["claimed", "failed"]
    assert world.engine.calls == ["open_session"]


async def test_an_instruction_cut_off_by_a_stop_is_asked_after_not_sent_again(
    world: World,
) -> None:
    world.engine.checkpoint = "draft-v1"
    job_id = await stopped_at(world, "edit")
    assert world.ledger.get(job_id).edit_token == "draft-v1"

    world.engine.landed = True
    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.DONE
    assert world.engine.count("edit") == 1  # the engine said it landed: never sent again
    assert world.engine.count("edit_landed") == 1


async def test_an_instruction_cut_off_that_did_not_land_fails_the_job_and_is_not_resent(
    world: World,
) -> None:
    world.engine.checkpoint = "draft-v1"
    job_id = await stopped_at(world, "edit")

    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.FAILED
    assert record.retryable is True
    assert "not sent again" in (record.error or "")
    assert world.engine.count("edit") == 1


async def test_an_instruction_that_provably_did_not_arrive_is_not_recorded_as_sent(
    world: World,
) -> None:
    world.engine.checkpoint = "draft-v1"
    world.engine.cue("edit", *[TransientError("connect failed")] * 3)
    job_id = world.drop()

    first = await world.pipeline().run(job_id, world.rule)

    assert first.state is JobState.FAILED
    assert first.edit_sent is None  # the ledger does not claim it was sent
    assert world.engine.count("edit") == 3


async def test_a_job_found_verifying_without_its_download_polls_once_and_downloads_again(
    world: World,
) -> None:
    job_id = world.drop()
    video = {"tt": 0, "sg": [{"at": 0, "d": 3000}]}
    walk_to(
        world.ledger,
        job_id,
        JobState.VERIFYING,
        session={"id": "session-1", "data": {}},
        media={"name": "clip.mp4", "duration": 3.0},
        draft=Draft(tracks=(video,), duration_ms=3000).to_json(),
        render={"id": "render-1", "data": {}, "format": "mp4"},
    )

    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.DONE
    assert world.engine.calls == ["poll", "download"]  # nothing before the render again
    assert world.states(job_id)[-3:] == ["downloading", "verifying", "done"]


async def test_a_download_that_leaves_no_file_fails_the_job_instead_of_looping(
    world: World,
) -> None:
    job_id = world.drop()
    world.engine.result = None

    record = await asyncio.wait_for(world.pipeline().run(job_id, world.rule), 10)

    assert record.state is JobState.FAILED
    assert world.engine.count("download") == 1
    assert record.error is not None and record.error.startswith("verifying: ")


async def test_of_two_copies_at_their_claim_at_once_only_one_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The younger copy is fingerprinted first and, seeing no other, opens its session; the
    older one, fingerprinted meanwhile, goes on. Asked again after its session opened, the
    younger one waits for the older, and is skipped once that one is done."""
    older, younger = world.drop(), world.drop()
    session_opened, upload_started = asyncio.Event(), asyncio.Event()
    opening, uploading = asyncio.Event(), asyncio.Event()
    open_session, upload = world.engine.open_session, world.engine.upload

    async def gated_open_session(job: Job) -> Session:
        if job.id == younger:
            opening.set()
            await session_opened.wait()
        return await open_session(job)

    async def gated_upload(session: Session, source: Path) -> Media:
        uploading.set()
        await upload_started.wait()
        return await upload(session, source)

    monkeypatch.setattr(world.engine, "open_session", gated_open_session)
    monkeypatch.setattr(world.engine, "upload", gated_upload)
    pipeline = world.pipeline()
    second = asyncio.ensure_future(pipeline.run(younger, world.rule))
    await opening.wait()
    first = asyncio.ensure_future(pipeline.run(older, world.rule))
    await uploading.wait()  # the older one is past its claim
    session_opened.set()
    with pytest.raises(WaitForJob) as waiting:
        await second
    assert waiting.value.job_id == older
    upload_started.set()
    assert (await first).state is JobState.DONE
    skipped = await pipeline.run(younger, world.rule)
    assert skipped.state is JobState.SKIPPED and older in (skipped.error or "")
    assert world.engine.count("upload") == 1


async def test_stops_cost_a_job_nothing_however_many_there_are(world: World) -> None:
    world.engine.cue("poll", *[STALL] * 7)  # seven stops while it renders: more than max_attempts
    job_id = world.drop()
    for stops in range(1, 8):
        running = asyncio.ensure_future(world.pipeline().run(job_id, world.rule))
        while world.engine.count("poll") < stops:
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert world.ledger.count_crash() == []  # the stop left no crash behind

    record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.DONE
    assert (record.crashes, record.attempts) == (0, 8)


async def test_a_job_found_running_after_crashes_alone_fails_saying_it_crashes_the_daemon(
    world: World,
) -> None:
    job_id = world.drop()
    for _ in range(5):  # max_attempts crashes while it ran; the last time it ran alone
        world.ledger.update(job_id, in_flight=world.ledger.get(job_id).checkpoint)
        (charged,) = world.ledger.count_crash()
    assert (charged.crashes, charged.crashed_alone) == (5, True)

    with capture_logs() as logs:
        record = await world.pipeline().run(job_id, world.rule)

    assert record.state is JobState.FAILED
    assert record.error is not None and "crashed the daemon" in record.error
    assert world.engine.calls == []  # not tried again
    (failed,) = [entry for entry in logs if entry["event"] == "job.failed"]
    assert "nemowatch process" in failed["hint"]
    assert world.ledger.count_crash() == []


async def test_a_job_in_company_at_every_crash_must_run_alone_before_it_is_blamed(
    world: World,
) -> None:
    job_id, other = world.drop(), world.drop()
    for _ in range(5):
        world.ledger.update(job_id, in_flight=world.ledger.get(job_id).checkpoint)
        world.ledger.update(other, in_flight=world.ledger.get(other).checkpoint)
        world.ledger.count_crash()
    pipeline = world.pipeline()
    assert pipeline.must_run_alone(job_id)

    record = await pipeline.run(job_id, world.rule)  # alone, it does not crash

    assert record.state is JobState.DONE


async def test_what_the_draft_falls_short_of_joins_the_jobs_warnings_and_its_done_line(
    world: World,
) -> None:
    short = "the reel lasts 42.0 s: 42.0 s of speech left after cutting silences; asked 60 s"
    world.engine.draft_warnings = [short]

    with capture_logs() as logs:
        record = await world.pipeline().run(world.drop(), world.rule)

    assert record.state is JobState.DONE
    assert record.warnings == [short]
    (done,) = [entry for entry in logs if entry["event"] == "job.done"]
    assert done["warnings"] == [short]
    assert {"event": "edit.warning", "text": short, "log_level": "warning"} in logs
