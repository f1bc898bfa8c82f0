"""Reloads and stops of a running daemon."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Daemon, drop, files, ledger_states, rule, wait_for, write_config

pytestmark = pytest.mark.e2e


def write_rule(path: Path, **fields: object) -> None:
    path.write_text(yaml.safe_dump(fields, sort_keys=False), encoding="utf-8")


def test_an_invalid_rule_edit_is_reported_and_the_previous_rules_stay(
    tmp_path: Path, clips
) -> None:
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    reels = rule(tmp_path, name="reels", outputs="{stem}-v1.mp4")
    write_rule(rules_dir / "reels.yaml", **reels)
    config = write_config(tmp_path, [], rules_dir=str(rules_dir))
    config.write_text(config.read_text().replace("rules: []\n", ""), encoding="utf-8")
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = Path(reels["inbox"]), Path(reels["outbox"])
    try:
        # line 3 of the rule file gets a key that does not exist
        text = (rules_dir / "reels.yaml").read_text().splitlines()
        text.insert(2, "colour: blue")
        (rules_dir / "reels.yaml").write_text("\n".join(text) + "\n")
        invalid = wait_for(lambda: daemon.saw("config.invalid"), what="config.invalid")
        assert any("reels.yaml:3" in problem for problem in invalid[0]["problems"])
        drop(inbox / "first.mp4", clips.basic)
        wait_for(lambda: files(outbox, "first-v1.mp4"), what="output under the old rule")
        # a valid edit replaces the rules
        write_rule(rules_dir / "reels.yaml", **{**reels, "outputs": "{stem}-v2.mp4"})
        wait_for(lambda: daemon.saw("config.reloaded"), what="config.reloaded")
        drop(inbox / "second.mp4", clips.silences)
        wait_for(lambda: files(outbox, "second-v2.mp4"), what="output under the new rule")
    finally:
        assert daemon.stop() == 0


def test_sighup_reloads_the_config(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, name="one")])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        two = rule(tmp_path, name="two")
        data = yaml.safe_load(config.read_text())
        data["rules"].append(two)
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        reloaded = wait_for(lambda: daemon.saw("config.reloaded"), what="config.reloaded")
        assert reloaded[0]["rules"] == ["one", "two"]
        drop(Path(two["inbox"]) / "clip.mp4", clips.basic)
        wait_for(lambda: files(Path(two["outbox"]), "clip.mp4"), what="the new rule works")
    finally:
        assert daemon.stop() == 0


# 15 s of tiny frames read at 5 times real time: a render of 3 s to stop the daemon in
SLOW = 5


def test_sigterm_lets_a_running_job_finish_within_the_grace_period(
    tmp_path: Path, clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    paced_ffmpeg(SLOW)
    config = write_config(tmp_path, [rule(tmp_path)], grace_period=60)
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    drop(inbox / "long.mp4", clips.long_tiny)
    wait_for(
        lambda: "exporting" in ledger_states(tmp_path / "state").values(),
        interval=0.02,
        what="rendering",
    )
    assert daemon.stop() == 0
    assert [path.name for path in files(outbox)] == ["long.mp4"]
    assert list(ledger_states(tmp_path / "state").values()) == ["done"]
    assert daemon.saw("daemon.stopped")


def test_sigterm_with_no_grace_leaves_the_job_to_resume(
    tmp_path: Path, clips, paced_ffmpeg: Callable[[float], Path]
) -> None:
    paced_ffmpeg(SLOW)
    config = write_config(tmp_path, [rule(tmp_path)], grace_period=0)
    log = tmp_path / "daemon.log"
    daemon = Daemon(config, log).start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    drop(inbox / "long.mp4", clips.long_tiny)
    wait_for(
        lambda: "exporting" in ledger_states(tmp_path / "state").values(),
        interval=0.02,
        what="rendering",
    )
    assert daemon.stop() == 0
    assert daemon.saw("job.interrupted")
    assert list(ledger_states(tmp_path / "state").values()) == ["exporting"]
    assert not files(outbox)
    restarted = Daemon(config, log).start()
    try:
        wait_for(lambda: files(outbox, "long.mp4"), timeout=120, what="resumed output")
        wait_for(lambda: files(inbox / "done", "long.mp4"), what="archived")
        assert list(ledger_states(tmp_path / "state").values()) == ["done"]
    finally:
        assert restarted.stop() == 0
