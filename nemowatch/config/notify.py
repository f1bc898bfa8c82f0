"""`notify:` in the config and on a rule: where to say that a job ended or work paused
(docs/notifications.md), and the checks `check` runs on it.

A rule's `notify` replaces the global one for that rule's jobs; a credits pause goes to
every `notify` that asks for `paused`. URLs are checked without showing them: an Apprise
URL or a webhook's path may hold a token.
"""

from __future__ import annotations

import importlib.util
import re
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from nemowatch.config.document import Origin
from nemowatch.config.values import expand_path
from nemowatch.errors import ConfigProblem
from nemowatch.rules import Frozen

APPRISE_INSTALL = "pip install 'nemowatch[notify]'"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://.")


class Event(StrEnum):
    """What a notification is sent for."""

    DONE = "done"  # a job published its output
    FAILED = "failed"  # a job failed (its source went to failed/)
    PAUSED = "paused"  # new work stopped: no NemoVideo credits left


# A person needs to act on these; a busy folder's every success would be noise.
DEFAULT_EVENTS = (Event.FAILED, Event.PAUSED)


class Webhook(Frozen):
    """A JSON POST to `url`, signed with HMAC-SHA256 of the body under the secret."""

    url: str
    secret: SecretStr | None = None  # or, better, in a file only its owner reads:
    secret_file: Path | None = None
    timeout: float = Field(default=10.0, gt=0.0, le=300.0)  # seconds, one attempt

    @field_validator("secret_file", mode="before")
    @classmethod
    def _absolute(cls, value: object) -> object:
        if not isinstance(value, str | Path):
            return value
        path = expand_path(value)
        if not path.is_absolute():
            raise ValueError("must be an absolute path (~ and $VARS work)")
        return path


class Notify(Frozen):
    """Where to send notifications, and for what."""

    events: tuple[Event, ...] = DEFAULT_EVENTS
    urls: tuple[str, ...] = ()  # Apprise URLs: slack://, discord://, tgram://, ntfy://, ...
    webhook: Webhook | None = None

    @field_validator("events", "urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value  # `urls: ntfy://...`


def apprise_installed() -> bool:
    return importlib.util.find_spec("apprise") is not None


def notify_problems(notify: Notify, origin: Origin) -> list[ConfigProblem]:
    """What is wrong with one `notify` (`origin`: where it was written)."""
    problems: list[ConfigProblem] = []
    if not notify.urls and notify.webhook is None:
        problems.append(origin.problem((), "names no `urls` and no `webhook`: nothing to send to"))
    if notify.urls and not apprise_installed():
        message = f"Apprise URLs need the Apprise library: {APPRISE_INSTALL}"
        problems.append(origin.problem(("urls",), message))
    else:
        for index, url in enumerate(notify.urls):
            if (wrong := apprise_url_problem(url)) is not None:
                problems.append(origin.problem(("urls", index), wrong))
    webhook = notify.webhook
    if webhook is not None:
        if (webhook.secret is None) == (webhook.secret_file is None):
            message = (
                "needs `secret` or `secret_file`: the receiver checks the signature with it"
                if webhook.secret is None
                else "set `secret` or `secret_file`, not both"
            )
            problems.append(origin.problem(("webhook",), message))
        if (wrong := webhook_url_problem(webhook.url)) is not None:
            problems.append(origin.within("webhook").problem(("url",), wrong))
        secret_file = webhook.secret_file
        if secret_file is not None and (wrong := secret_file_problem(secret_file)) is not None:
            problems.append(origin.within("webhook").problem(("secret_file",), wrong))
    return problems


def apprise_url_problem(url: str) -> str | None:
    """Why Apprise cannot send to `url`, naming only its scheme (the rest may be a token)."""
    found = _SCHEME.match(url)
    if found is None:
        return "is not an Apprise URL: expected scheme://..., e.g. ntfy://ntfy.sh/my-topic"
    import apprise  # only here: `check` without Apprise URLs does not pay for the import

    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        return (
            f'Apprise cannot send to this "{found[1]}://" URL: an unknown scheme or a'
            " URL it cannot read (see https://github.com/caronc/apprise/wiki)"
        )
    return None


def webhook_url_problem(url: str) -> str | None:
    """Why `url` is no webhook address, naming only its scheme and host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f'"{parts.scheme}://"' if parts.scheme else "no scheme"
        return f'expected an "https://" or "http://" URL with a host, got {shown}'
    return None


def secret_file_problem(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{path} does not exist: write the webhook's secret there"
    except (OSError, UnicodeError) as error:
        return f"{path} cannot be read: {error.__class__.__name__}"
    if not text.strip():
        return f"{path} is empty: write the webhook's secret there"
    return None


def read_secret(webhook: Webhook) -> bytes:
    """The webhook's secret (OSError when its file went away since the config was read)."""
    if webhook.secret is not None:
        return webhook.secret.get_secret_value().encode()
    if webhook.secret_file is None:
        raise OSError("the webhook has no secret")  # `check` refuses such a config
    return webhook.secret_file.read_text(encoding="utf-8").strip().encode()
