"""The daemon's companions (web page, metrics, notifications) hear each claim, each job's
end and each pause, on the event loop; one that raises is logged and changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from nemowatch.config import Config, Rule
from nemowatch.daemon import Daemon
from nemowatch.daemon.companions import Companion, Host
from nemowatch.ledger import JobRecord, JobState, Ledger
from tests.e2e.harness import drop
from tests.fakes.scripted_engine import ScriptedEngine
from tests.media import Clips


class Recorder(Companion):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.host: Host | None = None

    async def run(self, daemon: Host) -> None:
        self.host = daemon

    def job_claimed(self, record: JobRecord) -> None:
        self.events.append(("claimed", record.state.value))

    def job_ended(self, record: JobRecord) -> None:
        self.events.append(("ended", record.state.value))

    def paused(self, reason: str, detail: str) -> None:
        self.events.append(("paused", reason))


class Broken(Companion):
    def job_claimed(self, record: JobRecord) -> None:
        raise RuntimeError("a bug in a companion")

    def job_ended(self, record: JobRecord) -> None:
        raise RuntimeError("a bug in a companion")


async def wait_until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_companions_hear_claims_ends_and_pauses_and_a_broken_one_changes_nothing(
    tmp_path: Path, clips: Clips
) -> None:
    rule = Rule(name="clips", inbox=tmp_path / "in", outbox=tmp_path / "out", settle_seconds=0.2)
    config = Config(state_dir=tmp_path / "state", rules=(rule,))

    async def no_sleep(seconds: float) -> None:
        return None

    recorder = Recorder()
    engine = ScriptedEngine(clips.basic, 3.0, sleep=no_sleep)
    daemon = Daemon(config, engine=engine, companions=[Broken(), recorder])
    running = asyncio.create_task(daemon.run())
    try:
        with capture_logs() as logs:
            await wait_until(lambda: recorder.host is daemon)
            drop(rule.inbox / "a.mp4", clips.basic)
            await wait_until(lambda: ("ended", "done") in recorder.events)
            assert recorder.events == [("claimed", "claimed"), ("ended", "done")]
            with Ledger.open_existing(config.state_dir) as ledger:
                ledger.set_paused(True)
            daemon.request_scan()  # as the web page does after a pause
            await wait_until(lambda: ("paused", "operator") in recorder.events)
        failures = [entry for entry in logs if entry["event"] == "companion.failed"]
        assert [entry["event"] for entry in failures] == ["companion.failed"] * 2
        assert {entry["companion"] for entry in failures} == {"Broken"}
        [job] = daemon.ledger.jobs(JobState.DONE)
        assert job.output is not None and job.output.is_file()
    finally:
        daemon.stop()
        await running
