"""A copy that paused is given back to its inbox, not failed: the pipeline with the real
local engine, a real ledger and real files, a writer that resumes while the file is watched."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nemowatch import stalled
from nemowatch.config import Rule
from nemowatch.engines.local import LocalEngine
from nemowatch.files import claim, snapshot
from nemowatch.ledger import JobRecord, JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.rules import ExportSpec

SETTLE = 2.0


@dataclass
class Copy:
    """A copy into the inbox, claimed after its first half: `resume()` writes the rest."""

    source: Path
    claimed: Path
    rest: bytes
    job_id: str

    def resume(self) -> None:
        with self.claimed.open("ab") as handle:  # the writer's file, wherever it now is
            handle.write(self.rest)


@dataclass
class World:
    ledger: Ledger
    rule: Rule
    sleeps: list[float]

    def claimed_half(self, clip: Path, *, written_at: float | None = None) -> Copy:
        data = clip.read_bytes()
        source = self.rule.inbox / "clip.mp4"
        source.write_bytes(data[: len(data) // 2])
        if written_at is not None:
            os.utime(source, (written_at, written_at))
        settled = snapshot(source)
        assert settled is not None
        job_id = new_job_id()
        claimed = claim(source, self.rule.inbox, job_id, expected=settled)
        assert claimed is not None
        self.ledger.create(
            job_id=job_id,
            rule=self.rule.name,
            engine="local",
            source=source,
            claimed=claimed,
            source_size=settled.size,
            source_mtime_ns=settled.mtime_ns,
            source_inode=settled.inode,
        )
        return Copy(source, claimed, data[len(data) // 2 :], job_id)

    def pipeline(self, on_sleep: Copy | None = None) -> Pipeline:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            if on_sleep is not None and len(self.sleeps) == 2:
                on_sleep.resume()  # the copy goes on, a moment into the watch

        return Pipeline(LocalEngine(), self.ledger, state_dir=self.ledger.path.parent, sleep=sleep)

    def record(self, job_id: str) -> JobRecord:
        return self.ledger.get(job_id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    rule = Rule(
        name="clips",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        settle_seconds=SETTLE,
        export=ExportSpec(quality="low"),
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir()
    ledger = Ledger.in_state_dir(tmp_path / "state")
    yield World(ledger, rule, [])
    ledger.close()


async def test_a_half_copied_file_whose_copy_resumes_goes_back_to_the_inbox(world, clips) -> None:
    copy = world.claimed_half(clips.basic)
    record = await world.pipeline(on_sleep=copy).run(copy.job_id, world.rule)

    assert record.state is JobState.RETURNED
    assert record.error is not None and "still being written" in record.error
    assert record.disposed == str(copy.source)
    assert copy.source.read_bytes() == clips.basic.read_bytes()  # back whole, same name
    assert os.listdir(world.rule.inbox / "processing") == []
    assert not (world.rule.inbox / "failed").exists()
    assert list(world.rule.outbox.iterdir()) == []
    assert [to for _, to, _, _ in world.ledger.history(copy.job_id)][-1] == "returned"


async def test_a_file_changed_since_its_claim_goes_back_without_waiting(world, clips) -> None:
    copy = world.claimed_half(clips.basic)
    copy.resume()  # written to after it was claimed, before the job looked at it
    with copy.claimed.open("ab") as handle:
        handle.write(b"\0" * 1000)  # and still not a readable video
    record = await world.pipeline().run(copy.job_id, world.rule)

    assert record.state is JobState.RETURNED
    assert world.sleeps == []
    assert copy.source.is_file()


async def test_a_truncated_file_that_stays_still_fails_after_the_watch(world, clips) -> None:
    copy = world.claimed_half(clips.basic)
    record = await world.pipeline().run(copy.job_id, world.rule)

    assert record.state is JobState.FAILED
    assert "not a readable video" in (record.error or "")
    watched = sum(world.sleeps)
    assert stalled.STALL_FACTOR * SETTLE - 1 <= watched <= stalled.STALL_FACTOR * SETTLE
    assert (world.rule.inbox / "failed" / "clip.mp4").is_file()


async def test_a_truncated_file_still_for_long_enough_fails_without_a_wait(world, clips) -> None:
    long_ago = time.time() - stalled.STALL_FACTOR * SETTLE - 60
    copy = world.claimed_half(clips.basic, written_at=long_ago)
    record = await world.pipeline().run(copy.job_id, world.rule)

    assert record.state is JobState.FAILED
    assert world.sleeps == []


async def test_a_stall_is_not_looked_for_in_a_job_not_claimed_after_settling(
    world, clips, tmp_path
) -> None:
    source = tmp_path / "in-place.mp4"
    source.write_bytes(clips.basic.read_bytes()[:1000])
    record = world.ledger.create(
        job_id=new_job_id(), rule="clips", engine="local", source=source, claimed=source
    )
    done = await world.pipeline().run(record.id, world.rule)
    assert done.state is JobState.FAILED
    assert world.sleeps == []


def test_a_return_cut_off_by_a_kill_is_finished_at_the_next_start(world, clips) -> None:
    copy = world.claimed_half(clips.basic)
    # killed after the ledger heard of the return, before the file was moved back
    world.ledger.transition(copy.job_id, JobState.RETURNED, error="uploading: still written")
    assert [record.id for record in world.ledger.undisposed()] == [copy.job_id]

    record = world.pipeline().dispose(world.ledger.get(copy.job_id), world.rule)  # recovery's

    assert record.disposed == str(copy.source)
    assert copy.source.is_file() and not copy.claimed.exists()
