"""Jobs with sidecars through the pipeline, with the real local engine, a real ledger and
real folders: the sidecar's instructions are in the plan and the output; an invalid
sidecar fails the job before any render, with its file and line, and goes to failed/
beside its video; the sidecar is archived with its video."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nemowatch.config import Config, Rule
from nemowatch.engines.base import Draft
from nemowatch.engines.local import LocalEngine
from nemowatch.engines.local.timeline import texts_of
from nemowatch.explain import plan_for
from nemowatch.files import claim, claim_path
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.operator import retry_job
from nemowatch.pipeline import Pipeline
from nemowatch.probe import probe
from nemowatch.rules import ExportSpec


@dataclass
class World:
    ledger: Ledger
    pipeline: Pipeline
    rule: Rule

    def drop(self, clip: Path, sidecar: str, text: str, name: str = "clip.mp4") -> str:
        """`clip` and its sidecar dropped and claimed together, as the daemon's intake does."""
        inbox = self.rule.inbox
        source, note = inbox / name, inbox / sidecar
        shutil.copy(clip, source)
        note.write_text(text, encoding="utf-8")
        job_id = new_job_id()
        claimed = claim(source, inbox, job_id)
        claimed_note = claim(note, inbox, job_id)
        assert claimed is not None and claimed_note == claim_path(inbox, job_id, sidecar)
        self.ledger.create(
            job_id=job_id,
            rule=self.rule.name,
            engine="local",
            source=source,
            claimed=claimed,
            sidecars=[{"source": str(note), "claimed": str(claimed_note)}],
        )
        return job_id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    rule = Rule(
        name="clips",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=["make it square"],
        export=ExportSpec(quality="low"),
        report=True,
    )
    rule.inbox.mkdir()
    ledger = Ledger.in_state_dir(tmp_path / "state")
    yield World(ledger, Pipeline(LocalEngine(), ledger, state_dir=tmp_path / "state"), rule)
    ledger.close()


async def test_a_title_asked_for_in_a_sidecar_is_planned_and_rendered(world, clips) -> None:
    job_id = world.drop(clips.basic, "clip.txt", "add the title 'Hello'\n")
    record = await world.pipeline.run(job_id, world.rule)
    assert record.state is JobState.DONE, record.error
    assert record.draft is not None
    draft = Draft.from_json(record.draft)
    assert [text.text for text in texts_of(draft)] == ["Hello"]
    # the rule's own instruction still applies
    assert record.output is not None
    video = probe(record.output).video
    assert video is not None and video.width == video.height
    report = json.loads(record.output.with_name(record.output.name + ".json").read_text())
    assert report["sidecars"] == [str(world.rule.inbox / "clip.txt")]
    archived = record.disposed
    assert archived is not None
    assert (Path(archived).parent / "clip.txt").read_text() == "add the title 'Hello'\n"
    assert not list((world.rule.inbox / "processing").iterdir())


async def test_the_same_video_with_another_sidecar_is_not_a_duplicate(world, clips) -> None:
    first = await world.pipeline.run(
        world.drop(clips.basic, "clip.txt", "add the title 'One'\n"), world.rule
    )
    second = await world.pipeline.run(
        world.drop(clips.basic, "clip.txt", "add the title 'Two'\n"), world.rule
    )
    assert (first.state, second.state) == (JobState.DONE, JobState.DONE)
    assert second.draft is not None
    assert [text.text for text in texts_of(Draft.from_json(second.draft))] == ["Two"]


async def test_an_invalid_sidecar_fails_the_job_before_any_render(world, clips) -> None:
    job_id = world.drop(clips.basic, "clip.txt", "add the title 'Hello'\nmake it verticle\n")
    record = await world.pipeline.run(job_id, world.rule)
    assert record.state is JobState.FAILED and record.retryable is False
    dropped = world.rule.inbox / "clip.txt"
    assert record.error is not None and f"{dropped}:2: " in record.error
    assert 'did you mean "make it vertical"' in record.error
    states = [to for (_, to, _, _) in world.ledger.history(job_id)]
    assert "exporting" not in states and record.render is None
    failed = world.rule.inbox / "failed"
    assert (failed / "clip.mp4").is_file()
    assert (failed / "clip.txt").read_text() == "add the title 'Hello'\nmake it verticle\n"
    report = json.loads((failed / "clip.mp4.error.json").read_text())
    assert f"{dropped}:2: " in report["error"]
    assert report["sidecars"] == [str(dropped)]
    assert "clip.txt" in report["hint"]
    assert not (world.rule.outbox).exists() or not list(world.rule.outbox.iterdir())


async def test_an_invalid_yaml_sidecar_names_its_key_and_line(world, clips) -> None:
    job_id = world.drop(clips.basic, "clip.yaml", "edit:\n  aspect: '3:2'\n")
    record = await world.pipeline.run(job_id, world.rule)
    assert record.state is JobState.FAILED
    assert f"{world.rule.inbox / 'clip.yaml'}:2: edit.aspect: " in (record.error or "")


async def test_retrying_a_failed_job_sends_its_sidecar_back_with_it(world, clips) -> None:
    job_id = world.drop(clips.basic, "clip.txt", "make it verticle\n")
    record = await world.pipeline.run(job_id, world.rule)
    failed = world.rule.inbox / "failed"
    assert record.state is JobState.FAILED and (failed / "clip.txt").is_file()
    (failed / "clip.txt").write_text("make it vertical\n")  # fixed where it failed
    config = Config(rules=(world.rule,), state_dir=world.ledger.path.parent)
    result = retry_job(world.ledger, config, world.ledger.get(job_id))
    assert result.source == world.rule.inbox / "clip.mp4" and result.source.is_file()
    assert (world.rule.inbox / "clip.txt").read_text() == "make it vertical\n"
    assert not (failed / "clip.txt").exists()


async def test_explain_plans_with_the_sidecar_beside_the_file(world, clips, tmp_path) -> None:
    source = tmp_path / "clip.mp4"
    shutil.copy(clips.basic, source)
    (tmp_path / "clip.txt").write_text("add the title 'Hello'\n")
    config = Config(rules=(world.rule,), state_dir=world.ledger.path.parent)
    plan = await plan_for(config, source, world.rule)
    assert [text.text for text in texts_of(plan.draft)] == ["Hello"]
    assert plan.edit.aspect == "1:1"  # and the rule's "make it square"
