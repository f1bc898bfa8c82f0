"""NemoEngine driven by the Pipeline against the fake NemoVideo server on 127.0.0.1.

Real HTTP, a real ledger, real folders; no mocks. Each row of shared/nemo-api.md's error
table has a test that asserts the action nemowatch takes, through the pipeline where the
action is the pipeline's. The pipeline and the engine share a `Sleeps` recorder, so no
test waits for a backoff: the recorded delays are asserted instead.

Two tiny transports (`Tamper`) stand in for server behaviour the fake cannot produce:
renumbering its 1001 refusals to 1010 / 1011, and losing the X-Client-Id header.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import shutil
import ssl
import stat
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from nemowatch import __version__
from nemowatch.config import NemoSettings, Rule
from nemowatch.config.targets import OutputTarget
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.auth import TOKEN_FILE, TokenFile
from nemowatch.engines.nemo.replies import StoredToken
from nemowatch.errors import AuthError, CreditsExhausted
from nemowatch.files import claim
from nemowatch.ledger import JobRecord, JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.rules import Quality
from nemowatch.steps import POLL_FIRST
from tests.fakes.nemo_server import (
    CompletedUrl,
    DownloadForm,
    Endpoint,
    ErrorStyle,
    FakeNemo,
    Fault,
    Heartbeat,
    RenderShape,
    TextTurns,
)

INSTRUCTIONS = ("cut out the silent parts", "add background music")
ATTRIBUTION = ("nemowatch", __version__, "linux")
ANY_TOKEN = ("nmv_", "Bearer ")  # what a leaked token or Authorization header starts with


# ------------------------------------------------------------------ helpers


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs about 50 ms per
    httpx client, two per engine, and the fake speaks plain HTTP anyway."""
    return ssl.create_default_context()


def real_http() -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(verify=tls())


class Sleeps:
    """A sleep that records each delay and returns at once; `hold` blocks matching delays
    forever (until cancelled), and `held` is set when one is reached."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hold: Callable[[float], bool] = lambda delay: False
        self.held = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.hold(delay):
            self.held.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)


class Tamper(httpx.AsyncBaseTransport):
    """Real HTTP to the fake, changed on the way: request headers dropped, or the JSON
    answers' `code` renumbered (the fake refuses a token only with 1001)."""

    def __init__(
        self, *, drop_headers: tuple[str, ...] = (), renumber: dict[int, int] | None = None
    ) -> None:
        self._inner = real_http()
        self._drop = drop_headers
        self._renumber = renumber or {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name in self._drop:
            if name in request.headers:
                del request.headers[name]
        response = await self._inner.handle_async_request(request)
        if not self._renumber or "json" not in response.headers.get("content-type", ""):
            return response
        body = json.loads(await response.aread())
        await response.aclose()
        if isinstance(body, dict) and body.get("code") in self._renumber:
            body["code"] = self._renumber[body["code"]]
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() != "content-length"
        ]
        return httpx.Response(response.status_code, headers=headers, json=body)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class World:
    tmp: Path
    fake: FakeNemo
    ledger: Ledger
    rule: Rule
    sleeps: Sleeps
    logs: list[MutableMapping[str, Any]]
    engines: list[NemoEngine] = field(default_factory=list)
    minted: list[str] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def settings(self, **overrides: Any) -> NemoSettings:
        return NemoSettings(base_url=self.fake.base_url, **overrides)

    def engine(
        self,
        *,
        environ: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        **settings: Any,
    ) -> NemoEngine:
        engine = NemoEngine(
            self.settings(**settings),
            state_dir=self.state_dir,
            environ=environ or {},
            sleep=self.sleeps,
            clock=clock or time.monotonic,
            transport=transport or real_http(),
            system="linux",
        )
        self.engines.append(engine)
        return engine

    def pipeline(self, engine: NemoEngine | None = None) -> Pipeline:
        return Pipeline(
            engine or self.engine(), self.ledger, state_dir=self.state_dir, sleep=self.sleeps
        )

    def drop(self, name: str = "clip.mp4", *, rule: Rule | None = None) -> str:
        rule = rule or self.rule
        source = rule.inbox / name
        shutil.copy(self.fake.video, source)
        job_id = new_job_id()
        claimed = claim(source, rule.inbox, job_id)
        assert claimed is not None
        self.ledger.create(
            job_id=job_id, rule=rule.name, engine="nemo", source=source, claimed=claimed
        )
        return job_id

    async def run(self, pipeline: Pipeline | None = None, *, rule: Rule | None = None) -> JobRecord:
        """Drop a clip and run its job to the end."""
        rule = rule or self.rule
        return await (pipeline or self.pipeline()).run(self.drop(rule=rule), rule)

    # What the fake saw.

    def session_ids(self) -> list[str]:
        return [record.session_id for record in self.fake.books.sessions]

    def uploads(self) -> int:
        return sum(len(items) for items in self.fake.books.uploads.values())

    def sent(self) -> list[str]:
        """Every instruction the fake received (refused ones too), in order."""
        return [record.text for items in self.fake.books.instructions.values() for record in items]

    def requests(self, endpoint: Endpoint) -> int:
        return len(self.fake.books.requests_to(endpoint))

    def events(self, name: str) -> list[MutableMapping[str, Any]]:
        return [entry for entry in self.logs if entry.get("event") == name]

    def error_report(self, name: str = "clip.mp4") -> dict[str, Any]:
        report: dict[str, Any] = json.loads(
            (self.rule.inbox / "failed" / f"{name}.error.json").read_text()
        )
        return report

    def tokens(self) -> list[str]:
        issued = [item.token for items in self.fake.books.tokens.values() for item in items]
        return issued + self.minted

    def assert_no_token_leaks(self, *raised: BaseException) -> None:
        """No token in the logs, the exceptions (and their causes), or any file nemowatch
        wrote (error.json, reports, the ledger) but the token file itself."""
        tokens = self.tokens()
        assert tokens, "the test never obtained a token"
        texts = [repr(entry) for entry in self.logs]
        for error in raised:
            current: BaseException | None = error
            while current is not None:
                texts += [str(current), repr(current)]
                current = current.__cause__ or current.__context__
        for path in self.tmp.rglob("*"):
            if path.is_file() and path.name != TOKEN_FILE:
                texts.append(path.read_bytes().decode("latin-1"))
        for text in texts:
            for secret in (*tokens, *ANY_TOKEN):
                assert secret not in text, f"a token leaked: {text[:300]!r}"


@pytest.fixture(scope="module")
def video(clips: Any) -> Path:
    """clips.basic with its index first: the pipeline refuses a result that is not
    fast-start, and the fake serves this very file as every render's result."""
    return clips.fast_start()


@pytest.fixture
async def world(tmp_path: Path, video: Path) -> AsyncIterator[World]:
    rule = Rule(
        name="reels",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=INSTRUCTIONS,
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir()
    ledger = Ledger.in_state_dir(tmp_path / "state")
    wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    with structlog.testing.capture_logs() as logs, FakeNemo(video=video) as fake:
        world = World(tmp_path, fake, ledger, rule, Sleeps(), logs)
        try:
            yield world
        finally:
            for engine in world.engines:
                await engine.close()
            ledger.close()
            structlog.configure(wrapper_class=wrapper)
    assert fake.books.server_errors == []


def variants(world: World, **changes: Any) -> None:
    world.fake.variants = replace(world.fake.variants, **changes)


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait (really) until `condition()` holds: for what happens on the server's threads."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def assert_done(world: World, record: JobRecord) -> None:
    assert record.state is JobState.DONE, record.error
    assert record.output == world.rule.outbox / "clip.mp4"
    assert record.output.read_bytes() == world.fake.video.read_bytes()


def assert_each_instruction_once(world: World) -> None:
    assert sorted(world.sent()) == sorted(INSTRUCTIONS)


# ------------------------------------------------------------------ 1. happy path


async def test_a_job_goes_from_token_to_verified_output_with_one_of_everything(
    world: World,
) -> None:
    rule = world.rule.model_copy(update={"report": True})
    record = await world.run(rule=rule)

    assert_done(world, record)
    assert [to for (_, to, _, _) in world.ledger.history(record.id)] == [
        "claimed",
        "uploading",
        "editing",
        "exporting",
        "downloading",
        "verifying",
        "done",
    ]
    books = world.fake.books
    (session_id,) = world.session_ids()
    (upload,) = books.uploads[session_id]
    assert upload.size == world.fake.video.stat().st_size
    assert books.applied_instructions(session_id) == list(INSTRUCTIONS)
    assert world.sent() == list(INSTRUCTIONS)
    render_id = f"render_{record.id}_1"
    assert [item.render_id for item in books.renders[session_id]] == [render_id]
    assert books.polls[render_id] >= 4  # pending, processing, processing, completed
    order = [request.endpoint for request in books.requests]
    firsts = [
        order.index(endpoint)
        for endpoint in (
            Endpoint.TOKEN,
            Endpoint.SESSION,
            Endpoint.UPLOAD,
            Endpoint.RUN_SSE,
            Endpoint.RENDER_SUBMIT,
            Endpoint.FILES,
        )
    ]
    assert firsts == sorted(firsts)
    for request in books.requests_to(Endpoint.RUN_SSE):
        assert request.headers["accept"] == "text/event-stream"

    # attribution everywhere, the token everywhere but where it must not go
    for request in books.requests:
        if request.endpoint is Endpoint.FILES:
            assert not request.has_token
            assert request.attribution() == (None, None, None)
        else:
            assert request.attribution() == ATTRIBUTION, request.path
            assert request.has_token is (request.endpoint is not Endpoint.TOKEN)

    # the token is kept 0600 and a second engine (a restarted daemon) reuses it
    token_file = world.state_dir / TOKEN_FILE
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    (client_id,) = books.tokens
    assert json.loads(token_file.read_text())["client_id"] == client_id
    credits = await world.engine().credits()
    assert world.requests(Endpoint.TOKEN) == 1
    (credit_request,) = books.requests_to(Endpoint.CREDITS)
    (session_request,) = books.requests_to(Endpoint.SESSION)
    assert credit_request.token_sha256 == session_request.token_sha256
    assert credits.anonymous and credits.user_id == books.tokens[client_id][0].user_id
    assert credits.available == 100 - len(INSTRUCTIONS)

    report = json.loads((rule.outbox / "clip.mp4.json").read_text())
    assert report["instructions"] == list(INSTRUCTIONS)
    world.assert_no_token_leaks()


async def test_several_outputs_are_one_session_one_edit_and_one_render_each(
    world: World,
) -> None:
    outputs = [
        OutputTarget(name="high", quality=Quality.HIGH),
        OutputTarget(name="small", file="small/{stem}.mp4", quality=Quality.LOW),
    ]
    rule = world.rule.model_copy(update={"outputs": tuple(outputs)})
    record = await world.run(rule=rule)

    assert record.state is JobState.DONE, record.error
    high, small = rule.outbox / "clip-high.mp4", rule.outbox / "small" / "clip.mp4"
    assert record.outputs == [high, small]
    assert high.read_bytes() == small.read_bytes() == world.fake.video.read_bytes()
    (session_id,) = world.session_ids()
    assert world.uploads() == 1
    assert world.sent() == list(INSTRUCTIONS)  # the edit made once, for both
    renders = world.fake.books.renders[session_id]
    assert [item.output.get("quality") for item in renders if item.accepted] == ["high", "low"]


async def test_the_engine_keeps_nothing_per_job_once_a_job_is_done(world: World) -> None:
    """A daemon runs for months: what the engine remembers for a job (the draft as
    NemoVideo wrote it, the render's link and size) must go when the job is done."""
    engine = world.engine()
    pipeline = world.pipeline(engine)
    for index, name in enumerate(("one.mp4", "two.mp4", "three.mp4")):
        job_id = world.drop(name)
        claimed = world.ledger.get(job_id).claimed
        assert claimed is not None
        with claimed.open("ab") as handle:  # its own bytes: not a duplicate of the others
            handle.write(bytes([index]) * 16)
        record = await pipeline.run(job_id, world.rule)
        assert record.state is JobState.DONE, record.error
    renders = engine._renders
    assert engine._raw_drafts == {}
    assert (renders._urls, renders._sizes, renders._urlless) == ({}, {}, {})


# ------------------------------------------------------------------ 2. the error table


@pytest.mark.parametrize(
    ("style", "renumber"),
    [
        pytest.param(ErrorStyle.CODE, None, id="code-1001"),
        pytest.param(ErrorStyle.CODE, {1001: 1010}, id="code-1010"),
        pytest.param(ErrorStyle.CODE, {1001: 1011}, id="code-1011"),
        pytest.param(ErrorStyle.HTTP, None, id="http-401"),
    ],
)
async def test_a_refused_token_is_renewed_for_the_same_client_and_the_call_retried_once(
    world: World, style: ErrorStyle, renumber: dict[int, int] | None
) -> None:
    variants(world, error_style=style)
    transport = Tamper(renumber=renumber) if renumber else None
    # the token expires on the server while the client still believes in it
    world.fake.faults.next(Fault.EXPIRED_TOKEN, Endpoint.UPLOAD)

    record = await world.run(world.pipeline(world.engine(transport=transport)))

    assert_done(world, record)
    ((client_id, issued),) = world.fake.books.tokens.items()  # one client id, two tokens
    assert len(issued) == 2
    refused, retried = world.fake.books.requests_to(Endpoint.UPLOAD)
    assert refused.fault is Fault.EXPIRED_TOKEN
    assert retried.status == 200 and retried.token_sha256 != refused.token_sha256
    assert world.uploads() == 1
    kept = json.loads((world.state_dir / TOKEN_FILE).read_text())
    assert kept["client_id"] == client_id and kept["token"] == issued[1].token
    world.assert_no_token_leaks()


@pytest.mark.parametrize("style", [ErrorStyle.CODE, ErrorStyle.HTTP])
async def test_a_refused_nemo_token_fails_the_job_naming_it_and_asks_for_no_other(
    world: World, style: ErrorStyle
) -> None:
    variants(world, error_style=style)
    token = world.fake.mint_token()
    world.minted.append(token)
    world.fake.expire_tokens()

    engine = world.engine(environ={"NEMO_TOKEN": token})
    record = await world.run(world.pipeline(engine))

    assert record.state is JobState.FAILED
    assert record.retryable is False
    assert "NEMO_TOKEN" in (record.error or "")
    assert "NEMO_TOKEN" in world.error_report()["error"]
    assert world.requests(Endpoint.TOKEN) == 0
    assert world.fake.books.tokens == {}
    assert world.requests(Endpoint.SESSION) == 1  # refused once, not retried
    assert not (world.state_dir / TOKEN_FILE).exists()
    with pytest.raises(AuthError) as raised:  # the same refusal, seen by a direct caller
        await engine.credits()
    assert "NEMO_TOKEN" in str(raised.value)
    world.assert_no_token_leaks(raised.value)


@pytest.mark.parametrize(
    ("style", "endpoint"),
    [
        (ErrorStyle.CODE, Endpoint.RUN_SSE),  # 1002 before the stream starts
        (ErrorStyle.HTTP, Endpoint.RUN_SSE),  # 404 {"detail": "Session not found..."}
        (ErrorStyle.CODE, Endpoint.RENDER_SUBMIT),
        (ErrorStyle.HTTP, Endpoint.STATE),
    ],
)
async def test_a_lost_session_is_replaced_the_file_uploaded_again_and_the_job_finished(
    world: World, style: ErrorStyle, endpoint: Endpoint
) -> None:
    variants(world, error_style=style)
    world.fake.faults.next(Fault.LOST_SESSION, endpoint)

    record = await world.run()

    assert_done(world, record)
    first, second = world.session_ids()
    assert set(world.fake.books.uploads) == {first, second}
    assert world.uploads() == 2
    assert world.fake.books.applied_instructions(second) == list(INSTRUCTIONS)
    assert len(world.fake.books.accepted_renders()) == 1
    assert world.events("session.lost")
    world.assert_no_token_leaks()


@pytest.mark.parametrize("style", [ErrorStyle.CODE, ErrorStyle.HTTP])
async def test_no_credits_pauses_the_job_at_its_checkpoint_and_it_resumes_without_resending(
    world: World, style: ErrorStyle
) -> None:
    variants(world, error_style=style)
    world.fake.set_credits(None, 1)  # enough for the first instruction only
    job_id = world.drop()

    with pytest.raises(CreditsExhausted) as raised:
        await world.pipeline().run(job_id, world.rule)

    waiting = world.ledger.get(job_id)
    (session_id,) = world.session_ids()
    user_id = world.fake.books.sessions[0].user_id
    assert f"https://nemovideo.com/register?bind={user_id}" in str(raised.value)
    assert waiting.state is JobState.EDITING  # at its checkpoint, not failed
    assert waiting.edits_done == 1
    assert waiting.attempts == 0  # a pause is not one of the job's attempts
    assert waiting.claimed is not None and waiting.claimed.exists()  # the source stays put
    assert not (world.rule.inbox / "failed").exists()
    assert world.sent() == [*INSTRUCTIONS]  # the second one was refused (2001)

    world.fake.set_credits(None, 100)
    record = await world.pipeline().run(job_id, world.rule)

    assert_done(world, record)
    books = world.fake.books
    assert books.applied_instructions(session_id) == list(INSTRUCTIONS)
    outcomes = [(item.text, item.outcome) for item in books.instructions[session_id]]
    assert outcomes == [
        (INSTRUCTIONS[0], "applied"),
        (INSTRUCTIONS[1], "no_credits"),
        (INSTRUCTIONS[1], "applied"),
    ]
    assert world.uploads() == 1
    world.assert_no_token_leaks(raised.value)


@pytest.mark.parametrize(
    ("fault", "code", "hint"),
    [
        (Fault.UNSUPPORTED_MEDIA, 4001, "convert it"),
        (Fault.MEDIA_TOO_LARGE, 4002, "compress"),
    ],
)
@pytest.mark.parametrize("style", [ErrorStyle.CODE, ErrorStyle.HTTP])
async def test_a_refused_file_fails_the_job_at_once_and_for_good(
    world: World, style: ErrorStyle, fault: Fault, code: int, hint: str
) -> None:
    variants(world, error_style=style)
    world.fake.faults.next(fault, Endpoint.UPLOAD)

    record = await world.run()

    assert record.state is JobState.FAILED
    assert record.retryable is False
    assert f"code {code}" in (record.error or "")
    assert world.requests(Endpoint.UPLOAD) == 1  # not retried
    assert world.sent() == []
    report = world.error_report()
    assert report["step"] == "uploading" and report["retryable"] is False
    assert hint in report["hint"]
    assert (world.rule.inbox / "failed" / "clip.mp4").exists()
    assert list(world.rule.outbox.iterdir()) == []
    world.assert_no_token_leaks()


async def test_the_anonymous_token_request_always_carries_the_kept_client_id(
    world: World,
) -> None:
    await world.engine().credits()
    world.fake.expire_tokens()
    await world.engine().credits()  # a restart; the kept token is refused and renewed

    asked = world.fake.books.requests_to(Endpoint.TOKEN)
    kept = json.loads((world.state_dir / TOKEN_FILE).read_text())["client_id"]
    assert len(asked) == 2
    assert {request.headers.get("x-client-id") for request in asked} == {kept}
    assert all(request.status == 200 for request in asked)


async def test_a_400_on_the_anonymous_token_request_fails_the_job_as_a_bug(world: World) -> None:
    engine = world.engine(transport=Tamper(drop_headers=("X-Client-Id",)))

    record = await world.run(world.pipeline(engine))

    assert record.state is JobState.FAILED
    assert "X-Client-Id" in (record.error or "")
    assert "bug" in (record.error or "")
    assert world.requests(Endpoint.TOKEN) == 1  # a bug is not retried
    assert world.fake.books.requests_to(Endpoint.TOKEN)[0].status == 400


async def test_a_402_on_export_fails_the_job_with_register_or_upgrade_and_no_retry(
    world: World,
) -> None:
    # no attribution: what makes the backend's free-plan gate refuse exports
    engine = world.engine(skill_source="")

    record = await world.run(world.pipeline(engine))

    assert record.state is JobState.FAILED
    assert "register or upgrade your plan" in (record.error or "")
    assert world.error_report()["step"] == "exporting"
    (session_id,) = world.session_ids()
    assert [item.outcome for item in world.fake.books.renders[session_id]] == ["blocked"]
    assert world.requests(Endpoint.RENDER_SUBMIT) == 1
    world.assert_no_token_leaks()


async def test_a_429_waits_for_retry_after_and_retries_once(world: World) -> None:
    world.fake.faults.next(Fault.RATE_LIMIT, Endpoint.SESSION, retry_after=7)

    record = await world.run()

    assert_done(world, record)
    limited, retried = world.fake.books.requests_to(Endpoint.SESSION)
    assert (limited.status, retried.status) == (429, 200)
    assert world.sleeps.delays.count(7.0) == 1
    assert len(world.session_ids()) == 1


async def test_an_anonymous_token_limited_for_days_fails_the_job_instead_of_waiting(
    world: World,
) -> None:
    await world.engine().credits()
    (client_id,) = world.fake.books.tokens
    # a crash between the token's answer and saving it: only the client id was kept
    TokenFile(world.state_dir / TOKEN_FILE).write(StoredToken(client_id=client_id))

    record = await world.run()

    assert record.state is JobState.FAILED
    assert record.retryable is True  # a later attempt (or NEMO_TOKEN) can succeed
    assert "rate limit" in (record.error or "")
    assert "NEMO_TOKEN" in world.error_report()["hint"]
    assert max(world.sleeps.delays, default=0.0) <= 300  # never waits out the 7 days
    limited = world.fake.books.requests_to(Endpoint.TOKEN)[1:]
    assert [request.status for request in limited] == [429]
    world.assert_no_token_leaks()


@pytest.mark.parametrize(
    "endpoint",
    [
        Endpoint.SESSION,
        Endpoint.UPLOAD,
        Endpoint.RUN_SSE,
        Endpoint.STATE,
        Endpoint.RENDER_SUBMIT,
        Endpoint.RENDER_POLL,
        Endpoint.FILES,
    ],
)
async def test_server_errors_are_retried_with_backoff_and_nothing_is_done_twice(
    world: World, endpoint: Endpoint
) -> None:
    world.fake.faults.next(Fault.SERVER_ERROR, endpoint, times=2, status=503)

    record = await world.run()

    assert_done(world, record)
    assert [r.status for r in world.fake.books.requests_to(endpoint)][:2] == [503, 503]
    backoff = [delay for delay in world.sleeps.delays if delay >= 1]
    assert backoff[:2] == [1.0, 2.0]
    assert len(world.session_ids()) == 1
    assert world.uploads() == 1
    assert_each_instruction_once(world)
    assert len(world.fake.books.accepted_renders()) == 1


async def test_a_connection_reset_mid_upload_restarts_the_upload(world: World) -> None:
    world.fake.faults.next(Fault.RESET, Endpoint.UPLOAD, after_bytes=64 * 1024)

    record = await world.run()

    assert_done(world, record)
    reset, retried = world.fake.books.requests_to(Endpoint.UPLOAD)
    assert reset.status is None and retried.status == 200
    (session_id,) = world.session_ids()
    assert world.fake.books.upload_bytes(session_id) == world.fake.video.stat().st_size
    assert 1.0 in world.sleeps.delays
    assert_each_instruction_once(world)


async def test_slow_answers_time_out_and_are_retried(world: World) -> None:
    for endpoint in (Endpoint.STATE, Endpoint.RENDER_POLL):
        world.fake.faults.next(Fault.SLOW, endpoint, delay=2.0)
    engine = world.engine(request_timeout=0.3)

    record = await world.run(world.pipeline(engine))

    assert_done(world, record)
    fired = world.fake.faults.fired
    assert (Fault.SLOW, Endpoint.STATE) in fired and (Fault.SLOW, Endpoint.RENDER_POLL) in fired
    assert world.sleeps.delays.count(1.0) >= 2  # each timed-out read backed off, then retried
    assert_each_instruction_once(world)
    assert len(world.fake.books.accepted_renders()) == 1


async def test_a_flaky_server_everywhere_still_gets_every_job_done_once(world: World) -> None:
    world.fake.faults.reseed(7)
    world.fake.faults.sometimes(Fault.SERVER_ERROR, None, probability=0.25, status=502)

    record = await world.run()

    assert_done(world, record)
    assert any(request.status == 502 for request in world.fake.books.requests)
    assert len(world.session_ids()) == 1
    assert world.uploads() == 1
    assert_each_instruction_once(world)
    assert len(world.fake.books.accepted_renders()) == 1


# ------------------------------------------------------------------ 3. the event stream

SUMMARIES = ("I removed the silent parts of your clip.", "I added lofi background music")


def said(world: World) -> list[str]:
    """What the pipeline logged of the agent's words."""
    return [str(entry["text"]) for entry in world.events("edit.text")]


@pytest.mark.parametrize("form", list(Heartbeat))
async def test_every_heartbeat_form_is_only_a_keep_alive(world: World, form: Heartbeat) -> None:
    variants(world, heartbeat=form, heartbeats_in_turn=3, text_turns=TextTurns.ALWAYS)
    world.fake.faults.next(Fault.STALL, Endpoint.RUN_SSE, delay=0.05, heartbeats=4)

    record = await world.run()

    assert_done(world, record)
    assert (Fault.STALL, Endpoint.RUN_SSE) in world.fake.faults.fired
    assert_each_instruction_once(world)
    assert record.warnings == []
    assert not world.events("edit.unknown_frame")
    for summary in SUMMARIES:
        assert sum(summary in text for text in said(world)) == 1


async def test_a_long_silence_logs_still_working_every_two_minutes(world: World) -> None:
    ticks = iter(range(0, 10_000, 50))  # each frame arrives 50 s after the previous one
    world.fake.faults.next(Fault.STALL, Endpoint.RUN_SSE, delay=0.05, heartbeats=6)

    engine = world.engine(clock=lambda: float(next(ticks)))
    record = await world.run(world.pipeline(engine))

    assert_done(world, record)
    assert world.events("edit.still_working")
    assert_each_instruction_once(world)


@pytest.mark.parametrize("snake_case", [False, True], ids=["camelCase", "snake_case"])
async def test_text_is_taken_once_from_complete_parts_never_thoughts_or_gui_speak(
    world: World, snake_case: bool
) -> None:
    variants(world, snake_case_events=snake_case, text_turns=TextTurns.ALWAYS)

    record = await world.run()

    assert_done(world, record)
    texts = said(world)
    for summary in SUMMARIES:
        assert sum(summary in text for text in texts) == 1  # the partial previews not added
    for text in texts:
        assert "The user asks" not in text  # a thought part
        for gui in ("Click", "panel", "Drag"):
            assert gui not in text
    assert all(
        any(summary in text for summary in SUMMARIES) or text == "The draft is ready to export."
        for text in texts
    )


async def test_a_turn_without_text_is_confirmed_by_reading_the_state(world: World) -> None:
    variants(world, text_turns=TextTurns.NEVER)

    record = await world.run()

    assert_done(world, record)
    assert_each_instruction_once(world)
    order = [request.endpoint for request in world.fake.books.requests]
    for index, endpoint in enumerate(order):
        if endpoint is Endpoint.RUN_SSE:
            assert order[index + 1] is Endpoint.STATE  # the turn ended silent: look
    confirmations = [text for text in said(world) if text.startswith("Done. Timeline")]
    assert len(confirmations) == len(INSTRUCTIONS)
    assert record.warnings == []


@pytest.mark.parametrize(
    ("fault", "legacy", "outcome"),
    [
        (Fault.ERROR_FRAME, False, "error_frame"),
        (Fault.ERROR_FRAME, True, "error_frame"),  # {"error": "... "edit_timeline" ..."}
        (Fault.MODEL_ERROR, False, "model_error"),
    ],
    ids=["error-frame-json", "error-frame-legacy", "model-error-event"],
)
async def test_an_error_in_the_stream_fails_the_edit_without_sending_it_again(
    world: World, fault: Fault, legacy: bool, outcome: str
) -> None:
    variants(world, legacy_error_frame=legacy)
    world.fake.faults.next(fault, Endpoint.RUN_SSE, message='tool "edit_timeline" broke')

    record = await world.run()

    assert record.state is JobState.FAILED
    assert "edit_timeline" in (record.error or "")
    report = world.error_report()
    assert report["step"] == "editing"
    assert "edit_timeline" in report["error"]
    assert world.sent() == [INSTRUCTIONS[0]]  # sent once, never again
    (session_id,) = world.session_ids()
    assert [item.outcome for item in world.fake.books.instructions[session_id]] == [outcome]
    assert world.fake.books.accepted_renders() == []
    world.assert_no_token_leaks()


async def test_a_stream_dropped_after_the_edit_landed_is_confirmed_not_resent(
    world: World,
) -> None:
    world.fake.faults.next(Fault.DROP_STREAM, Endpoint.RUN_SSE, after_events=2)

    record = await world.run()

    assert_done(world, record)
    assert world.sent() == list(INSTRUCTIONS)  # each once
    (session_id,) = world.session_ids()
    outcomes = [item.outcome for item in world.fake.books.instructions[session_id]]
    assert outcomes == ["dropped", "applied"]
    assert world.fake.books.applied_instructions(session_id) == list(INSTRUCTIONS)
    assert world.events("edit.stream_broken") and world.events("edit.confirmed")
    assert 2.0 in world.sleeps.delays  # waited before reading the state


# ------------------------------------------------------------------ 4. the render


@pytest.mark.parametrize("shape", list(RenderShape))
async def test_every_poll_shape_gets_the_render_downloaded(
    world: World, shape: RenderShape
) -> None:
    variants(world, render_shape=shape, render_polls=5)

    record = await world.run()

    assert_done(world, record)
    (render_id,) = world.fake.books.accepted_renders()
    assert world.fake.books.polls[render_id] >= 5


@pytest.mark.parametrize(
    ("completed_url", "form"),
    [
        (CompletedUrl.LATER, DownloadForm.BYTES),
        (CompletedUrl.DOWNLOAD_ONLY, DownloadForm.BYTES),
        (CompletedUrl.DOWNLOAD_ONLY, DownloadForm.JSON),
    ],
    ids=["url-later", "download-bytes", "download-json"],
)
async def test_a_render_completed_without_a_url_is_still_downloaded(
    world: World, completed_url: CompletedUrl, form: DownloadForm
) -> None:
    variants(world, completed_url=completed_url, download_form=form, url_delay_polls=2)

    record = await world.run()

    assert_done(world, record)
    books = world.fake.books
    if completed_url is CompletedUrl.LATER:
        assert world.requests(Endpoint.DOWNLOAD) == 0  # the link came with a later poll
    else:
        assert world.requests(Endpoint.DOWNLOAD) >= 1
    if form is DownloadForm.JSON:
        (files,) = books.requests_to(Endpoint.FILES)
        assert not files.has_token  # the link from the JSON is fetched without the token
    assert len(books.accepted_renders()) == 1


@pytest.mark.parametrize("where", [Endpoint.RENDER_SUBMIT, Endpoint.RENDER_POLL])
async def test_a_failed_render_is_submitted_once_more_under_a_new_id(
    world: World, where: Endpoint
) -> None:
    world.fake.faults.next(Fault.RENDER_FAILED, where, message="Lambda out of memory")

    record = await world.run()

    assert_done(world, record)
    assert world.fake.books.accepted_renders() == [
        f"render_{record.id}_1",
        f"render_{record.id}_2",
    ]
    assert world.events("render.failed")
    assert_each_instruction_once(world)


async def test_a_render_failing_twice_fails_the_job(world: World) -> None:
    world.fake.faults.next(Fault.RENDER_FAILED, Endpoint.RENDER_SUBMIT, times=2)

    record = await world.run()

    assert record.state is JobState.FAILED
    assert "render failed" in (record.error or "")
    assert len(world.fake.books.accepted_renders()) == 2
    world.assert_no_token_leaks()


async def test_a_video_link_answering_json_is_an_error_not_a_corrupt_output(
    world: World,
) -> None:
    variants(world, files_as_json=True)

    record = await world.run()

    assert record.state is JobState.FAILED
    assert record.retryable is True
    assert "JSON" in (record.error or "")
    assert list(world.rule.outbox.iterdir()) == []  # no output, not even a hidden part
    assert world.requests(Endpoint.FILES) >= 2  # retried (links expire)
    assert len(world.fake.books.accepted_renders()) == 1
    world.assert_no_token_leaks()


# ------------------------------------------------------------------ 5. resume


@pytest.mark.parametrize(
    "recorded", [True, False], ids=["render-in-ledger", "submitted-but-not-recorded"]
)
async def test_a_restart_while_polling_polls_the_same_render_and_repeats_nothing(
    world: World, recorded: bool
) -> None:
    variants(world, render_polls=6)
    job_id = world.drop()
    world.sleeps.hold = lambda delay: delay == POLL_FIRST  # stop after the first poll
    task = asyncio.create_task(world.pipeline().run(job_id, world.rule))
    await asyncio.wait_for(world.sleeps.held.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    interrupted = world.ledger.get(job_id)
    assert interrupted.state is JobState.EXPORTING
    assert interrupted.render is not None
    render_id = interrupted.render["id"]
    assert world.fake.books.polls == {render_id: 1}
    if not recorded:  # killed between the submit and the ledger write: found by its id
        world.ledger.update(job_id, render=None)
    requests_before = len(world.fake.books.requests)

    world.sleeps.hold = lambda delay: False
    record = await world.pipeline(world.engine()).run(job_id, world.rule)  # a new daemon

    assert_done(world, record)
    after = {request.endpoint for request in world.fake.books.requests[requests_before:]}
    if recorded:
        assert after <= {Endpoint.RENDER_POLL, Endpoint.FILES}
    else:  # the draft read again, and render ids probed until one is unknown
        assert after <= {Endpoint.STATE, Endpoint.RENDER_POLL, Endpoint.FILES}
    assert set(world.fake.books.polls) == {render_id}  # no other render was ever polled
    assert world.fake.books.polls[render_id] > 1
    assert world.fake.books.accepted_renders() == [render_id]
    assert len(world.session_ids()) == 1 and world.uploads() == 1
    assert_each_instruction_once(world)


async def test_a_restart_mid_edit_reads_the_state_and_does_not_send_the_instruction_again(
    world: World,
) -> None:
    job_id = world.drop()
    # the instruction lands (and is charged) at once; its stream stays silent a while
    world.fake.faults.next(Fault.STALL, Endpoint.RUN_SSE, delay=30, heartbeats=0)
    task = asyncio.create_task(world.pipeline().run(job_id, world.rule))
    await eventually(lambda: bool(world.sent()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    interrupted = world.ledger.get(job_id)
    assert interrupted.state is JobState.EDITING
    assert (interrupted.edits_done, interrupted.edit_sent) == (0, 0)

    record = await world.pipeline(world.engine()).run(job_id, world.rule)  # a new daemon

    assert_done(world, record)
    assert world.sent() == list(INSTRUCTIONS)  # the first one was not sent again
    assert world.events("edit.confirmed_after_restart")
    assert len(world.session_ids()) == 1 and world.uploads() == 1


async def test_the_stages_and_percents_of_a_cloud_job_are_reported(world: World) -> None:
    heard: list[tuple[str, float | None]] = []
    engine = world.engine()
    pipeline = Pipeline(
        engine,
        world.ledger,
        state_dir=world.state_dir,
        sleep=world.sleeps,
        observer=lambda stage, percent: heard.append((stage, percent)),
    )

    record = await world.run(pipeline)

    assert_done(world, record)
    stages = list(dict.fromkeys(stage for stage, _ in heard))
    assert stages == ["uploading", "editing", "rendering", "downloading", "verifying"]
    for stage in ("uploading", "downloading"):
        percents = [percent for name, percent in heard if name == stage and percent is not None]
        assert percents and percents == sorted(percents) and percents[-1] == 100.0, heard
    polled = [percent for name, percent in heard if name == "rendering" and percent is not None]
    assert polled, heard  # the service's own render progress, from the polls
    assert (world.ledger.get(record.id).stage, world.ledger.get(record.id).percent) == (None, None)
