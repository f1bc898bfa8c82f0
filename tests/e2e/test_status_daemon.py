"""`nemowatch status` beside a real daemon: whether it runs, its pid, and a second daemon
on the same state directory refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, nemowatch, rule, write_config

pytestmark = pytest.mark.e2e


def test_status_follows_the_daemon_and_a_second_one_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, [rule(tmp_path)])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        assert daemon.process is not None
        status = nemowatch(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["daemon"] == {"running": True, "pid": daemon.process.pid}
        second = nemowatch(config, "run", "--log-format", "json")
        assert second.returncode == 1
        assert f"(pid {daemon.process.pid}) is running on the state directory" in second.stderr
        assert daemon.running
    finally:
        assert daemon.stop() == 0
    status = nemowatch(config, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("daemon: not running;")
