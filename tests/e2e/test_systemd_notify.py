"""The daemon under a pretend systemd: this test plays the service manager's side of
sd_notify on a real datagram socket and checks what nemowatch tells it, in order."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, drop, rule, wait_for, write_config

pytestmark = pytest.mark.e2e


class ServiceManager:
    """The receiving end of $NOTIFY_SOCKET: every datagram, parsed, with when it came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._running:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            with self._lock:
                self.messages.append(fields)

    def received(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.messages)

    def first(self, key: str, after: int = 0) -> int | None:
        """Index of the first message from `after` on that carries `key`."""
        for index, message in enumerate(self.received()[after:], start=after):
            if key in message:
                return index
        return None

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self.socket.close()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServiceManager]:
    receiver = ServiceManager(tmp_path / "notify.sock")
    yield receiver
    receiver.close()


def test_the_daemon_tells_systemd_ready_status_reloading_watchdog_and_stopping(
    tmp_path: Path, clips, manager: ServiceManager
) -> None:
    config = write_config(tmp_path, [rule(tmp_path, "one"), rule(tmp_path, "two")])
    daemon = Daemon(
        config,
        tmp_path / "daemon.log",
        env={"NOTIFY_SOCKET": str(manager.path), "WATCHDOG_USEC": "1000000"},
    ).start()
    try:
        wait_for(lambda: manager.first("READY") is not None, what="READY=1")
        # The first word is READY=1, sent once the ledger, the watches and the scan are in place.
        assert manager.first("READY") == 0, manager.received()
        assert manager.received()[0]["READY"] == "1"
        assert manager.received()[0]["STATUS"] == (
            "watching 2 inboxes; 0 running, 0 queued, 0 failed"
        )

        # WATCHDOG_USEC=1 s: pinged about every half second while healthy.
        wait_for(
            lambda: sum("WATCHDOG" in message for message in manager.received()) >= 3,
            what="three watchdog pings",
        )

        # STATUS follows the work: a corrupt file ends as "1 failed".
        drop(tmp_path / "inbox" / "one" / "broken.mp4", os.urandom(4096))
        wait_for(
            lambda: any(
                message.get("STATUS", "").endswith("0 running, 0 queued, 1 failed")
                for message in manager.received()
            ),
            what="STATUS with one failed job",
        )

        # SIGHUP: RELOADING=1 with MONOTONIC_USEC in one datagram, then READY=1 again.
        before = len(manager.received())
        sent_at = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: manager.first("RELOADING", before) is not None, what="RELOADING=1")
        reloading = manager.first("RELOADING", before)
        assert reloading is not None
        message = manager.received()[reloading]
        assert message["RELOADING"] == "1"
        assert re.fullmatch(r"\d+", message["MONOTONIC_USEC"])
        assert sent_at <= int(message["MONOTONIC_USEC"]) <= sent_at + 30_000_000
        wait_for(
            lambda: manager.first("READY", reloading + 1) is not None, what="READY after reload"
        )

        # SIGTERM: STOPPING=1, then a clean exit.
        before = len(manager.received())
        assert daemon.stop() == 0
        stopping = manager.first("STOPPING", before)
        assert stopping is not None
        assert manager.received()[stopping]["STOPPING"] == "1"
    finally:
        if daemon.running:
            daemon.kill()


def test_a_watchdog_meant_for_another_process_is_not_pinged(
    tmp_path: Path, manager: ServiceManager
) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    daemon = Daemon(
        config,
        tmp_path / "daemon.log",
        env={
            "NOTIFY_SOCKET": str(manager.path),
            "WATCHDOG_USEC": "200000",
            "WATCHDOG_PID": "1",  # set by a manager for its main process, not for us
        },
    ).start()
    try:
        wait_for(lambda: manager.first("READY") is not None, what="READY=1")
        time.sleep(1.0)  # five watchdog periods
        assert not any("WATCHDOG" in message for message in manager.received())
    finally:
        daemon.stop()
