"""The daemon with `engine: nemo` through an unreliable cloud: about 25 % of requests fail
transiently, and once the service goes away entirely for a while (a 10-minute outage,
compressed). Every job still finishes exactly once: nothing charged twice, nothing failed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Daemon,
    drop_at_once,
    files,
    ledger_jobs,
    rule,
    wait_for,
    write_config,
)
from tests.fakes.nemo_server import Endpoint, FakeNemo, Fault, Variants
from tests.media import Clips

pytestmark = pytest.mark.e2e

INSTRUCTIONS = ["cut out silences", "add background music"]
FILES = 6
# Longer than a request's tries last without patience (1 s + 2 s), so only the patience
# with which a job's requests wait out an outage gets the jobs through: what a 10-minute
# outage is to a job, in a time a test can wait.
OUTAGE = 10.0
# Where a reset is a transient fault. On /run_sse a reset before the answer looks exactly
# like an instruction delivered and then cut off: the client rightly never re-sends it
# (it would be charged twice), so a reset there fails the edit by design, not by fault.
RESETTABLE = (
    Endpoint.SESSION,
    Endpoint.UPLOAD,
    Endpoint.STATE,
    Endpoint.CREDITS,
    Endpoint.RENDER_SUBMIT,
    Endpoint.RENDER_POLL,
    Endpoint.DOWNLOAD,
    Endpoint.FILES,
)


@pytest.fixture
def fake(clips: Clips, tmp_path: Path) -> Iterator[FakeNemo]:
    video = tmp_path / "rendered.mp4"
    shutil.copy(clips.basic, video)
    # turns that last a moment (about 1 s), so that the outage can cut one off
    with FakeNemo(video=video, variants=Variants(render_polls=3, event_gap=0.2)) as server:
        yield server
    assert not server.books.server_errors


def arm_transient_faults(fake: FakeNemo, seed: int) -> None:
    """About 25 % of requests fail: 5xx and connection resets."""
    fake.faults.reseed(seed)
    fake.faults.sometimes(Fault.SERVER_ERROR, probability=0.15)
    # no random 429s: the service's rule is one retry, so two in a row fail a job by design
    # (tests/integration/test_pipeline_steps.py and test_nemo_engine.py show it)
    for endpoint in RESETTABLE:
        fake.faults.sometimes(Fault.RESET, endpoint, probability=0.12, after_bytes=1024)


def test_every_job_finishes_once_through_transient_faults_and_an_outage(
    tmp_path: Path, fake: FakeNemo, clips: Clips
) -> None:
    arm_transient_faults(fake, seed=11)
    config = write_config(
        tmp_path,
        [rule(tmp_path, instructions=INSTRUCTIONS)],
        engine="nemo",
        concurrency=FILES,
        nemo={"base_url": fake.base_url},
    )
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        names = [f"clip{index:02d}.mp4" for index in range(FILES)]
        drop_at_once(
            {
                inbox / name: source
                for name, source in zip(names, clips.distinct(FILES), strict=True)
            }
        )
        # The service goes away while an instruction's turn is being streamed (it is
        # applied, and charged, as it arrives): the stream is cut, every request refused.
        # Refused, not cut: another job's instruction on its way at that moment is answered
        # 503, so it is sent again after the outage. Cut before an answer, it would be one
        # the daemon cannot tell from a delivered one, and rightly looks for over
        # nemo.landing_window (5 minutes) instead of sending it again.
        wait_for(lambda: applied(fake), interval=0.01, what="an instruction being applied")
        port = fake.base_url.rsplit(":", 1)[1]
        fake.stop(refuse=True)
        cut_off = applied(fake)
        in_flight = unfinished(tmp_path / "state")
        time.sleep(OUTAGE)
        assert daemon.running
        assert not files(inbox / "failed"), f"a job gave up during the outage: {reports(inbox)}"
        # it comes back healthy: each call's backoff has grown through the outage (1 s, 2 s,
        # 4 s ... up to a minute), and faults met after it would each cost another long wait
        fake.faults.clear()
        fake.start(port=int(port))
        wait_for(
            lambda: (
                len(files(inbox / "done", "*.mp4")) + len(files(inbox / "failed", "*.mp4")) == FILES
            ),
            timeout=60,
            what="every file finished",
        )
        assert not files(inbox / "failed"), reports(inbox)
        assert sorted(path.name for path in files(outbox, "*.mp4")) == names
        jobs = ledger_jobs(tmp_path / "state")
        assert [job["state"] for job in jobs] == ["done"] * FILES
        assert in_flight  # the outage came while jobs were at work
        assert fake.faults.fired  # the transient faults really happened
        assert_charged_once(fake, jobs)
        # what had been applied when the service went away (a turn cut off among them)
        # was not sent again
        for session, text in cut_off:
            assert fake.books.applied_instructions(session).count(text) == 1
    finally:
        assert daemon.stop() == 0


def applied(fake: FakeNemo) -> list[tuple[str, str]]:
    """(session, instruction) of every instruction applied so far."""
    return [
        (session, record.text)
        for session, records in fake.books.instructions.items()
        for record in records
        if record.applied
    ]


def unfinished(state_dir: Path) -> list[str]:
    return [job["id"] for job in ledger_jobs(state_dir) if job["state"] not in ("done", "failed")]


def reports(inbox: Path) -> list[str]:
    return [path.read_text() for path in files(inbox / "failed", "*.error.json")]


def assert_charged_once(fake: FakeNemo, jobs: list[dict[str, object]]) -> None:
    """Per session: each instruction applied exactly once, at most one render accepted;
    per job: its session has every instruction applied and one render accepted."""
    books = fake.books
    for session, records in books.instructions.items():
        applied = [record.text for record in records if record.applied]
        assert len(applied) == len(set(applied)), (session, applied)
    for session, records in books.renders.items():
        accepted = [record.render_id for record in records if record.accepted]
        assert len(accepted) <= 1, (session, accepted)
    for job in jobs:
        session = json.loads(str(job["session"]))["id"]
        assert books.applied_instructions(session) == INSTRUCTIONS, (job["source"], session)
        assert len(books.accepted_renders(session)) == 1, (job["source"], session)
