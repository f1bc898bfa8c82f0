"""The routes: the page, a job's page, the JSON API, the actions, the login, /metrics.

GET  /                      the page (its live part: GET /live, every second)
GET  /jobs/{id}             one job: details, history, timeline picture, thumbnails
GET  /api/status            what `nemowatch status --json` prints
GET  /api/jobs              what `nemowatch jobs --json` prints (?state= &rule= &limit=)
GET  /api/jobs/{id}         one job, its hint and its history
GET  /api/overview          the page's data: inboxes, running, queued, recent, credits
POST /api/jobs/{id}/retry   retry a failed job          (/actions/...: the same, for
POST /api/pause, /api/resume   all, or ?rule=NAME        forms, answering 303 to /)
GET  /metrics               Prometheus text, when a metrics source was given
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from nemowatch import operator, views
from nemowatch.daemon.companions import Host
from nemowatch.errors import NemowatchError
from nemowatch.ledger import JobRecord
from nemowatch.rulepause import pause_rule
from nemowatch.web import page, pictures
from nemowatch.web.data import Reader
from nemowatch.web.guard import COOKIE, Guard

log = structlog.get_logger("nemowatch.web")

MAX_FORM = 4096  # bytes of a form or JSON body: the actions take a few short fields
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
STATIC = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}


class MetricsSource(Protocol):
    """What /metrics serves (nemowatch.metrics.Metrics): the body and its content type."""

    def exposition(self) -> tuple[bytes, str]: ...


Handler = Callable[[Request], Awaitable[Response]]


class ActionRefused(NemowatchError):
    """An action that cannot be done as asked (no such rule, a job not failed)."""


def make_app(host: Host, guard: Guard, metrics: MetricsSource | None = None) -> Starlette:
    reader = Reader(host)
    images = pictures.Pictures()

    def guarded(handler: Handler, *, api: bool = False) -> Handler:
        """`handler` behind the host check and the login; POSTs also behind the
        same-origin and CSRF checks (a refusal is 403)."""

        async def endpoint(request: Request) -> Response:
            if not guard.host_allowed(request):
                return _refused(api, 421, "this page answers to this machine's name only")
            if request.method == "POST":
                form = await _form(request)
                if form is None or not guard.change_allowed(request, form):
                    return _refused(
                        api, 403, "refused: not from this page (reload it and try again)"
                    )
                request.state.form = form
            elif not guard.logged_in(request):
                if api:
                    return JSONResponse(
                        {"error": "log in: send the header Authorization: Bearer TOKEN"},
                        status_code=401,
                        headers={"www-authenticate": "Bearer"},
                    )
                return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            response = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        return endpoint

    async def home(request: Request) -> Response:
        return HTMLResponse(page.home(await reader.overview(), guard.csrf_token(request)))

    async def live(request: Request) -> Response:
        return HTMLResponse(page.live(await reader.overview(), guard.csrf_token(request)))

    def record_or_none(job_id: str) -> JobRecord | None:
        try:
            return operator.job_by_id(host.ledger, job_id)
        except NemowatchError:
            return None

    async def job(request: Request) -> Response:
        record = record_or_none(request.path_params["job_id"])
        if record is None:
            return HTMLResponse(page.message_page("No such job", "It is not in the ledger."), 404)
        html = page.job_page(
            record,
            host.ledger.history(record.id),
            reader.hint(record),
            guard.csrf_token(request),
            picture=images.can_draw(record),
            thumbnails=images.can_thumbnail(record),
        )
        return HTMLResponse(html)

    async def timeline(request: Request) -> Response:
        record = record_or_none(request.path_params["job_id"])
        svg = None if record is None else await images.timeline(record)
        if svg is None:
            return Response("no timeline for this job", 404, media_type="text/plain")
        return Response(svg, media_type="image/svg+xml")

    async def thumbnails(request: Request) -> Response:
        record = record_or_none(request.path_params["job_id"])
        found = None if record is None else await images.thumbnails(record)
        if found is None:
            return Response("no output to show", 404, media_type="text/plain")
        return Response(found[0], media_type=found[1])

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", 404, media_type="text/plain")
        text = (resources.files("nemowatch.web") / "static" / name).read_text(encoding="utf-8")
        return Response(text, media_type=STATIC[name])

    # -- the JSON API --------------------------------------------------------------------

    async def api_status(request: Request) -> Response:
        return JSONResponse(await reader.status(_int(request, "limit", 10)))

    async def api_jobs(request: Request) -> Response:
        states = None
        if "state" in request.query_params:
            try:
                states = operator.states_named(request.query_params["state"])
            except ValueError as error:
                return JSONResponse({"error": str(error)}, 400)
        records = host.ledger.jobs(
            states, limit=_int(request, "limit", 50) or None, rule=request.query_params.get("rule")
        )
        return JSONResponse(views.jobs_json(records))

    async def api_job(request: Request) -> Response:
        record = record_or_none(request.path_params["job_id"])
        if record is None:
            return JSONResponse({"error": "no such job"}, 404)
        history = [
            {"from": before, "to": after, "at": views.iso(at), "detail": detail}
            for before, after, at, detail in host.ledger.history(record.id)
        ]
        body = {**views.job_json(record), "hint": reader.hint(record), "history": history}
        return JSONResponse(body)

    async def api_overview(request: Request) -> Response:
        return JSONResponse((await reader.overview()).as_json())

    # -- actions: the same for the API (JSON) and the page's forms (303 back) -----------

    def retry(job_id: str) -> dict[str, Any]:
        record = operator.job_by_id(host.ledger, job_id)  # an id: never a path from a URL
        result = operator.retry_job(host.ledger, host.config, record)
        host.request_scan()
        log.info("web.retried", job_id=record.id, source=str(result.source))
        return {"retried": record.id, "source": str(result.source)}

    def pause(paused: bool, rule: str | None) -> dict[str, Any]:
        ledger = host.ledger
        if rule is None:
            ledger.set_paused(paused)
            if not paused:
                ledger.request_scan()  # what waited during the pause is taken now
        else:
            if rule not in [known.name for known in host.config.rules]:
                raise ActionRefused(f"no rule {rule!r}")
            pause_rule(ledger, rule, paused, time.time())
        host.request_scan()  # the daemon reads the control table now, not at its next round
        log.info("web.paused" if paused else "web.resumed", rule=rule)
        return {"paused": paused, "rule": rule}

    def action(do: Callable[[Request], dict[str, Any]], *, api: bool) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                result = do(request)
            except NemowatchError as error:
                body = {"error": str(error), "hint": error.hint}
                if api:
                    return JSONResponse(body, 409)
                return HTMLResponse(page.message_page("Not done", f"{error}"), 409)
            if api:
                return JSONResponse(result)
            return RedirectResponse("/", status_code=303)

        return handler

    def field(request: Request, name: str) -> str | None:
        value = request.state.form.get(name) or request.query_params.get(name)
        return str(value) if value else None

    def do_retry(request: Request) -> dict[str, Any]:
        return retry(request.path_params["job_id"])

    def do_pause(request: Request) -> dict[str, Any]:
        return pause(True, field(request, "rule"))

    def do_resume(request: Request) -> dict[str, Any]:
        return pause(False, field(request, "rule"))

    # -- login ---------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        next_path = _local_path(request.query_params.get("next", "/"))
        html = page.login_page(guard.csrf_token(request), next_path, failed=False)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    async def login(request: Request) -> Response:
        if not guard.host_allowed(request):
            return _refused(False, 421, "this page answers to this machine's name only")
        form = await _form(request)
        if form is None or not guard.same_origin(request):
            return _refused(False, 403, "refused: not from this page")
        next_path = _local_path(form.get("next", "/"))
        if not guard.login_required or not guard.accepts(form.get("secret", "")):
            await asyncio.sleep(1.0)  # a guess a second, at most, per connection
            log.warning("web.login_failed", client=request.client.host if request.client else "")
            html = page.login_page(guard.csrf_token(request), next_path, failed=True)
            return HTMLResponse(html, 403, headers=SECURITY_HEADERS)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            guard.session_cookie(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def metrics_endpoint(request: Request) -> Response:
        if metrics is None:
            return Response("no metrics here\n", 404, media_type="text/plain")
        body, content_type = metrics.exposition()
        return Response(body, headers={"content-type": content_type})

    routes = [
        Route("/", guarded(home)),
        Route("/live", guarded(live)),
        Route("/jobs/{job_id}", guarded(job)),
        Route("/jobs/{job_id}/timeline.svg", guarded(timeline)),
        Route("/jobs/{job_id}/thumbnails", guarded(thumbnails)),
        Route("/static/{name}", static),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/metrics", guarded(metrics_endpoint, api=True)),
        Route("/api/status", guarded(api_status, api=True)),
        Route("/api/overview", guarded(api_overview, api=True)),
        Route("/api/jobs", guarded(api_jobs, api=True)),
        Route("/api/jobs/{job_id}", guarded(api_job, api=True)),
    ]
    for prefix, api in (("/api", True), ("/actions", False)):
        routes += [
            Route(f"{prefix}/pause", guarded(action(do_pause, api=api), api=api), methods=["POST"]),
            Route(
                f"{prefix}/resume", guarded(action(do_resume, api=api), api=api), methods=["POST"]
            ),
        ]
    routes += [
        Route(
            "/api/jobs/{job_id}/retry",
            guarded(action(do_retry, api=True), api=True),
            methods=["POST"],
        ),
        Route(
            "/actions/retry/{job_id}",
            guarded(action(do_retry, api=False)),
            methods=["POST"],
        ),
    ]
    return Starlette(routes=routes)


async def _form(request: Request) -> dict[str, str] | None:
    """The fields of a urlencoded form or a JSON object (None: too big or not readable).
    Read by hand: Starlette's form parser needs python-multipart, for two short fields."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if kind == "application/json" and text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return {str(key): str(value) for key, value in data.items() if value is not None}
    return dict(parse_qsl(text))


def _refused(api: bool, status: int, text: str) -> Response:
    if api:
        return JSONResponse({"error": text}, status)
    return HTMLResponse(page.message_page("Refused", text), status, headers=SECURITY_HEADERS)


def _int(request: Request, name: str, default: int) -> int:
    try:
        return max(0, int(request.query_params.get(name, default)))
    except ValueError:
        return default


def _local_path(value: str) -> str:
    """Where to go after logging in: a path of this site only (never //elsewhere)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
