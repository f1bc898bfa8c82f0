"""Notifications: a job done or failed, new work paused for credits, said in one line to
Apprise URLs (Slack, Discord, Telegram, ntfy, email, ...) and/or a signed webhook
(docs/notifications.md).

`Alerts` is a daemon companion. Deciding is pure (`notice_for_job`, `notice_for_pause`,
`targets_for`); sending happens in `deliver`, in a task of its own per notification and
target, retried under `POLICY` (nemowatch.retry logs each retry). A notification that
cannot be sent is logged (`notify.failed`) and dropped: it never fails a job, delays one,
or holds the event loop (Apprise is synchronous: it runs in a thread).

Nothing logged names a URL's path, query or credentials, nor a secret: a target is shown
as "webhook https://host:port" or "apprise slack".
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import structlog

from nemowatch import __version__
from nemowatch.config import Config
from nemowatch.config.notify import Event, Notify, Webhook, read_secret
from nemowatch.daemon.companions import Companion, Host
from nemowatch.errors import NemowatchError, TransientError
from nemowatch.jobs import JobRecord, JobState
from nemowatch.retry import RetryPolicy, Sleep, call

log = structlog.get_logger("nemowatch.alerts")

# Four tries, 1 s, 2 s and 4 s apart: a receiver restarting is waited out, one that is
# down for long costs a few seconds of a background task, and the notification is dropped.
POLICY = RetryPolicy(attempts=4)
MAX_PENDING = 100  # notifications being sent at once; past it new ones are dropped (logged)
SIGNATURE_HEADER = "X-Nemowatch-Signature"  # "sha256=" + hex HMAC-SHA256 of the body
EVENT_HEADER = "X-Nemowatch-Event"
_LONGEST = 300  # characters of an error or hint in the one-line message


@dataclass(frozen=True)
class Notice:
    """One thing to tell: a line for people, the same as JSON for programs."""

    event: Event
    message: str  # one line: file, rule, outcome, output or error and hint, duration
    payload: dict[str, Any] = field(default_factory=dict)  # the webhook's JSON body


@dataclass(frozen=True)
class Target:
    """One place to send to: an Apprise URL, or a webhook."""

    apprise: str | None = None
    webhook: Webhook | None = None

    @property
    def label(self) -> str:
        """How logs name it: the scheme and host, never a path, query or credentials."""
        if self.webhook is not None:
            parts = urlsplit(self.webhook.url)
            port = f":{parts.port}" if parts.port else ""
            return f"webhook {parts.scheme}://{parts.hostname}{port}"
        return f"apprise {urlsplit(self.apprise or '').scheme}"


# -- deciding (pure) -------------------------------------------------------------------


def notice_for_job(record: JobRecord, hint: str | None, now: float) -> Notice | None:
    """What to say of a job that ended: done or failed; None for skipped or returned."""
    if record.state is JobState.DONE:
        event = Event.DONE
    elif record.state is JobState.FAILED:
        event = Event.FAILED
    else:
        return None
    seconds = round((record.finished_at or now) - record.created_at, 1)
    name, outputs = record.source.name, [str(path) for path in record.outputs]
    if event is Event.DONE:
        made = ", ".join(path.name for path in record.outputs) or "no new file"
        message = f"nemowatch: done {name} (rule {record.rule}) -> {made} in {seconds:g} s"
    else:
        error = _short(record.error or "unknown error")
        advice = f"; {_short(hint)}" if hint else ""
        message = (
            f"nemowatch: failed {name} (rule {record.rule}): {error}{advice} (after {seconds:g} s)"
        )
    payload = {
        "event": event.value,
        "message": message,
        "job_id": record.id,
        "rule": record.rule,
        "file": name,
        "source": str(record.source),
        "outputs": outputs,
        "error": record.error,
        "error_kind": record.error_kind,
        "hint": hint,
        "retryable": record.retryable,
        "seconds": seconds,
    }
    return Notice(event, message, _stamped(payload, now))


def notice_for_pause(reason: str, detail: str, now: float) -> Notice | None:
    """What to say of new work paused: only a credits pause (an operator knows theirs)."""
    if reason != "credits":
        return None
    message = f"nemowatch: paused, out of NemoVideo credits: {_short(detail)}"
    payload = {"event": Event.PAUSED.value, "message": message, "reason": reason, "detail": detail}
    return Notice(Event.PAUSED, message, _stamped(payload, now))


def targets_for(notify: Notify | None, event: Event) -> list[Target]:
    if notify is None or event not in notify.events:
        return []
    targets = [Target(apprise=url) for url in notify.urls]
    if notify.webhook is not None:
        targets.append(Target(webhook=notify.webhook))
    return targets


def job_targets(config: Config, rule: str, event: Event) -> list[Target]:
    """A rule's own `notify`, or else the global one."""
    found = next((item for item in config.rules if item.name == rule), None)
    notify = found.notify if found is not None and found.notify is not None else config.notify
    return targets_for(notify, event)


def pause_targets(config: Config) -> list[Target]:
    """Every `notify` that asks for `paused`, each target once."""
    every = [config.notify, *(rule.notify for rule in config.rules)]
    targets = [target for notify in every for target in targets_for(notify, Event.PAUSED)]
    return list(dict.fromkeys(targets))


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value: what a receiver computes from the body to compare."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _short(text: str) -> str:
    line = " ".join(text.split())  # one line, whatever the error held
    return line if len(line) <= _LONGEST else line[: _LONGEST - 3] + "..."


def _stamped(payload: dict[str, Any], now: float) -> dict[str, Any]:
    # the id lets a receiver drop a retried delivery it already had; `at` an old replay
    at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    return {**payload, "id": uuid.uuid4().hex, "at": at, "version": __version__}


# -- sending ---------------------------------------------------------------------------


async def deliver(
    target: Target, notice: Notice, *, policy: RetryPolicy = POLICY, sleep: Sleep = asyncio.sleep
) -> None:
    """Send `notice` to `target`, retrying what may pass (a network error, a 5xx)."""
    if target.webhook is not None:
        webhook = target.webhook
        secret = await asyncio.to_thread(read_secret, webhook)
        tls = await asyncio.to_thread(_tls)
        await call(
            lambda: _post(webhook, notice, secret, tls),
            policy,
            what=f"notify {target.label}",
            sleep=sleep,
        )
    elif target.apprise is not None:
        url = target.apprise
        await call(
            lambda: _apprise(url, notice, target.label),
            policy,
            what=f"notify {target.label}",
            sleep=sleep,
        )


@functools.cache
def _tls() -> ssl.SSLContext:
    """The certificates to check receivers with, loaded once (37 ms each time otherwise)."""
    import httpx  # here: a daemon without webhooks need not import it (nemowatch/imports.py)

    return httpx.create_ssl_context()


async def _post(webhook: Webhook, notice: Notice, secret: bytes, tls: ssl.SSLContext) -> None:
    import httpx

    body = json.dumps(notice.payload, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"nemowatch/{__version__}",
        EVENT_HEADER: notice.event.value,
        SIGNATURE_HEADER: signature(secret, body),
    }
    try:
        async with httpx.AsyncClient(timeout=webhook.timeout, verify=tls) as client:
            response = await client.post(webhook.url, content=body, headers=headers)
    except httpx.TransportError as error:  # no URL in its text: only what went wrong
        raise TransientError(f"{type(error).__name__}: {error}") from error
    if response.status_code == 429 or response.status_code >= 500:
        wait = response.headers.get("Retry-After", "")  # seconds, when it says
        raise TransientError(
            f"the receiver answered {response.status_code}",
            retry_after=float(wait) if wait.isdigit() else None,
        )
    if response.status_code >= 400:
        raise NemowatchError(
            f"the receiver refused it ({response.status_code})",
            hint="a 401 or 403: does the receiver check with the same secret?",
        )


async def _apprise(url: str, notice: Notice, label: str) -> None:
    if not await asyncio.to_thread(_apprise_send, url, notice):
        # Apprise says why on its own logger; what we know is that this one failed
        raise TransientError(f"{label} did not take the notification")


def _apprise_send(url: str, notice: Notice) -> bool:
    import apprise  # the `notify` extra; `check` refuses Apprise URLs without it

    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    title = {
        Event.DONE: "nemowatch: done",
        Event.FAILED: "nemowatch: failed",
        Event.PAUSED: "nemowatch: paused",
    }
    kind = {
        Event.DONE: apprise.NotifyType.SUCCESS,
        Event.FAILED: apprise.NotifyType.FAILURE,
        Event.PAUSED: apprise.NotifyType.WARNING,
    }
    return bool(
        sender.notify(
            title=title[notice.event], body=notice.message, notify_type=kind[notice.event]
        )
    )


class Alerts(Companion):
    """Notifications as a daemon companion: each in a task of its own, never in the way."""

    def __init__(
        self,
        *,
        policy: RetryPolicy = POLICY,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._sleep = sleep
        self._wall = wall
        self._host: Host | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._early: list[tuple[str, str]] = []  # pauses before `run` (the first credits poll)

    async def run(self, daemon: Host) -> None:
        self._host = daemon
        for reason, detail in self._early:
            self.paused(reason, detail)
        self._early.clear()

    def job_ended(self, record: JobRecord) -> None:
        if self._host is None:
            return
        notice = notice_for_job(record, self._hint(record), self._wall())
        if notice is not None:
            self._send(job_targets(self._host.config, record.rule, notice.event), notice)

    def paused(self, reason: str, detail: str) -> None:
        if self._host is None:
            self._early.append((reason, detail))
            return
        notice = notice_for_pause(reason, detail, self._wall())
        if notice is not None:
            self._send(pause_targets(self._host.config), notice)

    async def settled(self) -> None:
        """Wait until every notification was sent or given up (tests)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _hint(self, record: JobRecord) -> str | None:
        """A failed job's hint: the detail of its last change of state (`Pipeline._fail`)."""
        if record.state is not JobState.FAILED or self._host is None:
            return None
        history = self._host.ledger.history(record.id)
        return history[-1][3] if history else None

    def _send(self, targets: list[Target], notice: Notice) -> None:
        for target in targets:
            if len(self._sending) >= MAX_PENDING:
                log.warning(
                    "notify.dropped",
                    target=target.label,
                    notify_event=notice.event.value,
                    reason=f"{MAX_PENDING} notifications are still being sent",
                )
                continue
            task = asyncio.create_task(self._deliver(target, notice))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _deliver(self, target: Target, notice: Notice) -> None:
        try:
            await deliver(target, notice, policy=self._policy, sleep=self._sleep)
        except (NemowatchError, OSError) as error:
            log.warning(
                "notify.failed",
                target=target.label,
                notify_event=notice.event.value,
                error=str(error),
                hint=getattr(error, "hint", None),
            )
        except Exception as error:  # a bug or a library's surprise: still not the job's
            # its type only: the text of a foreign error may hold the URL, and its token
            log.error("notify.failed", target=target.label, error=type(error).__name__)
        else:
            log.info("notify.sent", target=target.label, notify_event=notice.event.value)
