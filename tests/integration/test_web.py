"""The web page served inside a running daemon (scripted engine, real folders, real
SQLite, real HTTP on 127.0.0.1): its JSON is `status --json` and `jobs --json`; its
changes are POSTs from this site only; a token, when set, guards all of it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from structlog.testing import capture_logs

from nemowatch import cli
from nemowatch.config import Config, HttpSettings, Rule
from nemowatch.daemon import Daemon
from nemowatch.daemon.companions import Companion
from nemowatch.engines.base import Credits
from nemowatch.errors import MediaError
from nemowatch.ledger import JobState
from nemowatch.metrics import Metrics
from nemowatch.web import WebPage
from nemowatch.web.pictures import source_of
from tests.e2e.harness import drop
from tests.fakes.scripted_engine import ScriptedEngine
from tests.media import Clips

TOKEN = "s3cret-token-for-tests-0123456789"


async def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


class Costly(ScriptedEngine):
    """A scripted engine with a credit balance, as the nemo engine has."""

    async def credits(self) -> Credits | None:
        return Credits(available=42.0, frozen=3.0, total=100.0)


class Fixed:
    """A metrics source that says the same thing each time."""

    def exposition(self) -> tuple[bytes, str]:
        return b"nemowatch_jobs_total 3\n", "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Served:
    daemon: Daemon
    engine: ScriptedEngine
    rule: Rule
    client: httpx.AsyncClient
    base: str
    config_file: Path
    running: asyncio.Task[int]

    def csrf(self, html: str) -> str:
        found = re.search(r"name=csrf value=([0-9a-f]+)", html)
        assert found is not None, html
        return found[1]

    async def page_csrf(self) -> str:
        return self.csrf((await self.client.get("/")).text)


@asynccontextmanager
async def served(
    tmp_path: Path,
    clips: Clips,
    http: HttpSettings,
    *,
    metrics: object = None,
    costly: bool = False,
) -> AsyncIterator[Served]:
    rule = Rule(name="clips", inbox=tmp_path / "in", outbox=tmp_path / "out", settle_seconds=0.1)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"state_dir: {tmp_path / 'state'}\nrules:\n  - name: clips\n"
        f"    inbox: {rule.inbox}\n    outbox: {rule.outbox}\n    settle_seconds: 0.1\n"
    )
    config = Config(state_dir=tmp_path / "state", rules=(rule,), http=http, source=config_file)

    async def no_sleep(seconds: float) -> None:
        return None

    engine = (Costly if costly else ScriptedEngine)(clips.basic, 3.0, sleep=no_sleep)
    page = WebPage(http, metrics)  # type: ignore[arg-type]
    heard = [metrics] if isinstance(metrics, Companion) else []  # a Metrics hears the jobs
    daemon = Daemon(config, engine=engine, companions=[page, *heard])
    running = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(20):
            await page.bound.wait()
        base = f"http://127.0.0.1:{page.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            yield Served(daemon, engine, rule, client, base, config_file, running)
    finally:
        daemon.stop()
        async with asyncio.timeout(20):
            await running


LOOPBACK = HttpSettings(listen="127.0.0.1:0")


async def test_the_api_says_what_status_and_jobs_say(tmp_path: Path, clips: Clips) -> None:
    async with served(tmp_path, clips, LOOPBACK) as web:
        drop(web.rule.inbox / "a.mp4", clips.basic)
        await wait_until(lambda: web.daemon.ledger.jobs(JobState.DONE))
        api_status = (await web.client.get("/api/status")).json()
        api_jobs = (await web.client.get("/api/jobs")).json()
        for command, api in (("status", api_status), ("jobs", api_jobs)):
            out = StringIO()
            with redirect_stdout(out):
                assert cli.main([command, "--json", "--config", str(web.config_file)]) == 0
            assert json.loads(out.getvalue()) == api, command
        assert api_status["done"] == 1 and api_status["daemon"]["running"]
        [job] = api_jobs
        detail = (await web.client.get(f"/api/jobs/{job['id']}")).json()
        assert detail["state"] == "done"
        assert [step["to"] for step in detail["history"]][-1] == "done"
        page = (await web.client.get("/")).text
        assert "a.mp4" in page and "clips" in page
        overview = (await web.client.get("/api/overview")).json()
        assert (
            overview["inboxes"][0]["rule"] == "clips" and overview["recent"][0]["state"] == "done"
        )
        job_page = await web.client.get(f"/jobs/{job['id']}")
        assert job_page.status_code == 200 and "History" in job_page.text


async def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(
    tmp_path: Path, clips: Clips
) -> None:
    async with served(tmp_path, clips, LOOPBACK) as web:
        csrf = await web.page_csrf()
        refused = [
            await web.client.post("/api/pause"),
            await web.client.post("/api/pause", data={"csrf": "0" * 64}),
            await web.client.post(
                "/api/pause", data={"csrf": csrf}, headers={"origin": "https://evil.example"}
            ),
            await web.client.post(
                "/api/pause", data={"csrf": csrf}, headers={"sec-fetch-site": "cross-site"}
            ),
            await web.client.post(
                "/actions/pause", data={"csrf": csrf}, headers={"referer": "http://evil/x"}
            ),
        ]
        assert [response.status_code for response in refused] == [403] * 5
        assert not web.daemon.ledger.control().paused
        assert (await web.client.get("/api/pause")).status_code == 405  # changes: POST only
        done = await web.client.post(
            "/actions/pause", data={"csrf": csrf}, headers={"origin": web.base}
        )
        assert done.status_code == 303
        await wait_until(lambda: web.daemon.pauses.held)
        # the page answers to this machine's names only (DNS rebinding)
        assert (await web.client.get("/", headers={"host": "evil.example"})).status_code == 421


async def test_a_paused_rule_takes_nothing_until_resumed_and_a_failed_job_is_retried(
    tmp_path: Path, clips: Clips
) -> None:
    async with served(tmp_path, clips, LOOPBACK) as web:
        csrf = await web.page_csrf()
        paused = await web.client.post("/api/pause", data={"csrf": csrf, "rule": "clips"})
        assert paused.json() == {"paused": True, "rule": "clips"}
        await wait_until(lambda: "clips" in web.daemon.pauses.rules_paused)
        drop(web.rule.inbox / "b.mp4", clips.basic)
        await asyncio.sleep(1.0)  # settled many times over: it is not taken
        assert web.daemon.ledger.jobs() == []
        overview = (await web.client.get("/api/overview")).json()
        assert overview["inboxes"][0] | {"inbox": ""} == {
            "rule": "clips",
            "inbox": "",
            "engine": "local",
            "paused": True,
            "paused_why": "rule paused",
            "rule_paused": True,
            "waiting": 1,
        }
        web.engine.cue("upload", MediaError("the file is damaged", hint="export it again"))
        resumed = await web.client.post(
            "/api/resume", json={"rule": "clips"}, headers={"x-csrf-token": csrf}
        )
        assert resumed.status_code == 200
        await wait_until(lambda: web.daemon.ledger.jobs(JobState.FAILED))
        [failed] = web.daemon.ledger.jobs(JobState.FAILED)
        page = (await web.client.get("/live")).text
        assert "the file is damaged" in page and "export it again" in page
        retried = await web.client.post(f"/api/jobs/{failed.id}/retry", data={"csrf": csrf})
        assert retried.json()["retried"] == failed.id
        await wait_until(lambda: web.daemon.ledger.jobs(JobState.DONE))
        again = await web.client.post(f"/api/jobs/{failed.id}/retry", data={"csrf": csrf})
        assert again.status_code == 409 and "already retried" in again.json()["error"]
        for unknown in ("0123456789ab", "talk.mp4"):  # ids only: a name is no job here
            missing = await web.client.post(f"/api/jobs/{unknown}/retry", data={"csrf": csrf})
            assert missing.status_code == 409 and "no job" in missing.json()["error"]


async def test_a_token_guards_every_page_and_the_login_form_sets_a_strict_cookie(
    tmp_path: Path, clips: Clips
) -> None:
    http = HttpSettings(listen="127.0.0.1:0", token=SecretStr(TOKEN))
    with capture_logs() as logs:
        await guarded_site(tmp_path, clips, http)
    assert "web.login_failed" in [entry["event"] for entry in logs]
    assert TOKEN not in repr(logs)  # not even the failed guess or the bearer requests


async def guarded_site(tmp_path: Path, clips: Clips, http: HttpSettings) -> None:
    async with served(tmp_path, clips, http, metrics=Fixed()) as web:
        assert (await web.client.get("/api/status")).status_code == 401
        assert (await web.client.get("/metrics")).status_code == 401
        home = await web.client.get("/")
        assert home.status_code == 303 and home.headers["location"].startswith("/login")
        bearer = {"authorization": f"Bearer {TOKEN}"}
        # behind a login, any name may be asked for (a reverse proxy's public one)
        proxied = await web.client.get("/api/status", headers={**bearer, "host": "nas.example"})
        assert proxied.status_code == 200
        metrics = await web.client.get("/metrics", headers=bearer)
        assert metrics.text == "nemowatch_jobs_total 3\n"
        # the bearer header needs no CSRF token: browsers never send it by themselves
        assert (await web.client.post("/api/pause", headers=bearer)).status_code == 200
        login = await web.client.get("/login")
        csrf = web.csrf(login.text)
        wrong = await web.client.post("/login", data={"csrf": csrf, "secret": "guess"})
        assert wrong.status_code == 403 and "nemowatch_session" not in wrong.headers.get(
            "set-cookie", ""
        )
        right = await web.client.post("/login", data={"csrf": csrf, "secret": TOKEN, "next": "/"})
        assert right.status_code == 303
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN not in cookie
        page = await web.client.get("/")  # the client keeps the cookie
        assert page.status_code == 200 and TOKEN not in page.text
        assert (await web.client.post("/api/resume")).status_code == 403  # cookie, no CSRF


async def test_the_page_shows_the_engines_credits(tmp_path: Path, clips: Clips) -> None:
    async with served(tmp_path, clips, LOOPBACK, costly=True) as web:
        assert "NemoVideo credits: <b>42</b> of 100 (frozen 3)" in (await web.client.get("/")).text
        overview = (await web.client.get("/api/overview")).json()
        assert overview["credits"] == {"available": 42.0, "frozen": 3.0, "total": 100.0}


async def test_a_jobs_page_shows_its_timeline_and_thumbnails(tmp_path: Path, clips: Clips) -> None:
    async with served(tmp_path, clips, LOOPBACK) as web:
        drop(web.rule.inbox / "a.mp4", clips.basic)
        # done, and its source archived (the ledger records where a moment after done)
        await wait_until(
            lambda: [job for job in web.daemon.ledger.jobs(JobState.DONE) if job.disposed]
        )
        [job] = web.daemon.ledger.jobs(JobState.DONE)
        page = (await web.client.get(f"/jobs/{job.id}")).text
        assert f"/jobs/{job.id}/timeline.svg" in page and f"/jobs/{job.id}/thumbnails" in page
        svg = await web.client.get(f"/jobs/{job.id}/timeline.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert "<title>a.mp4: " in svg.text  # the name it was dropped as
        shapes = ElementTree.fromstring(svg.text).iter("{http://www.w3.org/2000/svg}rect")
        [output] = [shape for shape in shapes if shape.get("class") == "output"]
        assert float(output.get("data-end", "0")) == pytest.approx(3.0)  # the draft's 3 s
        thumbs = await web.client.get(f"/jobs/{job.id}/thumbnails")
        assert thumbs.headers["content-type"] == "image/jpeg" and thumbs.content[:2] == b"\xff\xd8"
        # the waveform is read from the source where it is now: archived under done/
        archived = source_of(job)
        assert archived is not None and archived.parent.parent.name == "done"


async def test_a_jobs_page_without_its_output_goes_without_thumbnails(
    tmp_path: Path, clips: Clips
) -> None:
    async with served(tmp_path, clips, LOOPBACK) as web:
        drop(web.rule.inbox / "a.mp4", clips.basic)
        await wait_until(lambda: web.daemon.ledger.jobs(JobState.DONE))
        [job] = web.daemon.ledger.jobs(JobState.DONE)
        assert job.output is not None
        job.output.unlink()  # someone moved the output away
        page = await web.client.get(f"/jobs/{job.id}")
        assert page.status_code == 200 and "/thumbnails" not in page.text
        assert (await web.client.get(f"/jobs/{job.id}/thumbnails")).status_code == 404


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_the_pages_metrics_parse_and_move_as_jobs_finish(
    tmp_path: Path, clips: Clips
) -> None:
    async with served(tmp_path, clips, LOOPBACK, metrics=Metrics()) as web:
        before = await web.client.get("/metrics")
        assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
        assert samples(before.text, "nemowatch_jobs_ended_total") == {}
        drop(web.rule.inbox / "a.mp4", clips.basic)
        await wait_until(lambda: web.daemon.ledger.jobs(JobState.DONE))
        # companions hear of a job's end once the pipeline is through with it (after its
        # source is archived), a moment after the ledger says done
        await wait_until(lambda: _ended(web) == {(("rule", "clips"), ("state", "done")): 1.0})
        after = (await web.client.get("/metrics")).text
        ended = samples(after, "nemowatch_jobs_ended_total")
        assert ended == {(("rule", "clips"), ("state", "done")): 1.0}
        assert samples(after, "nemowatch_jobs_claimed_total") == {(("rule", "clips"),): 1.0}
        size = clips.basic.stat().st_size  # the scripted engine's render is the clip itself
        await wait_until(  # outputs are sized on a thread, a moment after the job's end
            lambda: _bytes_out(web) == {(("rule", "clips"),): size}
        )


def _ended(web: Served) -> dict[tuple[tuple[str, str], ...], float]:
    metrics = web.daemon.companions.members[1]
    assert isinstance(metrics, Metrics)
    return samples(metrics.exposition()[0].decode(), "nemowatch_jobs_ended_total")


def _bytes_out(web: Served) -> dict[tuple[tuple[str, str], ...], float]:
    page = web.daemon.companions.members[1]
    assert isinstance(page, Metrics)
    return samples(page.exposition()[0].decode(), "nemowatch_output_bytes_total")


async def test_sigterm_stays_the_daemons_and_the_page_stops_with_it(
    tmp_path: Path, clips: Clips
) -> None:
    async with served(tmp_path, clips, LOOPBACK) as web:
        assert (await web.client.get("/metrics")).status_code == 404  # no metrics source
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's handler would only stop the page
        async with asyncio.timeout(10):
            assert await web.running == 0  # the daemon's own graceful stop
        with pytest.raises(httpx.ConnectError):  # and the page stopped with it
            await web.client.get("/")
