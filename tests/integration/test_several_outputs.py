"""Several outputs per rule with the real local engine, a real ledger and real folders:
one analysis and one plan, each output rendered, verified and published, a restarted job
making only the outputs it lacks."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from nemowatch.config import Rule
from nemowatch.config.targets import OutputTarget
from nemowatch.engines.base import EDIT_FRAME, Draft, Frame, Render, Session
from nemowatch.engines.local import LocalEngine
from nemowatch.errors import EngineError
from nemowatch.files import claim
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.probe import probe
from nemowatch.rules import ExportSpec
from tests.media import Clips


@dataclass
class World:
    tmp: Path
    ledger: Ledger
    pipeline: Pipeline

    def rule(self, *outputs: OutputTarget, **fields: object) -> Rule:
        rule = Rule.model_validate(
            {
                "name": "clips",
                "inbox": self.tmp / "inbox",
                "outbox": self.tmp / "outbox",
                "export": ExportSpec(quality="low"),
                "outputs": outputs,
                **fields,
            }
        )
        rule.inbox.mkdir(exist_ok=True)
        rule.outbox.mkdir(exist_ok=True)
        return rule

    def drop(self, clip: Path, rule: Rule, name: str = "clip.mp4") -> str:
        source = rule.inbox / name
        shutil.copy(clip, source)
        job_id = new_job_id()
        claimed = claim(source, rule.inbox, job_id)
        assert claimed is not None
        self.ledger.create(
            job_id=job_id, rule=rule.name, engine="local", source=source, claimed=claimed
        )
        return job_id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ledger = Ledger.in_state_dir(tmp_path / "state")
    pipeline = Pipeline(LocalEngine(), ledger, state_dir=tmp_path / "state")
    yield World(tmp_path, ledger, pipeline)
    ledger.close()


def wide_and_tall(resolution: str) -> tuple[OutputTarget, OutputTarget]:
    return (
        OutputTarget(name="youtube", aspect="16:9", resolution=resolution),  # type: ignore[arg-type]
        OutputTarget(name="shorts", aspect="9:16", resolution=resolution),  # type: ignore[arg-type]
    )


def frame_of(path: Path) -> tuple[int | None, int | None]:
    video = probe(path).video
    assert video is not None
    return video.width, video.height


@pytest.mark.default_ffmpeg  # the feature once with the FFmpeg people have (conftest.py)
async def test_a_wide_and_a_tall_output_come_from_one_job_each_verified(
    world: World, clips: Clips
) -> None:
    rule = world.rule(*wide_and_tall("240p"))
    job_id = world.drop(clips.basic, rule)
    with structlog.testing.capture_logs() as logs:
        record = await world.pipeline.run(job_id, rule)
    assert record.state is JobState.DONE
    wide, tall = rule.outbox / "clip-youtube.mp4", rule.outbox / "clip-shorts.mp4"
    assert (frame_of(wide), frame_of(tall)) == ((426, 240), (240, 426))
    assert record.published == {"youtube": str(wide), "shorts": str(tall)}
    assert record.output == wide and record.outputs == [wide, tall]
    assert sorted(path.name for path in rule.outbox.iterdir()) == [tall.name, wide.name]
    # one analysis, one plan: the draft was made once, each output rendered once
    assert [entry["event"] for entry in logs].count("edit.done") == 1
    renders = [entry.get("output") for entry in logs if entry["event"] == "render.submitted"]
    assert renders == ["youtube", "shorts"]
    assert "done" in (record.disposed or "")  # the source goes once every output is out
    assert record.session is not None  # captions, if any, fit the narrowest of the two
    assert record.session["data"]["aspects"] == ["16:9", "9:16"]


async def test_the_issues_pair_youtube_and_shorts_at_1080p(world: World, clips: Clips) -> None:
    # the acceptance pair as written (1080p both): a 1-second clip keeps it to seconds
    rule = world.rule(*wide_and_tall("1080p"))
    record = await world.pipeline.run(world.drop(clips.portrait, rule), rule)
    assert record.state is JobState.DONE
    assert frame_of(rule.outbox / "clip-youtube.mp4") == (1920, 1080)
    assert frame_of(rule.outbox / "clip-shorts.mp4") == (1080, 1920)


async def test_each_output_may_have_its_own_format_and_file_name(
    world: World, clips: Clips
) -> None:
    rule = world.rule(
        OutputTarget(name="web", file="web/{stem}.webm", format="webm", resolution="240p"),
        OutputTarget(name="square", aspect="1:1", fit="pad", resolution="240p"),
    )
    record = await world.pipeline.run(world.drop(clips.basic, rule), rule)
    assert record.state is JobState.DONE, record.error
    web, square = rule.outbox / "web" / "clip.webm", rule.outbox / "clip-square.mp4"
    assert "webm" in probe(web).format_name and probe(web).audio is not None
    assert frame_of(web) == (320, 240)  # the source's 4:3 at 240p
    assert frame_of(square) == (240, 240)


class StopsBefore(LocalEngine):
    """The local engine, in a daemon told to stop just as the render of one output starts
    (the task is cancelled there, as a graceful stop does), or failing it (`error`)."""

    def __init__(self, output: str, error: BaseException | None = None) -> None:
        super().__init__()
        self.output = output
        self.error = error or asyncio.CancelledError()

    async def export(
        self, session: Session, draft: Draft, spec: ExportSpec, frame: Frame = EDIT_FRAME
    ) -> Render:
        if frame.output == self.output:
            raise self.error
        return await super().export(session, draft, spec, frame)


async def test_a_job_stopped_between_its_outputs_makes_only_the_missing_one(
    world: World, clips: Clips
) -> None:
    rule = world.rule(*wide_and_tall("240p"))
    job_id = world.drop(clips.basic, rule)
    stopping = Pipeline(StopsBefore("shorts"), world.ledger, state_dir=world.tmp / "state")
    with pytest.raises(asyncio.CancelledError):
        await stopping.run(job_id, rule)
    wide = rule.outbox / "clip-youtube.mp4"
    halfway = world.ledger.get(job_id)
    assert (halfway.state, halfway.published) == (JobState.EXPORTING, {"youtube": str(wide)})
    assert [path.name for path in rule.outbox.iterdir()] == [wide.name]  # no hidden file left
    first = wide.stat()
    with structlog.testing.capture_logs() as logs:
        record = await world.pipeline.run(job_id, rule)
    assert record.state is JobState.DONE
    renders = [entry.get("output") for entry in logs if entry["event"] == "render.submitted"]
    assert renders == ["shorts"]
    assert sorted(path.name for path in rule.outbox.iterdir()) == [
        "clip-shorts.mp4",
        "clip-youtube.mp4",
    ]
    assert (wide.stat().st_ino, wide.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


async def test_a_template_in_outputs_still_makes_one_output(world: World, clips: Clips) -> None:
    rule = world.rule(outputs="{stem}-edited.mp4")
    record = await world.pipeline.run(world.drop(clips.basic, rule), rule)
    assert record.state is JobState.DONE
    assert record.published == {"": str(rule.outbox / "clip-edited.mp4")}
    assert record.outputs == [rule.outbox / "clip-edited.mp4"]


async def test_a_job_whose_second_output_fails_says_which_output_was_published(
    world: World, clips: Clips
) -> None:
    rule = world.rule(*wide_and_tall("240p"))
    failing = StopsBefore("shorts", EngineError("the encoder fell over"))
    pipeline = Pipeline(failing, world.ledger, state_dir=world.tmp / "state")

    record = await pipeline.run(world.drop(clips.basic, rule), rule)

    assert record.state is JobState.FAILED
    wide = rule.outbox / "clip-youtube.mp4"
    assert [path.name for path in rule.outbox.iterdir()] == [wide.name]
    report = json.loads((rule.inbox / "failed" / "clip.mp4.error.json").read_text())
    assert "the encoder fell over" in report["error"]
    assert report["published"] == [str(wide)]


async def test_a_job_whose_rule_no_longer_names_its_missing_output_is_done_with_what_it_made(
    world: World, clips: Clips
) -> None:
    rule = world.rule(*wide_and_tall("240p"))
    job_id = world.drop(clips.basic, rule)
    stopping = Pipeline(StopsBefore("shorts"), world.ledger, state_dir=world.tmp / "state")
    with pytest.raises(asyncio.CancelledError):
        await stopping.run(job_id, rule)
    edited = world.rule(wide_and_tall("240p")[0])  # the rule file now names youtube only

    with structlog.testing.capture_logs() as logs:
        record = await world.pipeline.run(job_id, edited)

    assert record.state is JobState.DONE
    assert record.output == rule.outbox / "clip-youtube.mp4"
    assert not [entry for entry in logs if entry["event"] == "render.submitted"]
    assert [path.name for path in rule.outbox.iterdir()] == ["clip-youtube.mp4"]
