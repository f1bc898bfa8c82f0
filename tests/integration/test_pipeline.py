"""The pipeline with the real local engine, a real ledger and real folders."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nemowatch.config import After, AfterSuccess, OnConflict, Rule
from nemowatch.engines.local import LocalEngine
from nemowatch.files import claim
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.rules import ExportSpec
from nemowatch.steps import WaitForJob, fingerprint


@dataclass
class World:
    tmp: Path
    ledger: Ledger
    pipeline: Pipeline
    rule: Rule

    def drop(self, clip: Path, name: str = "clip.mp4", rule: Rule | None = None) -> str:
        rule = rule or self.rule
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
    rule = Rule(
        name="clips",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        export=ExportSpec(quality="low"),
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir()
    ledger = Ledger.in_state_dir(tmp_path / "state")
    pipeline = Pipeline(LocalEngine(), ledger, state_dir=tmp_path / "state")
    yield World(tmp_path, ledger, pipeline, rule)
    ledger.close()


async def test_a_job_goes_from_claimed_to_done_with_every_step_recorded(world, clips) -> None:
    job_id = world.drop(clips.basic)
    record = await world.pipeline.run(job_id, world.rule)
    assert record.state is JobState.DONE
    assert record.output == world.rule.outbox / "clip.mp4"
    assert [to for (_, to, _, _) in world.ledger.history(job_id)] == [
        "claimed",
        "uploading",
        "editing",
        "exporting",
        "downloading",
        "verifying",
        "done",
    ]
    assert record.disposed is not None and "done" in record.disposed
    assert not (world.tmp / "state" / "work" / job_id).exists()  # scratch space removed


async def test_a_byte_identical_file_is_skipped_as_a_duplicate(world, clips) -> None:
    first = await world.pipeline.run(world.drop(clips.basic), world.rule)
    second = await world.pipeline.run(world.drop(clips.basic, "again.mp4"), world.rule)
    assert first.state is JobState.DONE
    assert second.state is JobState.SKIPPED
    assert first.id in (second.error or "")
    assert second.disposed and Path(second.disposed).exists()  # archived, never deleted
    assert sorted(path.name for path in world.rule.outbox.iterdir()) == ["clip.mp4"]


async def test_a_copy_of_a_file_in_progress_waits_then_is_skipped_when_it_is_done(
    world, clips
) -> None:
    first = world.drop(clips.basic)
    second = world.drop(clips.basic, "again.mp4")
    digest, size = fingerprint(world.ledger.get(first).claimed)
    world.ledger.update(first, fingerprint=digest, size=size)  # as if at its claim now
    with pytest.raises(WaitForJob) as waiting:
        await world.pipeline.run(second, world.rule)
    assert waiting.value.job_id == first
    record = world.ledger.get(second)
    assert record.state is JobState.CLAIMED and record.attempts == 0  # waiting is no attempt
    assert not (world.tmp / "state" / "work" / second).exists()
    done = await world.pipeline.run(first, world.rule)  # the older one goes first
    assert done.state is JobState.DONE
    skipped = await world.pipeline.run(second, world.rule)
    assert skipped.state is JobState.SKIPPED
    assert skipped.error == f"duplicate of job {first} (output {done.output})"
    assert [path.name for path in world.rule.outbox.iterdir()] == ["clip.mp4"]


async def test_a_copy_of_a_file_whose_job_failed_meanwhile_is_made(world, clips) -> None:
    first = world.drop(clips.basic)
    second = world.drop(clips.basic, "again.mp4")
    digest, size = fingerprint(world.ledger.get(first).claimed)
    world.ledger.update(first, fingerprint=digest, size=size)
    with pytest.raises(WaitForJob):  # the older one, at its claim too, goes first
        await world.pipeline.run(second, world.rule)
    world.ledger.transition(first, JobState.FAILED, error="claim: something went wrong")
    record = await world.pipeline.run(second, world.rule)
    assert record.state is JobState.DONE
    assert [path.name for path in world.rule.outbox.iterdir()] == ["again.mp4"]


async def test_reprocess_duplicates_makes_a_copy_of_a_file_in_progress(world, clips) -> None:
    rule = world.rule.model_copy(update={"reprocess_duplicates": True})
    first = world.drop(clips.basic)
    second = world.drop(clips.basic, "again.mp4")
    digest, size = fingerprint(world.ledger.get(first).claimed)
    world.ledger.update(first, fingerprint=digest, size=size)
    record = await world.pipeline.run(second, rule)
    assert record.state is JobState.DONE


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (OnConflict.RENAME, ["clip (2).mp4", "clip.mp4"]),
        (OnConflict.SKIP, ["clip.mp4"]),
        (OnConflict.OVERWRITE, ["clip.mp4"]),
    ],
)
async def test_name_collisions_follow_on_conflict(world, clips, policy, expected) -> None:
    rule = world.rule.model_copy(update={"on_conflict": policy})
    (rule.outbox / "clip.mp4").write_bytes(b"an older result")
    record = await world.pipeline.run(world.drop(clips.basic, rule=rule), rule)
    assert record.state is JobState.DONE
    assert sorted(path.name for path in rule.outbox.iterdir()) == expected
    existing = (rule.outbox / "clip.mp4").read_bytes()
    if policy is OnConflict.OVERWRITE:
        assert existing != b"an older result"
    else:
        assert existing == b"an older result"


async def test_a_render_lost_in_a_crash_is_rendered_again_once(world, clips) -> None:
    job_id = world.drop(clips.basic)
    # a previous run submitted the render and died: the ledger says exporting
    session = await world.pipeline.engine.open_session(
        world.pipeline.job_for(world.ledger.get(job_id), world.rule)
    )
    media = await world.pipeline.engine.upload(session, world.ledger.get(job_id).claimed)
    draft = await world.pipeline.engine.draft(session)
    from dataclasses import asdict

    world.ledger.transition(job_id, JobState.UPLOADING, session=asdict(session))
    world.ledger.transition(job_id, JobState.EDITING, media=asdict(media))
    world.ledger.transition(
        job_id,
        JobState.EXPORTING,
        draft=draft.to_json(),
        render={"id": f"local-{job_id}", "data": {"path": str(world.tmp / "gone.mp4")}},
    )
    record = await world.pipeline.run(job_id, world.rule)
    assert record.state is JobState.DONE
    assert (world.rule.outbox / "clip.mp4").exists()


async def test_keep_puts_the_source_back_and_it_is_not_taken_again(world, clips) -> None:
    rule = world.rule.model_copy(update={"after": After(success=AfterSuccess.KEEP)})
    job_id = world.drop(clips.basic, rule=rule)
    record = await world.pipeline.run(job_id, rule)
    assert record.disposed == str(rule.inbox / "clip.mp4")
    assert (rule.inbox / "clip.mp4").exists()


async def test_a_corrupt_file_fails_with_a_report_beside_it(world) -> None:
    bad = world.tmp / "bad.mp4"
    bad.write_bytes(b"\x00\x01 definitely not a video" * 100)
    job_id = world.drop(bad, "bad.mp4")
    record = await world.pipeline.run(job_id, world.rule)
    assert record.state is JobState.FAILED
    assert record.retryable is False
    failed = world.rule.inbox / "failed"
    report = json.loads((failed / "bad.mp4.error.json").read_text())
    assert (failed / "bad.mp4").exists()
    assert report["job_id"] == job_id and report["step"] == "uploading"
    assert "bad.mp4" in report["error"]
    assert "mv " in report["how_to_retry"]
    assert report["retry_with"].startswith("nemowatch retry ")
    assert not list(world.rule.outbox.iterdir())


async def test_a_report_beside_the_output_holds_spec_plan_warnings_and_timings(
    world, clips
) -> None:
    rule = world.rule.model_copy(
        update={"report": True, "instructions": ("cut out silences, and make it sparkle",)}
    )
    record = await world.pipeline.run(world.drop(clips.silences, "talk.mp4", rule=rule), rule)
    assert record.state is JobState.DONE
    report = json.loads((rule.outbox / "talk.mp4.json").read_text())
    assert report["output"] == str(rule.outbox / "talk.mp4")
    assert report["plan"]["d"] == record.draft["d"]
    assert any("make it sparkle" in warning for warning in report["warnings"])
    assert set(report["timings"]) >= {"upload", "edit", "export", "verify"}
    assert report["instructions"] == ["cut out silences, and make it sparkle"]
    # whether the picture was smart-rendered, and why not (this rule asks for low quality)
    assert report["smart"]["used"] is False
    assert "quality is low" in report["smart"]["reason"]


async def test_a_format_chosen_in_the_text_gives_the_output_its_extension(world, clips) -> None:
    rule = world.rule.model_copy(update={"instructions": ("export as webm",)})
    record = await world.pipeline.run(world.drop(clips.basic, rule=rule), rule)
    assert record.state is JobState.DONE
    assert record.output == rule.outbox / "clip.webm"
