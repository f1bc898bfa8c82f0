"""The daemon with `engine: nemo`, as a subprocess, against the fake NemoVideo server."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nemowatch.probe import probe
from tests.e2e.harness import (
    Daemon,
    drop,
    drop_at_once,
    files,
    ledger_states,
    rule,
    wait_for,
    write_config,
)
from tests.fakes.nemo_server import Endpoint, FakeNemo, Fault, Variants

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INSTRUCTIONS = ["cut out silences", "add background music"]


@pytest.fixture
def fake(clips, tmp_path: Path) -> Iterator[FakeNemo]:
    video = tmp_path / "rendered.mp4"
    shutil.copy(clips.basic, video)
    with FakeNemo(video=video) as server:
        yield server
    assert not server.books.server_errors


def nemo_config(tmp_path: Path, fake: FakeNemo, **rule_fields: Any) -> Path:
    fields = {"instructions": INSTRUCTIONS, **rule_fields}
    return write_config(
        tmp_path,
        [rule(tmp_path, **fields)],
        engine="nemo",
        nemo={"base_url": fake.base_url, "credits_check_interval": 0.5},
    )


def every_token(fake: FakeNemo) -> list[str]:
    return (
        [issued.token for issued in fake.books.tokens_flat()]
        if hasattr(fake.books, "tokens_flat")
        else [issued.token for tokens in fake.books.tokens.values() for issued in tokens]
    )


def assert_once_each(fake: FakeNemo) -> None:
    """No instruction applied twice in a session, no second render for a session."""
    for session, records in fake.books.instructions.items():
        applied = [record.text for record in records if record.applied]
        assert len(applied) == len(set(applied)), (session, applied)
    for session, records in fake.books.renders.items():
        accepted = [record.render_id for record in records if record.accepted]
        assert len(accepted) <= 1, (session, accepted)


def test_a_dropped_file_comes_back_from_the_cloud_as_a_verified_mp4(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    config = nemo_config(tmp_path, fake, report=True)
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        drop(inbox / "talk.mp4", clips.silences)
        output = wait_for(lambda: files(outbox, "*.mp4"), what="output")[0]
        wait_for(lambda: files(inbox / "done", "talk.mp4"), what="archived")
        assert output.name == "talk.mp4"
        facts = probe(output)
        assert facts.video is not None
        books = fake.books
        assert len(books.sessions) == 1
        (session,) = books.uploads
        assert len(books.uploads[session]) == 1
        assert books.applied_instructions(session) == INSTRUCTIONS
        assert len(books.accepted_renders(session)) == 1
        for request in books.requests:
            if request.has_token:
                source, version, platform = request.attribution()
                assert source == "nemowatch" and version and platform
        # the same daemon fails a second file the cloud refuses, with an error report
        fake.faults.next(Fault.UNSUPPORTED_MEDIA, Endpoint.UPLOAD)
        drop(inbox / "odd.mp4", clips.basic)
        report = wait_for(
            lambda: files(inbox / "failed", "*.error.json"), what="the refused file's report"
        )[0]
        assert json.loads(report.read_text())["retryable"] is False
        assert daemon.running
    finally:
        assert daemon.stop() == 0
    # the token appears in no log line, report, error file or ledger-reported error
    tokens = every_token(fake)
    assert tokens
    texts = [daemon.output(), report.read_text(), (outbox / "talk.mp4.json").read_text()]
    texts += [path.read_text() for path in files(inbox / "failed", "*.json")]
    for token in tokens:
        for text in texts:
            assert token not in text
    auth = tmp_path / "state" / "nemo-auth.json"
    assert auth.stat().st_mode & 0o777 == 0o600


def test_twenty_files_finish_once_each_while_a_fifth_of_requests_fail(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    # renders finish at their first poll: the time goes to the faults, not to waiting
    fake.variants = replace(fake.variants, render_polls=1)
    fake.faults.reseed(7)
    fake.faults.sometimes(Fault.SERVER_ERROR, probability=0.1)
    # no random 429s: the service's rule is one retry, so two in a row fail a job by design
    # (tests/integration/test_pipeline_steps.py and test_nemo_engine.py show it)
    fake.faults.sometimes(Fault.RESET, Endpoint.UPLOAD, probability=0.2, after_bytes=4096)
    config = write_config(
        tmp_path,
        [rule(tmp_path, instructions=INSTRUCTIONS)],
        engine="nemo",
        concurrency=4,
        nemo={"base_url": fake.base_url},
    )
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        drop_at_once(
            {
                inbox / f"clip{index:02d}.mp4": source
                for index, source in enumerate(clips.distinct(20))
            }
        )
        wait_for(
            lambda: (
                len(files(inbox / "done", "*.mp4")) + len(files(inbox / "failed", "*.mp4")) == 20
            ),
            timeout=240,
            what="20 files finished",
        )
        assert not files(inbox / "failed"), daemon.output()[-3000:]
        assert sorted(path.name for path in files(outbox, "*.mp4")) == [
            f"clip{index:02d}.mp4" for index in range(20)
        ]
        assert set(ledger_states(tmp_path / "state").values()) == {"done"}
        assert fake.faults.fired  # the faults really happened
        assert_once_each(fake)
        assert len(fake.books.accepted_renders()) == 20
    finally:
        assert daemon.stop() == 0


def test_a_daemon_killed_mid_render_polls_the_same_render_after_restart(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    fake.variants = Variants(render_polls=4)
    config = nemo_config(tmp_path, fake)
    log = tmp_path / "daemon.log"
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, log).start()
    drop(inbox / "clip.mp4", clips.basic)
    wait_for(lambda: fake.books.polls, interval=0.02, what="a render poll")
    daemon.kill()
    (render_id,) = fake.books.accepted_renders()
    polls_before = fake.books.polls[render_id]
    restarted = Daemon(config, log).start()
    try:
        wait_for(lambda: files(outbox, "clip.mp4"), what="output after restart")
        assert fake.books.polls[render_id] > polls_before  # the same render, polled again
        assert fake.books.accepted_renders() == [render_id]
        assert len(fake.books.sessions) == 1
        (session,) = fake.books.uploads
        assert len(fake.books.uploads[session]) == 1
        assert fake.books.applied_instructions(session) == INSTRUCTIONS
        # the output gets its name (and is synced) a moment before the ledger says done
        wait_for(lambda: list(ledger_states(tmp_path / "state").values()) == ["done"], what="done")
    finally:
        assert restarted.stop() == 0


def test_without_credits_files_wait_and_finish_once_credits_return(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    fake.set_credits(None, 0)
    config = nemo_config(tmp_path, fake)
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        wait_for(lambda: daemon.saw("credits.exhausted"), what="credits.exhausted")
        drop(inbox / "clip.mp4", clips.basic)
        wait_for(lambda: len(daemon.saw("credits.exhausted")) >= 1, what="paused")
        time.sleep(2.0)  # several settle windows and credit checks
        assert (inbox / "clip.mp4").exists()  # not taken while paused
        assert not daemon.saw("job.claimed")
        assert daemon.running
        hint = daemon.saw("credits.exhausted")[0]["hint"]
        assert "register" in hint and "bind=" in hint  # an anonymous user: how to register
        fake.set_credits(None, 100)
        wait_for(lambda: files(outbox, "clip.mp4"), what="output once credits return")
        assert daemon.saw("credits.available")
        assert len(daemon.saw("credits.exhausted")) == 1  # said once, not every check
    finally:
        assert daemon.stop() == 0


def test_credits_running_out_mid_job_pause_it_at_its_checkpoint(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    fake.faults.next(Fault.NO_CREDITS, Endpoint.RUN_SSE)
    config = nemo_config(tmp_path, fake)
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        drop(inbox / "clip.mp4", clips.basic)
        wait_for(lambda: daemon.saw("job.waiting_for_credits"), what="the job waits")
        assert not files(inbox / "failed")
        fake.set_credits(None, 100)
        wait_for(lambda: files(outbox, "clip.mp4"), what="output once credits return")
        assert_once_each(fake)
    finally:
        assert daemon.stop() == 0


def write_300_mb(path: Path) -> None:
    with path.open("wb") as handle:  # 300 MB of varied bytes, written in pieces
        block = bytes(range(256)) * 4096
        for _ in range(300):
            handle.write(block)


def test_uploading_300_mb_keeps_the_daemon_small(tmp_path: Path, fake: FakeNemo) -> None:
    config = nemo_config(tmp_path, fake, instructions=["add background music"])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        wait_for(lambda: fake.books.tokens, what="the daemon's token")  # start-up work done
        baseline = daemon.peak_memory()
        drop(inbox / "big.mp4", write_300_mb)
        wait_for(lambda: files(outbox, "big.mp4"), timeout=120, what="the big file's output")
        (session,) = fake.books.uploads
        assert fake.books.upload_bytes(session) >= 300 * 1024 * 1024
        grown = daemon.peak_memory() - baseline
        assert grown < 50 * 1024 * 1024, f"peak memory grew {grown / 1e6:.1f} MB"
    finally:
        assert daemon.stop() == 0


def test_the_credits_command_prints_the_balance_and_how_to_register(
    tmp_path: Path, fake: FakeNemo
) -> None:
    import subprocess
    import sys

    fake.set_credits(None, 42)
    config = nemo_config(tmp_path, fake)
    environment = {key: value for key, value in os.environ.items() if key != "NEMO_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "credits", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert "available 42 credits" in result.stdout
    assert "https://nemovideo.com/register?bind=anon_" in result.stdout
    for token in every_token(fake):
        assert token not in result.stdout + result.stderr
