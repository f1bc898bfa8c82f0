"""A sidecar with the nemo engine, against the fake NemoVideo server on 127.0.0.1: its
instructions are sent as chat turns after the rule's, as written (the cloud reads any
phrase); an invalid one fails the job before anything is uploaded."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemowatch.config import NemoSettings, Rule
from nemowatch.engines.nemo import NemoEngine
from nemowatch.files import claim
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from tests.fakes.nemo_server import FakeNemo
from tests.running import no_sleep

RULE_SAYS = ("cut out the silent parts",)


@pytest.fixture(scope="module")
def video(clips: Any) -> Path:
    """clips.basic with its index first, as the fake serves it as every render's result."""
    return clips.fast_start()


@pytest.fixture
async def world(tmp_path: Path, video: Path) -> AsyncIterator[tuple[FakeNemo, Pipeline, Rule]]:
    rule = Rule(
        name="reels", inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", instructions=RULE_SAYS
    )
    rule.inbox.mkdir()
    ledger = Ledger.in_state_dir(tmp_path / "state")
    with FakeNemo(video=video) as fake:
        engine = NemoEngine(
            NemoSettings(base_url=fake.base_url),
            state_dir=tmp_path / "state",
            environ={},
            sleep=no_sleep,
            transport=httpx.AsyncHTTPTransport(),
            system="linux",
        )
        try:
            yield fake, Pipeline(engine, ledger, state_dir=tmp_path / "state", sleep=no_sleep), rule
        finally:
            await engine.close()
            ledger.close()


def drop(pipeline: Pipeline, rule: Rule, video: Path, sidecar_text: str) -> str:
    source, note = rule.inbox / "clip.mp4", rule.inbox / "clip.txt"
    shutil.copy(video, source)
    note.write_text(sidecar_text, encoding="utf-8")
    job_id = new_job_id()
    claimed, claimed_note = claim(source, rule.inbox, job_id), claim(note, rule.inbox, job_id)
    assert claimed is not None and claimed_note is not None
    pipeline.ledger.create(
        job_id=job_id,
        rule=rule.name,
        engine="nemo",
        source=source,
        claimed=claimed,
        sidecars=[{"source": str(note), "claimed": str(claimed_note)}],
    )
    return job_id


def sent(fake: FakeNemo) -> list[str]:
    return [record.text for items in fake.books.instructions.values() for record in items]


async def test_the_sidecars_instructions_are_sent_after_the_rules(world, video) -> None:
    fake, pipeline, rule = world
    job_id = drop(pipeline, rule, video, "add the title 'Hello'\nmake it pop like fireworks\n")
    record = await pipeline.run(job_id, rule)
    assert record.state is JobState.DONE, record.error
    assert sent(fake) == [*RULE_SAYS, "add the title 'Hello'", "make it pop like fireworks"]
    archived = sorted(path.name for path in (rule.inbox / "done").rglob("*") if path.is_file())
    assert archived == ["clip.mp4", "clip.txt"]


async def test_an_invalid_sidecar_fails_before_anything_is_uploaded(world, video) -> None:
    fake, pipeline, rule = world
    job_id = drop(pipeline, rule, video, "make it vertical\nmake it 16:9\n")
    record = await pipeline.run(job_id, rule)
    assert record.state is JobState.FAILED
    assert f"{rule.inbox / 'clip.txt'}:2: " in (record.error or "")
    assert not any(fake.books.uploads.values())
    assert sent(fake) == []


async def test_a_timeline_asked_for_in_a_sidecar_is_written_and_not_sent(world, video) -> None:
    import opentimelineio as otio

    fake, pipeline, rule = world
    job_id = drop(pipeline, rule, video, "add the title 'Hello'\nexport an OTIO timeline too\n")
    record = await pipeline.run(job_id, rule)
    assert record.state is JobState.DONE, record.error
    assert sent(fake) == [*RULE_SAYS, "add the title 'Hello'"]  # a setting, not a chat turn
    output, timeline_file = record.outputs
    assert timeline_file == output.with_suffix(".otio")
    # the cloud's draft keeps the whole upload: one clip of the archived source
    timeline = otio.adapters.read_from_file(str(timeline_file))
    (clip,) = timeline.video_tracks()[0].find_clips()
    assert clip.media_reference.target_url == Path(str(record.disposed)).as_uri()
    assert clip.source_range.duration.to_seconds() == 3.0
