"""A node cut off from the fleet while it works (its heartbeats stopped, not the node): another
node adopts its job, and when the first one's work reaches the ledger again it stops with
`job.lease_lost` and publishes nothing; the adopter publishes the one output. Real
PostgreSQL (tests/pg.py), a scripted engine (tests/fakes/scripted_engine.py)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs

from nemowatch.config import Rule
from nemowatch.engines.base import Render
from nemowatch.errors import LeaseLost
from nemowatch.files import claim
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.ledgers.postgres import PgStore
from nemowatch.pipeline import Pipeline
from nemowatch.rules import ExportSpec
from tests.fakes.scripted_engine import ScriptedEngine
from tests.media import Clips
from tests.pg import PgServer
from tests.running import no_sleep


class GatedEngine(ScriptedEngine):
    """Its download waits until the test opens the gate (the node is busy, cut off)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def download(self, render: Render, dest: Path) -> None:
        self.waiting.set()
        await self.gate.wait()
        await super().download(render, dest)


async def test_a_node_that_lost_its_lease_mid_job_publishes_nothing_and_the_adopter_does(
    pg_server: PgServer, tmp_path: Path, clips: Clips
) -> None:
    url = pg_server.database()
    rule = Rule(
        name="clips",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=("cut out silences",),
        export=ExportSpec(quality="low"),
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir()
    a = Ledger.shared(PgStore(url), tmp_path / "a", node="a")
    b = Ledger.shared(PgStore(url), tmp_path / "b", node="b")
    for ledger in (a, b):
        ledger.register("host", 1, "test", ["scripted"], 1)
    source = rule.inbox / "clip.mp4"
    shutil.copy(clips.basic, source)
    job_id = new_job_id()
    claimed = claim(source, rule.inbox, job_id)
    a.create(job_id=job_id, rule="clips", engine="scripted", source=source, claimed=claimed)

    cut_off = GatedEngine(clips.basic, 3.0, sleep=no_sleep)
    running = asyncio.ensure_future(
        Pipeline(cut_off, a, state_dir=tmp_path / "a", sleep=no_sleep).run(job_id, rule)
    )
    await asyncio.wait_for(cut_off.waiting.wait(), 30)
    with psycopg.connect(url, autocommit=True) as connection:  # its beats stopped long ago
        connection.execute("UPDATE nodes SET heartbeat_at = heartbeat_at - 600 WHERE name = 'a'")
    (adopted,) = b.adopt(lease=60.0, limit=1, rules=["clips"])
    assert adopted.state is JobState.DOWNLOADING

    with capture_logs() as logs:
        cut_off.gate.set()  # its download ends, and it tries to go on
        with pytest.raises(LeaseLost):
            await running
    assert [entry["event"] for entry in logs if entry["event"] == "job.lease_lost"]

    def published() -> list[str]:
        return sorted(path.name for path in rule.outbox.iterdir() if not path.name.startswith("."))

    assert published() == []  # nothing published by the node that lost it
    left = [path.name for path in rule.outbox.iterdir()]
    assert left == [f".clip.mp4.{job_id}.nemowatch-part"]  # its own temp name only

    adopter = ScriptedEngine(clips.basic, 3.0, sleep=no_sleep)
    record = await Pipeline(adopter, b, state_dir=tmp_path / "b", sleep=no_sleep).run(job_id, rule)
    assert record.state is JobState.DONE and record.node == "b"
    assert published() == ["clip.mp4"]
    assert adopter.calls == ["poll", "download"]  # its render resumed by its id, not redone
    assert {path.name for path in rule.outbox.iterdir()} == {"clip.mp4", *left}  # apart
    a.close()
    b.close()
