"""The daemon's own health: the watchdog ping is sent only while the watcher threads and
the job scheduler run, and an inbox that disappears pauses its rule instead of looking empty."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.config import Config, Rule
from nemowatch.daemon import Daemon
from nemowatch.daemon.pauses import Reason
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.notify import Notifier
from tests.e2e.harness import drop


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify.sock"))
    receiver.setblocking(False)
    yield receiver
    receiver.close()


def drain(receiver: socket.socket) -> list[bytes]:
    messages = []
    while True:
        try:
            messages.append(receiver.recv(4096))
        except BlockingIOError:
            return messages


def make_daemon(tmp_path: Path, *inboxes: str, scan_interval: float = 300.0) -> Daemon:
    rules = tuple(
        Rule(name=name, inbox=tmp_path / name, outbox=tmp_path / f"{name}-out", settle_seconds=0.2)
        for name in inboxes
    )
    notifier = Notifier.from_environment(
        {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"}
    )
    config = Config(state_dir=tmp_path / "state", rules=rules, scan_interval=scan_interval)
    return Daemon(config, notifier=notifier)


async def wait_until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_dead_worker_stops_the_watchdog_pings(
    tmp_path: Path, manager: socket.socket
) -> None:
    daemon = make_daemon(tmp_path, "clips")
    running = asyncio.create_task(daemon.run())
    try:
        received: list[bytes] = []

        def pings() -> int:
            received.extend(drain(manager))
            return sum(b"WATCHDOG=1" in message for message in received)

        await wait_until(lambda: pings() >= 2)
        assert daemon.healthy()
        with capture_logs() as logs:
            daemon.workers.tasks[0].cancel()  # the scheduler lost a worker
            await asyncio.sleep(0.1)
            drain(manager)
            await asyncio.sleep(0.6)  # six ping periods
            assert not any(b"WATCHDOG=1" in message for message in drain(manager))
        assert not daemon.healthy()
        assert [entry for entry in logs if entry["event"] == "daemon.unhealthy"]
    finally:
        daemon.stop()
        await running


async def test_a_vanished_inbox_pauses_its_rule_and_is_not_recreated(
    tmp_path: Path, manager: socket.socket, clips
) -> None:
    # noticed at the next reconciliation scan (or watchdog ping), and always before a claim
    daemon = make_daemon(tmp_path, "share", "local", scan_interval=1.0)
    running = asyncio.create_task(daemon.run())
    share = tmp_path / "share"
    away = tmp_path / "unmounted"
    try:
        await wait_until(lambda: daemon.watcher is not None)
        with capture_logs() as logs:
            share.rename(away)  # the share is unmounted
            await wait_until(lambda: share in daemon.pauses.missing)
            assert "1 inbox missing" in daemon.status_line()
            daemon.housekeeping.request_reload()  # a reload must not recreate it either
            await asyncio.sleep(1.5)
            assert not share.exists()
            assert daemon.healthy()  # paused, not broken: the watchdog keeps being pinged
            away.rename(share)  # mounted again, with a file waiting in it
            drop(share / "clip.mp4", clips.basic)
            await wait_until(lambda: share not in daemon.pauses.missing)
            await wait_until(lambda: len(list((tmp_path / "share-out").glob("*.mp4"))) == 1, 60)
        events = [entry["event"] for entry in logs]
        assert events.count("inbox.missing") == 1
        assert "inbox.back" in events
        assert "watching 2 inboxes" in daemon.status_line()
    finally:
        daemon.stop()
        await running


async def pause_from_outside(daemon: Daemon) -> None:
    """`nemowatch pause`, as another process does it: its own ledger connection."""
    operator = Ledger.in_state_dir(daemon.config.state_dir)
    try:
        operator.set_paused(True)
    finally:
        operator.close()


async def test_an_operator_pause_rings_the_idle_daemon_without_waiting_for_a_scan(
    tmp_path: Path, manager: socket.socket
) -> None:
    daemon = make_daemon(tmp_path, "clips", scan_interval=300.0)
    running = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: daemon.housekeeping.listening)
        await asyncio.sleep(0.3)  # past the startup scan: from here only the doorbell
        await pause_from_outside(daemon)
        await wait_until(lambda: Reason.OPERATOR in daemon.pauses.reasons)  # before the scan
    finally:
        daemon.stop()
        await running


async def test_without_a_doorbell_housekeeping_falls_back_to_polling(
    tmp_path: Path, manager: socket.socket
) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "bell").write_text("not a folder")  # the doorbell cannot be watched
    daemon = make_daemon(tmp_path, "clips", scan_interval=300.0)
    with capture_logs() as logs:
        running = asyncio.create_task(daemon.run())
        try:
            await wait_until(lambda: daemon.watcher is not None)
            await asyncio.sleep(0.3)
            assert not daemon.housekeeping.listening
            await pause_from_outside(daemon)
            await wait_until(lambda: Reason.OPERATOR in daemon.pauses.reasons)  # before the scan
        finally:
            daemon.stop()
            await running
    assert [entry for entry in logs if entry["event"] == "daemon.doorbell_unavailable"]


def test_the_status_line_counts_a_failed_job_sent_back_by_retry_once(tmp_path: Path) -> None:
    # `retry` makes a new job of a failed one: the old one is not a second failure
    daemon = make_daemon(tmp_path, "clips")
    ledger = daemon.ledger
    for name in ("a.mp4", "b.mp4"):
        record = ledger.create(
            job_id=new_job_id(), rule="clips", engine="local", source=tmp_path / name, claimed=None
        )
        ledger.transition(record.id, JobState.FAILED, error="corrupt")
    assert "0 running, 0 queued, 2 failed" in daemon.status_line()
    ledger.mark_retried(record.id)
    assert "0 running, 0 queued, 1 failed" in daemon.status_line()
    ledger.close()
