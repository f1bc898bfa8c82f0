"""Export: submit a render, poll it, download the result.

Render ids are deterministic, `render_<job_id>_<n>`, so a daemon that crashed between the
submit and the ledger write finds its render again instead of starting a second one:
`export` first polls `render_<job>_1, _2, ...` (up to the first id the API does not know)
and adopts the newest one still alive; otherwise it submits the next unused n. A
duplicate-id refusal means that id is taken: it is adopted when it is alive, else the next
n is tried.

Poll answers come in three shapes (`parse_status`, pure): `{"success","data":{"id",
"status","progress","outputUrl"}}`, `{"taskId","status","progress","output":{"url",...}}`,
and Remotion's `done`/`overallProgress`/`outputFile`/`fatalErrorEncountered`/`errors[]`.

The result's URL is fetched without the token (it may be a signed link on another host),
streamed to disk, its Content-Type checked (a JSON answer may hold the real `output.url`,
an HTML page is an error), and its size compared with what the server announced.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from nemowatch import progress
from nemowatch.engines.base import Render, RenderState, RenderStatus
from nemowatch.engines.nemo import errors
from nemowatch.engines.nemo.client import Authorized, CallKind, NemoClient
from nemowatch.engines.nemo.errors import UnexpectedReply
from nemowatch.engines.nemo.kept import NemoRenderProgress, NemoRenderState
from nemowatch.engines.nemo.replies import RenderReply, parse
from nemowatch.errors import EngineError, TransientError

log = structlog.get_logger("nemowatch.nemo")

SUBMIT_PATH = "/api/render/proxy/lambda"
MAX_RENDER_NUMBER = 20  # how far `export` looks for (and numbers) one job's renders
URLLESS_POLLS = 3  # `completed` polls without a URL before trying /download
CHUNK_SIZE = 1 << 20  # bytes per write while downloading
MAX_INCOMPLETE = 3  # downloads that end early before the job fails (each one logged)
VIDEO_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")
_HTML_START = re.compile(rb"^\s*<(!doctype|html|head|body)", re.IGNORECASE)

COMPLETED_WORDS = frozenset({"completed", "complete", "done", "success", "succeeded", "finished"})
FAILED_WORDS = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled"})


def render_id(job_id: str, number: int) -> str:
    return f"render_{job_id}_{number}"


def poll_path(render: str) -> str:
    return f"{SUBMIT_PATH}/{render}"


def download_path(render: str) -> str:
    return f"/api/render/proxy/{render}/download"


def submit_body(
    render: str, session_id: str, draft: dict[str, Any], *, format: str, quality: str
) -> dict[str, Any]:
    return {
        "id": render,
        "sessionId": session_id,
        "draft": draft,
        "output": {"format": format, "quality": quality},
    }


@dataclass(frozen=True)
class Polled:
    """One poll answer, whatever its shape."""

    state: RenderState
    progress: float | None = None
    url: str | None = None
    error: str | None = None
    size: int | None = None
    duration: float | None = None
    session_id: str | None = None


def parse_status(data: Any) -> Polled:
    """A poll answer (its envelope already unwrapped) in one shape. Pure."""
    reply = parse(RenderReply, data, endpoint="render status")
    common: dict[str, Any] = {
        "progress": reply.percent,
        "url": reply.link,
        "size": reply.size,
        "duration": reply.duration,
        "session_id": reply.session_id,
    }
    status = (reply.status or "").strip().lower()
    fatal = reply.fatal_problems
    if status in FAILED_WORDS or reply.fatal_error is True or fatal:
        message = reply.error_text or "; ".join(fatal) or "the render failed"
        return Polled(RenderState.FAILED, error=message, **common)
    if status in COMPLETED_WORDS or reply.done is True:
        return Polled(RenderState.COMPLETED, **common)
    # pending, processing, queued, rendering, anything new: still running
    return Polled(RenderState.PROCESSING, **common)


def output_url_in(body: Any) -> str | None:
    """`output.url` (or a near variant) in a JSON answer of /download or the video URL."""
    for candidate in (errors.payload(body), body):
        if isinstance(candidate, Mapping):
            with contextlib.suppress(UnexpectedReply):
                link = parse(RenderReply, candidate, endpoint="render download").link
                if link:
                    return link
    return None


class Renders:
    """Export, poll and download for one client. Remembers, in memory only, the last URL
    seen per render and how often a render was `completed` without one."""

    def __init__(self, client: NemoClient) -> None:
        self._client = client
        self._urls: dict[str, str] = {}
        self._urlless: dict[str, int] = {}
        self._sizes: dict[str, int] = {}

    # ------------------------------------------------------------------ submit

    async def export(
        self,
        *,
        job_id: str,
        session_id: str,
        draft: dict[str, Any],
        format: str,
        quality: str,
    ) -> Render:
        """The job's render for this draft: one submitted before (and alive), or a new one."""
        last, alive = await self._find_submitted(job_id, session_id)

        def kept(number: int) -> Render:
            state = NemoRenderState(
                job_id=job_id, session_id=session_id, format=format, quality=quality, n=number
            )
            return Render(render_id(job_id, number), state.dump())

        if alive is not None:
            log.info("render.adopted", render_id=render_id(job_id, alive))
            return kept(alive)
        number = last + 1
        while number <= MAX_RENDER_NUMBER:
            candidate = render_id(job_id, number)
            try:
                await self._submit(candidate, session_id, draft, format=format, quality=quality)
            except errors.DuplicateId:
                # taken: by this job's own earlier submit (a lost answer), or something else
                polled = await self._probe(candidate)
                if polled is not None and self._ours(polled, session_id):
                    log.info("render.adopted", render_id=candidate)
                    return kept(number)
                log.warning("render.id_taken", render_id=candidate)
                number += 1
                continue
            log.debug("render.accepted", render_id=candidate)  # the pipeline logs render.submitted
            return kept(number)
        raise EngineError(
            f"gave up numbering renders for job {job_id} after {MAX_RENDER_NUMBER}", retryable=False
        )

    async def _submit(
        self, render: str, session_id: str, draft: dict[str, Any], *, format: str, quality: str
    ) -> None:
        await self._client.request_json(
            CallKind.RENDER_SUBMIT,
            "POST",
            SUBMIT_PATH,
            what="submit the render",
            json=submit_body(render, session_id, draft, format=format, quality=quality),
        )

    async def _find_submitted(self, job_id: str, session_id: str) -> tuple[int, int | None]:
        """(the highest n the API knows, the n to adopt or None). Stops at the first
        unknown id. Adopts the newest render if it is alive and of this session; a failed
        newest one, or one of another session, is not adopted."""
        last = 0
        newest: Polled | None = None
        for number in range(1, MAX_RENDER_NUMBER + 1):
            polled = await self._probe(render_id(job_id, number))
            if polled is None:
                break
            last, newest = number, polled
        if (
            newest is None
            or newest.state is RenderState.FAILED
            or not self._ours(newest, session_id)
        ):
            return last, None
        return last, last

    @staticmethod
    def _ours(polled: Polled, session_id: str) -> bool:
        return polled.session_id is None or polled.session_id == session_id

    async def _probe(self, render: str) -> Polled | None:
        """The render's status, or None when the API does not know the id. Any refusal
        counts as unknown: the forms of "no such render" are not published, and the worst
        case is one render more (exports are free), never a lost one."""
        try:
            return await self._poll_raw(render)
        except EngineError as error:  # NotFound, or a refusal in an unpublished form
            log.debug("render.probe_unknown", render_id=render, error=str(error))
            return None

    # ------------------------------------------------------------------ poll

    async def _poll_raw(self, render: str, kind: CallKind = CallKind.RENDER_POLL) -> Polled:
        data = await self._client.request_json(
            kind, "GET", poll_path(render), what="poll the render"
        )
        polled = parse_status(data)
        if polled.url:
            self._urls[render] = polled.url
        if polled.size:
            self._sizes[render] = polled.size
        return polled

    async def poll(self, render: Render) -> RenderStatus:
        try:
            polled = await self._poll_raw(render.id)
        except errors.NotFound:
            log.warning("render.unknown", render_id=render.id)
            return RenderStatus(RenderState.LOST, error="NemoVideo does not know this render")
        log.debug(
            "render.poll", render_id=render.id, state=polled.state.value, progress=polled.progress
        )
        download = None
        if polled.state is RenderState.COMPLETED and not polled.url:
            seen = self._urlless.get(render.id, 0) + 1
            self._urlless[render.id] = seen
            if seen <= URLLESS_POLLS:
                # the link often follows a poll or two later
                return RenderStatus(RenderState.PROCESSING, progress=polled.progress or 100.0)
            download = download_path(render.id)
        kept = NemoRenderProgress(url=polled.url, download=download)
        return RenderStatus(
            polled.state, progress=polled.progress, error=polled.error, data=kept.dump()
        )

    # ------------------------------------------------------------------ download

    async def download(self, render: Render, dest: Path) -> None:
        """The finished video at `dest`: a fresh link from a poll (links expire), else the
        /download endpoint; retried per the DOWNLOAD policy."""
        incomplete = 0
        async for attempt in self._client.retrying(CallKind.DOWNLOAD):
            with attempt:
                try:
                    await self._download_once(render, dest)
                except errors.Incomplete as error:
                    incomplete += 1
                    if incomplete >= MAX_INCOMPLETE:
                        raise EngineError(
                            f"the download of render {render.id} ended early"
                            f" {incomplete} times: {error}",
                            retryable=True,
                        ) from error
                    raise
        log.info("render.downloaded", render_id=render.id, bytes=dest.stat().st_size)
        for remembered in (self._urls, self._sizes, self._urlless):
            remembered.pop(render.id, None)  # done with it: not kept for the daemon's lifetime

    async def _download_once(self, render: Render, dest: Path) -> None:
        try:
            await self._fetch_fresh(render, dest)
        except errors.LinkRefused as refused:
            # links expire: a fresh one from a new poll, once; refused again, it fails now
            log.warning("download.link_refused", render_id=render.id, error=str(refused))
            try:
                await self._fetch_fresh(render, dest)
            except errors.LinkRefused as again:
                raise EngineError(
                    f"the download of render {render.id} failed: {again}, and so was a fresh link",
                    hint="the rendered video is no longer served; `nemowatch retry` renders"
                    " it again",
                    retryable=True,
                ) from again
        except BaseException:
            with contextlib.suppress(OSError):
                dest.unlink()
            raise

    async def _fetch_fresh(self, render: Render, dest: Path) -> None:
        """One try: a poll for the render's link (no retries of its own), then the video."""
        try:
            polled = await self._poll_raw(render.id, CallKind.DOWNLOAD_LINK)
        except errors.NotFound as error:
            raise EngineError(f"NemoVideo no longer knows render {render.id}") from error
        if polled.state is RenderState.FAILED:
            raise EngineError(f"the render failed: {polled.error}", retryable=True)
        url = polled.url or self._urls.get(render.id)
        expected = polled.size or self._sizes.get(render.id)
        try:
            if url:
                await self._fetch(url, dest, expected=expected, follow_json=True)
            else:
                await self._fetch_download_endpoint(render.id, dest, expected=expected)
        except BaseException:
            with contextlib.suppress(OSError):
                dest.unlink()
            raise

    async def _fetch_download_endpoint(
        self, render: str, dest: Path, *, expected: int | None
    ) -> None:
        """GET /api/render/proxy/<id>/download: the video itself, or JSON with output.url.
        An API endpoint, so it carries the token (httpx drops it on a cross-origin redirect)."""

        async def once(authorized: Authorized) -> str | None:
            call = self._client.describe("download the render", authorized)
            try:
                async with self._client.api.stream(
                    "GET",
                    download_path(render),
                    headers=dict(authorized.headers),
                    follow_redirects=True,
                ) as response:
                    if response.status_code >= 400 or _is_json(response):
                        await response.aread()
                        data = errors.check(response, call, now=self._client.now())
                        link = output_url_in(data) or output_url_in(
                            errors.decode_body(response.content)
                        )
                        if link is None:
                            raise UnexpectedReply(
                                "render download", "output.url", "is missing (and no video came)"
                            )
                        return link
                    await _save(response, dest, expected=expected, what=f"render {render}")
                    return None
            except httpx.HTTPError as error:
                raise errors.from_transport(error, call) from error

        link = await self._client.authorized(once)
        if link is not None:
            await self._fetch(link, dest, expected=expected, follow_json=False)

    async def _fetch(
        self, url: str, dest: Path, *, expected: int | None, follow_json: bool
    ) -> None:
        """A plain GET of the video's URL: no Authorization header, streamed to `dest`."""
        absolute = str(self._client.api.base_url.join(url))
        what = f"GET {httpx.URL(absolute).host}"
        call = errors.Call(what="download the video")
        try:
            async with self._client.plain.stream("GET", absolute) as response:
                if response.status_code >= 400:
                    retry_after = errors.parse_retry_after(response.headers.get("retry-after"))
                    raise errors.download_refused(
                        response.status_code, what, retry_after=retry_after
                    )
                if _is_json(response):
                    await response.aread()
                    link = output_url_in(errors.decode_body(response.content))
                    if link is None or not follow_json:
                        # an expired link answers JSON: a new poll brings a new one
                        raise TransientError(f"the video's link answered JSON, not video ({what})")
                    await self._fetch(link, dest, expected=expected, follow_json=False)
                    return
                await _save(response, dest, expected=expected, what=what)
        except httpx.HTTPError as error:
            raise errors.from_transport(error, call) from error


def _content_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def _is_json(response: httpx.Response) -> bool:
    kind = _content_type(response)
    return kind == "application/json" or kind.endswith("+json")


async def _save(response: httpx.Response, dest: Path, *, expected: int | None, what: str) -> None:
    """Stream a video response to `dest` in chunks, after checking that it is video."""
    kind = _content_type(response)
    if kind and not kind.startswith(VIDEO_TYPES):
        raise EngineError(
            f"expected a video from {what}, got {kind or 'no Content-Type'}", retryable=True
        )
    # a compressed body's Content-Length is not the size of the bytes it decodes to
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    announced = None if encoded else response.headers.get("content-length")
    total = int(announced) if announced and announced.strip().isdigit() else expected
    written = 0
    try:
        with dest.open("wb") as handle:
            async for chunk in _body(response, what):
                if written == 0 and _HTML_START.match(chunk):
                    raise EngineError(
                        f"expected a video from {what}, got an HTML page", retryable=True
                    )
                handle.write(chunk)
                written += len(chunk)
                if total:
                    progress.report("downloading", 100.0 * written / total)
    except OSError as error:
        raise EngineError(f"could not write {dest}: {error.strerror}", retryable=True) from error
    problem = size_problem(written, announced=announced)
    if problem:
        raise errors.Incomplete(f"the download from {what} is incomplete: {problem}")
    if expected and expected != written:
        # the render's reported size is informative only: some proxies report estimates
        log.warning("render.size_differs", reported=expected, downloaded=written)


async def _body(response: httpx.Response, what: str) -> AsyncIterator[bytes]:
    """The response's body in chunks; a connection cut before its end is `Incomplete`."""
    try:
        async for chunk in response.aiter_bytes(CHUNK_SIZE):
            yield chunk
    except (httpx.RemoteProtocolError, httpx.ReadError) as error:
        raise errors.Incomplete(
            f"the download from {what} ended early ({type(error).__name__})"
        ) from error


def size_problem(written: int, *, announced: str | None) -> str | None:
    """Why `written` bytes cannot be the whole video, or None. Pure."""
    if written == 0:
        return "it is empty"
    if announced and announced.strip().isdigit() and int(announced) != written:
        return f"{written} bytes of the {announced} announced"
    return None
