"""Notifications from a real daemon (the scripted engine) to a real receiver on
127.0.0.1: a signed webhook and an Apprise URL carry each outcome; a receiver that is
down costs the job nothing; no secret reaches the logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from pathlib import Path

from pydantic import SecretStr
from structlog.testing import capture_logs

from nemowatch.alerts import MAX_PENDING, Alerts
from nemowatch.config.notify import Event, Notify, Webhook
from nemowatch.engines.base import Credits
from nemowatch.errors import EngineError
from nemowatch.ledger import JobState
from nemowatch.retry import RetryPolicy
from tests.e2e.harness import drop
from tests.fakes.receiver import receiver
from tests.fakes.scripted_engine import ScriptedEngine
from tests.media import Clips
from tests.running import no_sleep, one_rule_config, running, wait_until

SECRET = "s3cret-never-logged"
TOKEN = "t0ken-never-logged"


async def test_a_signed_webhook_and_an_apprise_url_hear_a_done_and_a_failed_job(
    tmp_path: Path, clips: Clips
) -> None:
    with receiver() as hooks:
        notify = Notify(
            events=(Event.DONE, Event.FAILED),
            urls=(f"json://nemowatch:{TOKEN}@127.0.0.1:{hooks.port}/apprise",),
            webhook=Webhook(url=hooks.url("/hook"), secret=SecretStr(SECRET)),
        )
        config = one_rule_config(tmp_path, notify=notify)
        alerts = Alerts(sleep=no_sleep)
        engine = ScriptedEngine(clips.basic, 3.0, sleep=no_sleep)
        with capture_logs() as logs:
            async with running(config, engine, [alerts]) as daemon:
                drop(config.rules[0].inbox / "a.mp4", clips.basic)
                await wait_until(lambda: len(hooks.deliveries) == 2)
                engine.cue("export", EngineError("the render was refused", hint="try again"))
                drop(config.rules[0].inbox / "b.mp4", clips.no_audio)
                await wait_until(lambda: len(hooks.deliveries) == 4)
                [done] = daemon.ledger.jobs(JobState.DONE)
                await alerts.settled()

    webhooks = [item for item in hooks.deliveries if item.path == "/hook"]
    payloads = []
    for delivery in webhooks:
        expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["x-nemowatch-signature"] == f"sha256={expected}"
        assert delivery.headers["content-type"] == "application/json"
        payloads.append(json.loads(delivery.body))
    assert [payload["event"] for payload in payloads] == ["done", "failed"]
    first, second = payloads
    assert first["file"] == "a.mp4" and first["rule"] == "clips"
    assert first["outputs"] == [str(done.output)]
    assert done.output is not None
    assert first["message"].startswith(
        f"nemowatch: done a.mp4 (rule clips) -> {done.output.name} in "
    )
    assert second["file"] == "b.mp4" and second["error_kind"] == "engine"
    assert second["error"] == "exporting: the render was refused" and second["hint"] == "try again"
    assert "exporting: the render was refused; try again (after " in second["message"]
    assert all("\n" not in payload["message"] for payload in payloads)

    apprised = [json.loads(item.body) for item in hooks.deliveries if item.path == "/apprise"]
    assert [item["type"] for item in apprised] == ["success", "failure"]
    assert [item["message"] for item in apprised] == [payload["message"] for payload in payloads]

    sent = [entry for entry in logs if entry["event"] == "notify.sent"]
    assert {entry["target"] for entry in sent} == {
        f"webhook http://127.0.0.1:{hooks.port}",
        "apprise json",
    }
    assert SECRET not in repr(logs) and TOKEN not in repr(logs)


class BrokeEngine(ScriptedEngine):
    async def credits(self) -> Credits | None:
        return Credits(available=0.0)


async def test_out_of_credits_is_told_and_an_operator_pause_is_not(
    tmp_path: Path, clips: Clips
) -> None:
    with receiver() as hooks:
        webhook = Webhook(url=hooks.url(), secret=SecretStr(SECRET))
        config = one_rule_config(tmp_path, notify=Notify(webhook=webhook))  # the default events
        alerts = Alerts(sleep=no_sleep)
        async with running(
            config, BrokeEngine(clips.basic, 3.0, sleep=no_sleep), [alerts]
        ) as daemon:
            await wait_until(lambda: hooks.deliveries)
            daemon.pauses.by_operator(True)
            await alerts.settled()
        [delivery] = hooks.deliveries
        payload = json.loads(delivery.body)
        assert payload["event"] == "paused" and payload["reason"] == "credits"
        assert payload["message"].startswith("nemowatch: paused, out of NemoVideo credits: ")


async def test_a_receiver_that_is_down_costs_the_job_nothing(tmp_path: Path, clips: Clips) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    webhook = Webhook(url=f"http://127.0.0.1:{port}/hook", secret=SecretStr(SECRET))
    config = one_rule_config(tmp_path, notify=Notify(events=(Event.DONE,), webhook=webhook))
    # three tries, 1 s and 2 s apart, really waited: 3 s of trying after each job's end
    alerts = Alerts(policy=RetryPolicy(attempts=3))
    engine = ScriptedEngine(clips.basic, 3.0, sleep=no_sleep)

    def events(name: str) -> list[dict[str, object]]:
        return [entry for entry in logs if entry["event"] == name]

    with capture_logs() as logs:
        async with running(config, engine, [alerts]) as daemon:
            drop(config.rules[0].inbox / "a.mp4", clips.basic)
            await wait_until(lambda: events("retry"))  # a's notification is being retried
            drop(config.rules[0].inbox / "b.mp4", clips.no_audio)
            await wait_until(lambda: len(daemon.ledger.jobs(JobState.DONE)) == 2)
            assert not events("notify.failed")  # a's was still being tried meanwhile
            second, first = daemon.ledger.jobs(JobState.DONE)  # newest first
            assert second.source.name == "b.mp4"
            assert first.finished_at is not None and second.finished_at is not None
            # b was claimed, run and ended while a's notification waited to be tried again
            assert second.finished_at - second.created_at < 1.5
            await alerts.settled()
            given_up = time.time()
    assert given_up - first.finished_at >= 2.5  # a's retries went on after both ends
    assert sorted(entry["attempt"] for entry in events("retry")) == [1, 1, 2, 2]
    assert [entry["target"] for entry in events("notify.failed")] == [
        f"webhook http://127.0.0.1:{port}"
    ] * 2
    assert SECRET not in repr(logs)


async def test_past_a_hundred_notifications_being_sent_new_ones_are_dropped_and_logged(
    tmp_path: Path, clips: Clips
) -> None:
    with socket.socket() as closed:  # a port nobody listens on: each try fails at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    webhook = Webhook(url=f"http://127.0.0.1:{port}/hook", secret=SecretStr(SECRET))
    config = one_rule_config(tmp_path, notify=Notify(events=(Event.DONE,), webhook=webhook))
    alerts = Alerts(policy=RetryPolicy(attempts=1))
    engine = ScriptedEngine(clips.basic, 3.0, sleep=no_sleep)
    with capture_logs() as logs:
        async with running(config, engine, [alerts]) as daemon:
            drop(config.rules[0].inbox / "a.mp4", clips.basic)
            await wait_until(lambda: [entry for entry in logs if entry["event"] == "notify.failed"])
            # its task is counted until its done callback runs, a loop turn after the log line
            await alerts.settled()
            [done] = daemon.ledger.jobs(JobState.DONE)
            del logs[:]
            for _ in range(MAX_PENDING + 1):  # a burst, on the loop: none is sent meanwhile
                alerts.job_ended(done)
            await alerts.settled()
    dropped = [entry for entry in logs if entry["event"] == "notify.dropped"]
    failed = [entry for entry in logs if entry["event"] == "notify.failed"]
    assert (len(dropped), len(failed)) == (1, MAX_PENDING)
