"""Two daemons on the same inboxes and outboxes (each with its own state directory), and
twenty files dropped at once: the claim by atomic rename gives each file to exactly one of
them, so each is processed exactly once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

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
from tests.fakes.nemo_server import FakeNemo
from tests.media import Clips

pytestmark = pytest.mark.e2e

FILES = 20


@pytest.mark.parametrize("engine", ["local", "nemo"])
def test_two_daemons_on_the_same_folders_process_each_file_exactly_once(
    tmp_path: Path, clips: Clips, fake: FakeNemo, engine: str
) -> None:
    rules = [rule(tmp_path, instructions=["cut out silences"])]
    settings: dict[str, Any] = {"concurrency": 2}
    if engine == "nemo":
        # waiting on the cloud, not on this machine: more jobs at once
        settings |= {"engine": "nemo", "concurrency": 4, "nemo": {"base_url": fake.base_url}}
    daemons = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        config = write_config(folder, rules, state_dir=str(folder / "state"), **settings)
        daemons.append(Daemon(config, folder / "daemon.log"))
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        for daemon in daemons:
            daemon.start()
        names = [f"clip{index:02d}.mp4" for index in range(FILES)]
        drop_at_once(
            {
                inbox / name: source
                for name, source in zip(names, clips.distinct(FILES), strict=True)
            }
        )
        wait_for(
            lambda: (
                len(files(inbox / "done", "*.mp4")) + len(files(inbox / "failed")) >= FILES
                and not files(inbox / "processing")
            ),
            timeout=120,
            what="every file finished",
        )
    finally:
        statuses = [daemon.stop() for daemon in daemons if daemon.process is not None]
    assert statuses == [0, 0]
    jobs = {name: ledger_jobs(tmp_path / name / "state") for name in ("first", "second")}
    split = {
        name: sorted(Path(job["source"]).name for job in found) for name, found in jobs.items()
    }
    # each file claimed by one daemon only, and done once
    claims = Counter(name for found in split.values() for name in found)
    assert sorted(claims) == names, split
    assert set(claims.values()) == {1}, split
    states = [job["state"] for found in jobs.values() for job in found]
    assert states == ["done"] * FILES, split
    # one output each, no "name (2).mp4"; each source archived once
    assert sorted(path.name for path in files(outbox, "*.mp4")) == names
    assert sorted(path.name for path in files(inbox / "done")) == names
    assert not files(inbox / "failed")
    assert not [path for path in outbox.rglob(".*")]  # nothing half-written left
    outputs = sorted(job["output"] for found in jobs.values() for job in found)
    assert outputs == sorted(str(outbox / name) for name in names)
    if engine == "nemo":
        # one session, one upload and one render per file, across both daemons
        assert len(fake.books.sessions) == FILES
        assert len(fake.books.accepted_renders()) == FILES


def test_a_daemon_started_while_another_works_leaves_the_others_claims_alone(
    tmp_path: Path, clips: Clips
) -> None:
    """The second daemon finds the first one's files in processing/ at its start: they are
    not in its ledger, so they are not its own orphans to adopt."""
    rules = [rule(tmp_path, instructions=["cut out silences"])]
    count = 6
    first_folder, second_folder = tmp_path / "first", tmp_path / "second"
    daemons = []
    for folder, concurrency, prefetch in ((first_folder, 1, 4), (second_folder, 2, 1)):
        folder.mkdir()
        config = write_config(
            folder,
            rules,
            state_dir=str(folder / "state"),
            concurrency=concurrency,
            prefetch=prefetch,
        )
        daemons.append(Daemon(config, folder / "daemon.log"))
    first, second = daemons
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    names = [f"clip{index:02d}.mp4" for index in range(count)]
    try:
        first.start()
        drop_at_once(
            {
                inbox / name: source
                for name, source in zip(names, clips.distinct(count), strict=True)
            }
        )
        # one worker and a prefetch of 4: the first daemon has claimed files it has not
        # started on yet
        wait_for(lambda: len(files(inbox / "processing")) >= 3, what="claims waiting")
        second.start()
        wait_for(
            lambda: (
                len(files(inbox / "done", "*.mp4")) == count and not files(inbox / "processing")
            ),
            timeout=120,
            what="every file finished",
        )
        assert second.saw("processing.not_ours")
    finally:
        statuses = [daemon.stop() for daemon in daemons if daemon.process is not None]
    assert statuses == [0, 0]
    assert ledger_jobs(second_folder / "state") == []
    assert [job["state"] for job in ledger_jobs(first_folder / "state")] == ["done"] * count
    assert sorted(path.name for path in files(outbox, "*.mp4")) == names
    assert sorted(path.name for path in files(inbox / "done")) == names


def test_a_daemon_killed_after_its_first_claim_strands_no_more_than_it_could_start(
    tmp_path: Path, clips: Clips, fake: FakeNemo
) -> None:
    """Concurrency 2 and prefetch 1: each daemon holds at most three files at a time, the
    rest wait in the inbox for whichever daemon is free. So killing one right after its first
    claim strands at most three (recovered when it starts again), and the other does every
    other file. On the fake NemoVideo: quick jobs."""
    rules = [rule(tmp_path, instructions=["cut out silences"])]
    daemons = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        config = write_config(
            folder,
            rules,
            state_dir=str(folder / "state"),
            concurrency=2,
            prefetch=1,
            engine="nemo",
            nemo={"base_url": fake.base_url},
        )
        daemons.append(Daemon(config, folder / "daemon.log"))
    first, second = daemons
    inbox = tmp_path / "inbox" / "clips"
    processing, done = inbox / "processing", inbox / "done"
    names = [f"clip{index:02d}.mp4" for index in range(FILES)]
    try:
        for daemon in daemons:
            daemon.start()
        drop_at_once(
            {
                inbox / name: source
                for name, source in zip(names, clips.distinct(FILES), strict=True)
            }
        )
        wait_for(lambda: first.saw("job.claimed"), interval=0.02, what="the first claim")
        first.kill()
        first_claims = {job["claimed"] for job in ledger_jobs(tmp_path / "first" / "state")}
        # the second daemon takes every file left in the inbox, a few at a time, and only
        # the first one's claims are left in processing/
        wait_for(
            lambda: (
                not list(inbox.glob("*.mp4"))
                and {str(path) for path in files(processing)} <= first_claims
                and len(files(done, "*.mp4")) + len(files(processing)) == FILES
            ),
            timeout=120,
            what="every file not claimed by the killed daemon done",
        )
        assert 1 <= len(files(processing)) <= 3, files(processing)  # concurrency + prefetch
        # started again, the first daemon finishes what it had claimed
        first = Daemon(first.config, first.log).start()
        wait_for(
            lambda: len(files(done, "*.mp4")) == FILES and not files(processing),
            what="the stranded files recovered",
        )
    finally:
        statuses = [daemon.stop() for daemon in (first, second) if daemon.running]
    assert statuses == [0, 0]
    assert sorted(path.name for path in files(done)) == names
    states = [
        job["state"]
        for name in ("first", "second")
        for job in ledger_jobs(tmp_path / name / "state")
    ]
    assert states == ["done"] * FILES
