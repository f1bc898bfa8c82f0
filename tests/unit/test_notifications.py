"""`notify:`: what `check` says of it (file:line, never a URL's token), which targets a
job's end or a pause goes to, and the one-line message and signature (pure)."""

from __future__ import annotations

import hashlib
import hmac
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from nemowatch.alerts import (
    Target,
    job_targets,
    notice_for_job,
    notice_for_pause,
    pause_targets,
    signature,
)
from nemowatch.config import Config, Rule, load_config
from nemowatch.config.notify import APPRISE_INSTALL, Event, Notify, Webhook, read_secret
from nemowatch.errors import ConfigError, ConfigProblem
from nemowatch.jobs import JobRecord, JobState


def problems_of(tmp_path: Path, text: str) -> list[ConfigProblem]:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_check_names_each_notify_mistake_with_its_line_and_no_token(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        f"""
        notify:
          urls: ["slackk://T0KEN/secret", "no-scheme-T0KEN"]
          webhook:
            url: "ftp://user:T0KEN@example.com/hook"
            secret_file: {tmp_path}/missing.secret
        rules:
          - name: reels
            inbox: in
            outbox: out
            notify:
              webhook: {{url: "https://example.com/hook"}}
          - name: quiet
            inbox: in2
            outbox: out2
            notify: {{events: [done, exploded]}}
        """,
    )
    found = {(problem.line, problem.path): problem.message for problem in problems}
    assert set(found) == {
        (2, "notify.urls[0]"),
        (2, "notify.urls[1]"),
        (4, "notify.webhook.url"),
        (5, "notify.webhook.secret_file"),
        (11, "rules[0].notify.webhook"),
        (15, "rules[1].notify.events[1]"),
    }
    assert 'this "slackk://" URL' in found[(2, "notify.urls[0]")]
    assert "expected scheme://" in found[(2, "notify.urls[1]")]
    assert 'got "ftp://"' in found[(4, "notify.webhook.url")]
    assert "missing.secret does not exist" in found[(5, "notify.webhook.secret_file")]
    assert "needs `secret` or `secret_file`" in found[(11, "rules[0].notify.webhook")]
    assert all("T0KEN" not in str(problem) for problem in problems)


def test_a_notify_that_sends_nowhere_and_a_relative_secret_file_are_refused(
    tmp_path: Path,
) -> None:
    problems = problems_of(
        tmp_path,
        """
        notify: {events: failed}
        rules:
          - name: reels
            inbox: in
            outbox: out
            notify:
              webhook: {url: "https://example.com/hook", secret_file: hook.secret}
        """,
    )
    assert [(problem.line, problem.path) for problem in problems] == [
        (1, "notify"),
        (7, "rules[0].notify.webhook.secret_file"),
    ]
    assert "nothing to send to" in problems[0].message
    assert "must be an absolute path" in problems[1].message


def test_a_valid_notify_loads_with_failed_and_paused_by_default(tmp_path: Path) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            notify:
              urls: ntfy://ntfy.sh/my-topic
              webhook: {{url: "https://example.com/hook", secret_file: {secret}}}
            rules:
              - {{name: reels, inbox: in, outbox: out, notify: {{events: [done], urls: "json://localhost"}}}}
            """
        ),
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.notify is not None and config.notify.webhook is not None
    assert config.notify.events == (Event.FAILED, Event.PAUSED)
    assert config.notify.urls == ("ntfy://ntfy.sh/my-topic",)
    assert read_secret(config.notify.webhook) == b"s3cret"
    assert config.rules[0].notify is not None
    assert config.rules[0].notify.events == (Event.DONE,)


def config_with(tmp_path: Path) -> Config:
    hook = Webhook(url="https://example.com/hook", secret=SecretStr("x"))
    own = Rule(
        name="own",
        inbox=tmp_path / "a",
        outbox=tmp_path / "b",
        notify=Notify(events=(Event.DONE, Event.PAUSED), urls=("ntfy://ntfy.sh/own",)),
    )
    plain = Rule(name="plain", inbox=tmp_path / "c", outbox=tmp_path / "d")
    return Config(rules=(own, plain), notify=Notify(webhook=hook, urls=("ntfy://ntfy.sh/own",)))


def test_a_rules_notify_replaces_the_global_one_for_its_jobs(tmp_path: Path) -> None:
    config = config_with(tmp_path)
    assert job_targets(config, "own", Event.DONE) == [Target(apprise="ntfy://ntfy.sh/own")]
    assert job_targets(config, "own", Event.FAILED) == []  # it asks for done and paused only
    assert job_targets(config, "plain", Event.DONE) == []  # the global default: not done
    assert [target.label for target in job_targets(config, "plain", Event.FAILED)] == [
        "apprise ntfy",
        "webhook https://example.com",
    ]


def test_a_pause_goes_to_every_notify_that_asks_for_it_each_target_once(tmp_path: Path) -> None:
    labels = [target.label for target in pause_targets(config_with(tmp_path))]
    assert labels == ["apprise ntfy", "webhook https://example.com"]


def record(state: JobState, **fields: object) -> JobRecord:
    base: dict[str, object] = dict(
        id="0123abcd", rule="reels", engine="local", source=Path("/in/clip.mp4"),
        source_size=10, source_mtime_ns=1, source_inode=1, claimed=None, fingerprint=None,
        size=10, state=state, attempts=1, retryable=None, session=None, media=None,
        edits_done=0, edit_sent=None, edit_token=None, draft=None, render=None, output=None,
        error=None, warnings=[], disposed=None, timings={}, created_at=100.0,
        updated_at=142.5, finished_at=142.5,
    )  # fmt: skip
    return JobRecord(**{**base, **fields})  # type: ignore[arg-type]


def test_the_message_says_file_rule_outcome_output_or_error_and_duration_in_one_line() -> None:
    done = notice_for_job(record(JobState.DONE, output=Path("/out/clip.mp4")), None, 200.0)
    assert done is not None
    assert done.message == "nemowatch: done clip.mp4 (rule reels) -> clip.mp4 in 42.5 s"
    failed = notice_for_job(
        record(JobState.FAILED, error="exporting: ffmpeg exited 1:\n  bad\n  frames"),
        "the source may be damaged",
        200.0,
    )
    assert failed is not None
    assert failed.message == (
        "nemowatch: failed clip.mp4 (rule reels): exporting: ffmpeg exited 1: bad frames;"
        " the source may be damaged (after 42.5 s)"
    )
    assert failed.payload["event"] == "failed" and failed.payload["job_id"] == "0123abcd"
    assert notice_for_job(record(JobState.SKIPPED), None, 200.0) is None
    assert notice_for_pause("operator", "paused by an operator", 200.0) is None
    paused = notice_for_pause("credits", "no credits left; top up", 200.0)
    assert paused is not None and paused.payload["at"] == "1970-01-01T00:03:20+00:00"


def test_the_signature_is_hmac_sha256_of_the_body_under_the_secret() -> None:
    body = b'{"event": "done"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature(b"k", body) == f"sha256={expected}"
    assert signature(b"other", body) != f"sha256={expected}"


def test_without_apprise_check_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # how Python hides an installed module
    problems = problems_of(
        tmp_path,
        """
        rules:
          - name: reels
            inbox: in
            outbox: out
            notify: {urls: "ntfy://ntfy.sh/my-topic"}
        """,
    )
    assert [(problem.line, problem.path, problem.message) for problem in problems] == [
        (5, "rules[0].notify.urls", f"Apprise URLs need the Apprise library: {APPRISE_INSTALL}")
    ]
    assert APPRISE_INSTALL == "pip install 'nemowatch[notify]'"
