"""A small stateful stand-in for the NemoVideo API, served through `httpx.MockTransport`.

The unit tests of `nemowatch.engines.nemo` drive the real client code against it and
assert on its state (drafts, renders, tokens, requests seen), never on calls to mocks.
The full fake server on 127.0.0.1 (tests/fakes/) is for integration tests; this one is
deliberately tiny. Faults are queued per endpoint: `fake.fail("state", response_or_error)`
serves that answer (or raises that httpx error) instead of the next real one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from nemowatch.config import NemoSettings
from nemowatch.engines.nemo import NemoEngine

BASE_URL = "https://api.nemo.test"
FILES_HOST = "https://files.test"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64  # looks enough like an MP4
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # tokens the fake issues expire a week later
START_DRAFT = {"t": [{"tt": 0, "sg": [{"at": 0, "d": 12500}]}], "d": 12500, "m": {}}


class Sleeps:
    """A sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sse(event: dict[str, Any] | str) -> bytes:
    """One SSE frame as ADK writes it."""
    data = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def text_event(text: str, *, partial: bool = False, thought: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text}
    if thought:
        part["thought"] = True
    event: dict[str, Any] = {"author": "nemo_agent", "content": {"role": "model", "parts": [part]}}
    if partial:
        event["partial"] = True
    return event


def call_event(name: str = "edit_timeline") -> dict[str, Any]:
    return {
        "author": "nemo_agent",
        "content": {"parts": [{"functionCall": {"id": "c1", "name": name, "args": {"x": 1}}}]},
    }


def result_event(name: str = "edit_timeline") -> dict[str, Any]:
    return {
        "author": "nemo_agent",
        "content": {"parts": [{"functionResponse": {"id": "c1", "name": name, "response": {}}}]},
    }


@dataclass
class Turn:
    """What one POST /run_sse does. `chunks` may hold callables, run when reached (to move
    a fake clock while the stream is read)."""

    chunks: list[bytes | Callable[[], None]] = field(
        default_factory=lambda: [sse(call_event()), sse(result_event()), sse(text_event("Done."))]
    )
    apply: bool = True  # the instruction changes the draft
    drop_after: int | None = None  # raise ReadError after this many chunks


class _Stream(httpx.AsyncByteStream):
    def __init__(self, turn: Turn, request: httpx.Request) -> None:
        self.turn = turn
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.turn.chunks):
            if self.turn.drop_after is not None and index >= self.turn.drop_after:
                raise httpx.ReadError("connection reset by peer", request=self.request)
            if callable(chunk):
                chunk()
                continue
            yield chunk
        if self.turn.drop_after is not None and self.turn.drop_after >= len(self.turn.chunks):
            raise httpx.ReadError("connection reset by peer", request=self.request)


# a canned answer: a response, an httpx error to raise, or a function of the request
Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "ok", "data": data}


class FakeApi:
    """The endpoints of nemo-api.md, with just enough state to tell right from wrong."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.faults: dict[str, list[Answer]] = defaultdict(list)
        self.valid_tokens: set[str] = {"nmv_env_token_123456"}
        self.issued = 0
        self.token_clients: list[str] = []
        self.expires_at = "2030-01-08T00:00:00Z"
        self.auth_style = "code"  # "code": HTTP 200 with 1001; "http": HTTP 401
        self.refuse_all = False  # every token is refused, even a fresh one
        self.sessions: dict[str, dict[str, Any]] = {}
        self.turns: list[Turn] = []
        self.instructions: list[str] = []  # every instruction the server processed
        self.renders: dict[str, dict[str, Any]] = {}
        self.render_shape = "a"  # a, b or c (Remotion)
        self.polls_to_complete = 2
        self.urlless_polls = 0  # completed polls without a URL before it appears
        self.files: dict[str, tuple[bytes, str]] = {}
        self.file_requests: list[httpx.Request] = []
        self.download_form = "bytes"  # /download answers "bytes" or "json"
        self.credits = {"available": 90, "frozen": 10, "total": 100}

    # ------------------------------------------------------------------ helpers

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail(self, endpoint: str, *answers: Answer) -> None:
        self.faults[endpoint].extend(answers)

    def paths(self, method: str | None = None) -> list[str]:
        return [
            request.url.path
            for request in self.requests
            if method is None or request.method == method
        ]

    def count(self, endpoint: str) -> int:
        return sum(1 for request in self.requests if _endpoint(request) == endpoint)

    def new_session(self, draft: dict[str, Any] | None = None) -> str:
        session_id = str(1000 + len(self.sessions) + 1)
        self.sessions[session_id] = {"draft": draft}
        return session_id

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        endpoint = _endpoint(request)
        if self.faults[endpoint]:
            answer = self.faults[endpoint].pop(0)
            if isinstance(answer, Exception):
                raise answer
            if callable(answer):
                return answer(request)
            return answer
        if endpoint == "files":
            return self._files(request)
        if endpoint == "token":
            return self._token(request)
        refused = self._refuse_token(request)
        if refused is not None:
            return refused
        handler = getattr(self, f"_{endpoint}")
        response: httpx.Response = handler(request)
        return response

    def _refuse_token(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.valid_tokens and not self.refuse_all:
            return None
        if self.auth_style == "http":
            return httpx.Response(401, json={"detail": "Invalid or expired token"})
        return httpx.Response(200, json={"code": 1001, "message": "token expired", "data": None})

    def _token(self, request: httpx.Request) -> httpx.Response:
        client_id = request.headers.get("x-client-id")
        if not client_id:
            return httpx.Response(400, json={"detail": "X-Client-Id header required"})
        self.issued += 1
        self.token_clients.append(client_id)
        token = f"nmv_usr_secret{self.issued:04d}abcdef"
        self.valid_tokens.add(token)
        return httpx.Response(
            200,
            json=envelope(
                {
                    "token": token,
                    "user_id": f"anon_{client_id[:8]}",
                    "credits": 100,
                    "expires_at": self.expires_at,
                }
            ),
        )

    def _session(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body == {"task_name": "project", "language": "en"}
        session_id = self.new_session()
        return httpx.Response(
            200, json=envelope({"task_id": f"task_{session_id}", "session_id": session_id})
        )

    def _session_or_404(self, session_id: str) -> dict[str, Any] | httpx.Response:
        session = self.sessions.get(session_id)
        if session is None:
            return httpx.Response(404, json={"detail": "Session not found: " + session_id})
        return session

    def _upload(self, request: httpx.Request) -> httpx.Response:
        session = self._session_or_404(request.url.path.rsplit("/", 1)[1])
        if isinstance(session, httpx.Response):
            return session
        assert b'name="files"' in request.content
        session["draft"] = json.loads(json.dumps(START_DRAFT))
        return httpx.Response(
            200,
            json=envelope(
                {
                    "files": [
                        {
                            "filename": "clip.mp4",
                            "file_type": "video",
                            "cdn_url": "https://cdn.test/clip.mp4",
                            "duration": 12.5,
                            "width": 1920,
                            "height": 1080,
                            "fps": 30,
                            "hash": "abc",
                        }
                    ],
                    "session_state_applied": True,
                }
            ),
        )

    def _run_sse(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert request.headers["accept"] == "text/event-stream"
        session = self._session_or_404(body["session_id"])
        if isinstance(session, httpx.Response):
            return session
        turn = self.turns.pop(0) if self.turns else Turn()
        instruction = body["new_message"]["parts"][0]["text"]
        self.instructions.append(instruction)
        if turn.apply:
            draft = session["draft"] or json.loads(json.dumps(START_DRAFT))
            draft.setdefault("m", {}).setdefault("edits", []).append(instruction)
            session["draft"] = draft
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream; charset=utf-8"},
            stream=_Stream(turn, request),
        )

    def _state(self, request: httpx.Request) -> httpx.Response:
        session = self._session_or_404(request.url.path.split("/")[-2])
        if isinstance(session, httpx.Response):
            return session
        return httpx.Response(200, json=envelope({"state": {"draft": session["draft"]}}))

    def _credits(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=envelope(self.credits))

    def _submit(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["id"] in self.renders:
            return httpx.Response(
                200, json={"success": False, "error": f"render id {body['id']} already exists"}
            )
        self.renders[body["id"]] = {
            "session": body["sessionId"],
            "draft": body["draft"],
            "output": body["output"],
            "polls": 0,
            "failed": None,
        }
        return httpx.Response(
            200,
            json={"success": True, "data": {"id": body["id"], "status": "pending", "progress": 5}},
        )

    def _poll(self, request: httpx.Request) -> httpx.Response:
        render_id = request.url.path.rsplit("/", 1)[1]
        render = self.renders.get(render_id)
        if render is None:
            return httpx.Response(404, json={"success": False, "error": "render not found"})
        render["polls"] += 1
        polls = render["polls"]
        done = polls >= self.polls_to_complete
        url = None
        if done and polls - self.polls_to_complete >= self.urlless_polls:
            url = f"{FILES_HOST}/files/{render_id}.mp4"
            self.files.setdefault(url, (VIDEO, "video/mp4"))
        status = "failed" if render["failed"] else "completed" if done else "processing"
        progress = 100 if done else 40
        if self.render_shape == "a":
            data = {"id": render_id, "status": status, "progress": progress}
            if url:
                data["outputUrl"] = url
            if render["failed"]:
                data["error"] = render["failed"]
            return httpx.Response(200, json={"success": True, "data": data})
        if self.render_shape == "b":
            body: dict[str, Any] = {"taskId": render_id, "status": status, "progress": progress}
            if url:
                body["output"] = {"url": url, "duration": 12.5, "size": len(VIDEO)}
            return httpx.Response(200, json=body)
        remotion: dict[str, Any] = {
            "done": done,
            "overallProgress": progress / 100,
            "fatalErrorEncountered": bool(render["failed"]),
            "errors": [{"message": "chunk 3 timed out", "isFatal": False, "willRetry": True}],
        }
        if url:
            remotion["outputFile"] = url
        return httpx.Response(200, json=remotion)

    def _download(self, request: httpx.Request) -> httpx.Response:
        render_id = request.url.path.split("/")[-2]
        if render_id not in self.renders:
            return httpx.Response(404, json={"success": False, "error": "render not found"})
        if self.download_form == "json":
            url = f"{FILES_HOST}/files/{render_id}.mp4"
            self.files.setdefault(url, (VIDEO, "video/mp4"))
            return httpx.Response(200, json={"output": {"url": url}})
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=VIDEO)

    def _files(self, request: httpx.Request) -> httpx.Response:
        self.file_requests.append(request)
        found = self.files.get(str(request.url))
        if found is None:
            return httpx.Response(404, text="no such file")
        content, content_type = found
        return httpx.Response(200, headers={"content-type": content_type}, content=content)


def _endpoint(request: httpx.Request) -> str:
    path = request.url.path
    if request.url.host != httpx.URL(BASE_URL).host:
        return "files"
    if path == "/api/auth/anonymous-token":
        return "token"
    if path == "/api/tasks/me/with-session/nemo_agent":
        return "session"
    if path.startswith("/api/upload-video/"):
        return "upload"
    if path == "/run_sse":
        return "run_sse"
    if path.startswith("/api/state/"):
        return "state"
    if path == "/api/credits/balance/simple":
        return "credits"
    if path == "/api/render/proxy/lambda":
        return "submit"
    if path.startswith("/api/render/proxy/lambda/"):
        return "poll"
    if path.startswith("/api/render/proxy/") and path.endswith("/download"):
        return "download"
    return "unknown"


def settings(**overrides: Any) -> NemoSettings:
    return NemoSettings(**{"base_url": BASE_URL, "skill_platform": "auto", **overrides})


def make_engine(
    fake: FakeApi,
    state_dir: Path,
    *,
    token: str | None = "nmv_env_token_123456",
    sleep: Sleeps | None = None,
    clock: Clock | None = None,
    now: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> NemoEngine:
    environ = {"NEMO_TOKEN": token} if token else {}
    return NemoEngine(
        settings(**overrides),
        state_dir=state_dir,
        environ=environ,
        sleep=sleep or Sleeps(),
        clock=clock or Clock(),
        now=now or (lambda: NOW),
        transport=fake.transport(),
        system="linux",
        patience=0.0,  # the attempts alone: an outage's patience is tested with the pipeline
    )


def server_error(status: int = 503) -> httpx.Response:
    return httpx.Response(status, json={"detail": "upstream unavailable"})


def rate_limited(retry_after: str | None = "7") -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return httpx.Response(429, headers=headers, json={"detail": "Too Many Requests"})


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError(
        "connection refused", request=httpx.Request("POST", BASE_URL + "/run_sse")
    )


def test_the_fake_refuses_unknown_tokens_like_the_api() -> None:
    fake = FakeApi()
    answer = fake.handle(httpx.Request("GET", BASE_URL + "/api/credits/balance/simple"))
    assert answer.json()["code"] == 1001
