"""A fake NemoVideo server on 127.0.0.1: stateful, every published variant, faults on request.

Faithful to shared/nemo-api.md. Tests start it in a thread (`with FakeNemo(video=...) as
fake:`) and point a client, or a daemon subprocess, at `fake.base_url`. `variants` picks
which published form it speaks, `faults` arms what it breaks, `books` records what
happened; `script_turn`, `serve_file`, `open_session`, `add_render` and `fail_render` set
up what a unit test needs (tests/fakes/nemo_kit.py points a real NemoEngine at it).
Finished renders are the `video` given, served without auth from
`<base_url>/files/<render_id>.mp4`.

The fake prints nothing (tokens must never reach a log) and never holds an upload in
memory: bodies are read 64 KiB at a time. Run it by hand with
`python -m tests.fakes.nemo_server VIDEO.mp4`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import itertools
import json
import math
import re
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from tests.fakes.http_body import CHUNK, BadBody, BodyReader, MultipartCounter
from tests.fakes.nemo_books import (
    Books,
    InstructionRecord,
    IssuedToken,
    RenderRecord,
    RequestRecord,
    SessionRecord,
    UploadRecord,
)
from tests.fakes.nemo_faults import Endpoint, Fault, FaultOptions, FaultRule, Faults
from tests.fakes.nemo_streams import Act, Wire
from tests.fakes.nemo_turns import (
    VideoFacts,
    add_upload,
    apply_instruction,
    compact,
    empty_state,
    error_frame,
    has_text,
    lay_out,
    model_error_event,
    snake_case,
    turn_events,
)
from tests.fakes.nemo_variants import (
    CompletedUrl,
    DownloadForm,
    ErrorStyle,
    Heartbeat,
    RenderShape,
    TextTurns,
    Variants,
)

__all__ = [
    "Books",
    "CompletedUrl",
    "DownloadForm",
    "Endpoint",
    "ErrorStyle",
    "FakeNemo",
    "Fault",
    "FaultOptions",
    "FaultRule",
    "Faults",
    "Heartbeat",
    "RenderRecord",
    "RenderShape",
    "ScriptedTurn",
    "TextTurns",
    "Variants",
]

WEEK = 7 * 24 * 3600.0
JSON_LIMIT = 1024 * 1024
# Extensions nemo-api.md lists as supported, and what kind of media each is.
SUPPORTED = {
    **dict.fromkeys(("mp4", "mov", "avi", "webm", "mkv"), "video"),
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "webp"), "image"),
    **dict.fromkeys(("mp3", "wav", "m4a", "aac"), "audio"),
}
ATTRIBUTION = ("X-Skill-Source", "X-Skill-Version", "X-Skill-Platform")
HEARTBEATS = {
    Heartbeat.EMPTY_DATA: b"data:\n\n",
    Heartbeat.TEXT: b"data: heartbeat\n\n",
    Heartbeat.JSON: b'data: {"type":"heartbeat"}\n\n',
    Heartbeat.COMMENT: b":\n\n",
}
ROUTES: tuple[tuple[str, re.Pattern[str], Endpoint], ...] = (
    ("POST", re.compile(r"/api/auth/anonymous-token"), Endpoint.TOKEN),
    ("POST", re.compile(r"/api/tasks/me/with-session/nemo_agent"), Endpoint.SESSION),
    ("POST", re.compile(r"/api/upload-video/nemo_agent/me/(?P<session_id>[^/]+)"), Endpoint.UPLOAD),
    ("POST", re.compile(r"/run_sse"), Endpoint.RUN_SSE),
    ("GET", re.compile(r"/api/state/nemo_agent/me/(?P<session_id>[^/]+)/latest"), Endpoint.STATE),
    ("GET", re.compile(r"/api/credits/balance/simple"), Endpoint.CREDITS),
    ("POST", re.compile(r"/api/render/proxy/lambda"), Endpoint.RENDER_SUBMIT),
    ("GET", re.compile(r"/api/render/proxy/lambda/(?P<render_id>[^/]+)"), Endpoint.RENDER_POLL),
    ("GET", re.compile(r"/api/render/proxy/(?P<render_id>[^/]+)/download"), Endpoint.DOWNLOAD),
    ("GET", re.compile(r"/files/(?P<render_id>[^/]+)\.mp4"), Endpoint.FILES),
)


@dataclass
class _User:
    user_id: str
    client_id: str | None  # None: a registered user (a minted token)
    available: float
    spent: float = 0.0


@dataclass
class _Token:
    user_id: str
    client_id: str | None
    expires_at: float


@dataclass
class _Session:
    session_id: str
    user_id: str
    state: dict[str, Any]


@dataclass(frozen=True)
class ScriptedTurn:
    """A /run_sse turn a test wrote: raw SSE frames (or acts: nemo_streams.py), and
    whether the instruction lands."""

    frames: tuple[bytes | Act, ...]
    apply: bool


@dataclass
class _Render:
    render_id: str
    session_id: str
    user_id: str
    polls: int = 0
    progress: int = 5
    fail_at_poll: int | None = None  # RENDER_FAILED armed at submit
    fail_message: str = ""
    error: str | None = None  # set once failed
    completed_at_poll: int | None = None


@dataclass
class _LateLanding:
    due: float  # the fake's clock
    session: _Session
    user: _User
    state: dict[str, Any]


class _Answer(Exception):  # raised to answer, not an error
    """Raised inside a handler to answer with JSON right away."""

    def __init__(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        fault: Fault | None = None,
    ) -> None:
        super().__init__(status)
        self.status, self.body, self.headers, self.fault = status, body, headers or {}, fault


class _Aborted(Exception):
    """The fake reset the connection on purpose."""


class FakeNemo:
    """The fake server. Configure, `start()`, point clients at `base_url`, `stop()`."""

    def __init__(
        self,
        *,
        video: Path,
        variants: Variants | None = None,
        token_ttl: float = WEEK,
        clock: Callable[[], float] = time.time,
        credits: float = 100.0,
        edit_cost: float = 1.0,
        upload_limit: int = 500 * 1024 * 1024,
        seed: int = 0,
    ) -> None:
        self.video = Path(video)
        self.video_size = self.video.stat().st_size  # fails early on a missing file
        self.video_facts = _probe(self.video)
        self.variants = variants or Variants()
        self.token_ttl = token_ttl
        self.clock = clock
        self.edit_cost = edit_cost
        self.upload_limit = upload_limit
        self.books = Books()
        self.faults = Faults(seed)
        self._default_credits = credits
        self._lock = threading.RLock()
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, _Token] = {}
        self._sessions: dict[str, _Session] = {}
        self._renders: dict[str, _Render] = {}
        self._session_numbers = itertools.count(7_300_000_001)
        self._sequence = itertools.count(1)
        self._heartbeats = itertools.count()
        self._scripts: list[ScriptedTurn] = []
        self._layouts: list[tuple[tuple[str, Any, int], ...]] = []  # see lay_out_next
        self._landing_delays: list[float] = []  # see land_later
        self._late: list[_LateLanding] = []
        self._served: dict[str, tuple[bytes, str]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._refusing = False  # stopped with `refuse`: see stop
        self._connections: dict[socket.socket, _Handler] = {}
        self._port = 0

    # Lifecycle.

    def serve_video(self, video: Path) -> None:
        """Serve `video` as every render's result from now on."""
        self.video = Path(video)
        self.video_size = self.video.stat().st_size
        self.video_facts = _probe(self.video)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeNemo is not started")
        return self._address

    @property
    def _address(self) -> str:
        # without base_url's check: a request still being answered as the server stops
        # needs it too
        return f"http://127.0.0.1:{self._port}"

    def start(self, port: int = 0) -> FakeNemo:
        """Serve on 127.0.0.1 (`port` 0: any free one; pass the old port to come back)."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._refusing = False
        server = _Server(("127.0.0.1", port), _Handler)
        server.fake = self
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"fake-nemo-{self._port}",
        )
        self._thread.start()
        return self

    def stop(self, refuse: bool = False) -> None:
        """Stop serving and cut open connections (streams and keep-alive ones alike).

        With `refuse`, the outage is behind a proxy that stays up: turns being streamed
        are cut, new connections refused, and an instruction not yet applied, or any
        request arriving on a kept-alive connection, is answered 503, so that its client
        knows it never arrived. Other requests already being answered finish."""
        server, self._server = self._server, None
        if server is None:
            return
        self._refusing = refuse
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = [
                connection
                for connection, handler in self._connections.items()
                if not refuse or handler._streaming
            ]
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeNemo:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # Controls for tests.

    def set_credits(self, user_or_token: str | None, available: float) -> None:
        """Set the available credits of one user (by user id, token or client id), or of
        every user and every user yet to come (None)."""
        with self._lock:
            if user_or_token is None:
                self._default_credits = available
                users = list(self._users.values())
            else:
                users = [self._find_user(user_or_token)]
            for user in users:
                user.available = available

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (a client may then ask for a new one)."""
        with self._lock:
            now = self.clock()
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, now)

    def drop_sessions(self) -> None:
        """Forget every session, as a backend restart would (renders are kept)."""
        with self._lock:
            self._sessions.clear()

    def mint_token(self, *, credits: float | None = None, ttl: float | None = None) -> str:
        """A registered user's token, as a user would put in NEMO_TOKEN."""
        token = f"nmv_usr_{secrets.token_hex(16)}"
        with self._lock:
            user = _User(f"user_{secrets.token_hex(6)}", None, self._credits(credits))
            self._users[user.user_id] = user
            self._tokens[token] = _Token(user.user_id, None, self.clock() + (ttl or WEEK))
        return token

    def user_id(self, token: str) -> str:
        """The user a token belongs to."""
        with self._lock:
            return self._tokens[token].user_id

    def state(self, session_id: str) -> dict[str, Any]:
        """A copy of a session's state (`draft`, `video_infos`, ...), as GET state shows."""
        with self._lock:
            return copy.deepcopy(self._sessions[session_id].state)

    def credits(self, user_or_token: str) -> float:
        with self._lock:
            return self._find_user(user_or_token).available

    def file_url(self, render_id: str) -> str:
        return f"{self._address}/files/{quote(render_id, safe='')}.mp4"

    def open_session(self, token: str, draft: dict[str, Any] | None = None) -> str:
        """A session of the token's user, as `POST .../with-session` opens one, with
        `draft` in its state when given (a session a test picks up half way)."""
        with self._lock:
            user = self._find_user(token)
            session_id = str(next(self._session_numbers))
            state = empty_state(self.video_facts, "project")
            if draft is not None:
                state["draft"] = copy.deepcopy(draft)
            self._sessions[session_id] = _Session(session_id, user.user_id, state)
        self.books.add_session(SessionRecord(session_id, f"task_{session_id}", user.user_id, {}))
        return session_id

    def script_turn(self, *frames: bytes | Act, apply: bool = True) -> None:
        """The next /run_sse turn streams exactly `frames` (raw SSE bytes, keep-alives and
        error frames included, or a misbehaving stream's `Act`: tests/fakes/nemo_streams.py)
        instead of the events it would make up; `apply`: whether the instruction lands on
        the draft. Armed faults (DROP_STREAM, STALL) still apply."""
        with self._lock:
            self._scripts.append(ScriptedTurn(tuple(frames), apply))

    def lay_out_next(self, *pieces: tuple[str, Any, int]) -> None:
        """The next /run_sse instruction also lays the video track out as `pieces`: the
        cloud's own cut, with generated clips (see nemo_turns.lay_out). Serve a video as
        long as the pieces (`serve_video`): the render is checked against the draft."""
        with self._lock:
            self._layouts.append(tuple(pieces))

    def serve_file(self, path: str, content: bytes, content_type: str) -> str:
        """Serve `content` at `path` (no auth), e.g. an HTML login page where a video was
        expected, or JSON pointing elsewhere; returns its URL. Replaces what was there."""
        with self._lock:
            self._served[path] = (content, content_type)
        return f"{self._address}{path}"

    def add_render(self, render_id: str, session_id: str, user_or_token: str) -> None:
        """A render someone submitted earlier (another session's, say)."""
        with self._lock:
            user = self._find_user(user_or_token)
            self._renders[render_id] = _Render(render_id, session_id, user.user_id)

    def fail_render(self, render_id: str, message: str) -> None:
        """The render fails now: every later poll says `failed` with `message`."""
        with self._lock:
            self._renders[render_id].error = message

    # Late landings: an edit the service finishes after its turn's stream ended.

    def land_later(self, seconds: float) -> None:
        """The next /run_sse instruction lands (and is charged) `seconds` of the fake's
        clock after its turn, seen by the first state read from then on, whatever the
        turn streams or however it ends."""
        with self._lock:
            self._landing_delays.append(seconds)

    def _take_landing_delay(self) -> float | None:
        with self._lock:
            return self._landing_delays.pop(0) if self._landing_delays else None

    def _land_later(self, late: _LateLanding) -> None:
        with self._lock:
            self._late.append(late)

    def _land_due(self, session: _Session) -> None:
        with self._lock:
            now = self.clock()
            for late in [late for late in self._late if late.session is session]:
                if late.due <= now:
                    self._late.remove(late)
                    session.state = late.state
                    late.user.available -= self.edit_cost
                    late.user.spent += self.edit_cost

    # Shared by handlers (state is guarded by self._lock).

    def _credits(self, credits: float | None) -> float:
        return self._default_credits if credits is None else credits

    def _find_user(self, key: str) -> _User:
        if key in self._users:
            return self._users[key]
        if key in self._tokens:
            return self._users[self._tokens[key].user_id]
        for user in self._users.values():
            if user.client_id == key:
                return user
        raise KeyError(f"no user, token or client id {key[:12]}...")

    def _heartbeat(self) -> bytes:
        form = self.variants.heartbeat
        if form is Heartbeat.ROTATE:
            forms = list(HEARTBEATS)
            form = forms[next(self._heartbeats) % len(forms)]
        return HEARTBEATS[form]

    def _ok(self, data: dict[str, Any]) -> dict[str, Any]:
        """A successful answer in the `code` envelope, or bare (a published variant)."""
        if self.variants.bare_bodies:
            return data
        return {"code": 0, "message": "success", "data": data}

    def _code_error(
        self, code: int, message: str, status: int, fault: Fault | None = None, data: Any = None
    ) -> _Answer:
        body = {"code": code, "message": message, "data": data}
        http = self.variants.error_style is ErrorStyle.HTTP
        return _Answer(status if http else 200, body, fault=fault)

    def _auth_error(self, fault: Fault | None = None) -> _Answer:
        return self._code_error(1001, "Token is invalid or has expired", 401, fault)

    def _session_lost(self, session_id: str, fault: Fault | None = None) -> _Answer:
        if self.variants.error_style is ErrorStyle.HTTP:
            return _Answer(404, {"detail": f"Session not found: {session_id}"}, fault=fault)
        return _Answer(
            200, {"code": 1002, "message": "Session not found", "data": None}, fault=fault
        )

    def _render_error(self, status: int, message: str) -> _Answer:
        http = self.variants.error_style is ErrorStyle.HTTP
        return _Answer(status if http else 200, {"success": False, "error": message})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeNemo

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that went away between requests (as _dispatch sees it too)
        # Never print (a token could be in a message); the books keep it for tests.
        self.fake.books.add_server_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked SSE whose cut a client can see
    server: _Server
    # Per request, reset by _dispatch (one handler serves a keep-alive connection's requests).
    _status: int | None
    _fault: Fault | None
    _streaming: bool = False  # read by FakeNemo.stop before the first request too
    _recorded: bool
    _body: BodyReader | None
    _path: str
    _endpoint: Endpoint | None
    _lost: FaultRule | None  # LOST_ANSWER armed for this request

    # Plumbing.

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.fake._lock:
            self.server.fake._connections[self.connection] = self

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            with self.server.fake._lock:
                self.server.fake._connections.pop(self.connection, None)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silent: request lines and errors go to the books, never to stderr

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        # Booked before the answer leaves: a test reads the books right after a response.
        self._record()
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    @property
    def fake(self) -> FakeNemo:
        return self.server.fake

    def _dispatch(self) -> None:
        self._status = None
        self._fault = None
        self._streaming = False
        self._recorded = False
        self._body = None
        self._lost = None
        self._path = urlsplit(self.path).path
        with self.fake._lock:
            served = self.fake._served.get(self._path) if self.command == "GET" else None
        endpoint, params = (Endpoint.FILES, {}) if served else _route(self.command, self._path)
        self._endpoint = endpoint
        try:
            self._body = BodyReader(self.rfile, self.headers)
            if self.fake._refusing:  # arrived on a connection the outage left open
                raise _Answer(503, {"code": 503, "message": "Service Unavailable"})
            if endpoint is None:
                raise _Answer(404, {"detail": "Not Found"})
            if served is not None:
                self._send_bytes(*served)
                return
            self._before(endpoint)
            getattr(self, f"_{endpoint.value}")(**params)
        except _Answer as answer:
            self._fault = answer.fault or self._fault
            try:
                self._send_json(answer.status, answer.body, answer.headers)
            except BadBody:  # the client cut its body short (a fault, an outage): no answer
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True  # the client went away
        except _Aborted:
            pass
        except BadBody as exc:
            self.close_connection = True  # the stream's framing is lost: do not reuse it
            if not self._streaming:
                self._send_json(400, {"detail": str(exc)}, drain=False)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away
        except Exception:
            self.fake.books.add_server_error(traceback.format_exc())
            self.close_connection = True
            if not self._streaming:
                with contextlib.suppress(OSError):
                    self._send_json(500, {"detail": "fake server bug"}, drain=False)
        finally:
            self._record()  # when no answer was sent (a bug, or the client went away)

    def _record(self) -> None:
        """Book this request once: at its answer, at a reset, or at the end."""
        if getattr(self, "_recorded", True):
            return  # already booked, or an error from the request line (not dispatched)
        self._recorded = True
        authorization = self.headers.get("Authorization") or ""
        token = authorization.removeprefix("Bearer ").strip() if authorization else ""
        self.fake.books.add_request(
            RequestRecord(
                method=self.command,
                path=self._path,
                endpoint=self._endpoint,
                status=self._status,
                headers={
                    name.lower(): value
                    for name, value in self.headers.items()
                    if name.lower() != "authorization"
                },
                has_token=bool(token),
                token_sha256=_sha256(token) if token else None,
                fault=self._fault,
                body_bytes=self._body.consumed if self._body else 0,
            )
        )

    def _before(self, endpoint: Endpoint) -> None:
        """Faults that come before any processing: a delay, then a transient failure."""
        faults = self.fake.faults
        slow = faults.take(endpoint, Fault.SLOW)
        if slow is not None:
            self._fault = Fault.SLOW
            self._wait(slow.delay)
        self._lost = faults.take(endpoint, Fault.LOST_ANSWER)
        instead = (Fault.RESET, Fault.SERVER_ERROR, Fault.RATE_LIMIT, Fault.ANSWER)
        rule = faults.take(endpoint, *instead)
        if rule is None:
            return
        self._fault = rule.fault
        if rule.fault is Fault.ANSWER:
            raise _Answer(rule.status, rule.body, rule.headers)
        if rule.fault is Fault.RESET:
            assert self._body is not None
            self._body.skip(rule.after_bytes)
            self._abort()
        if rule.fault is Fault.SERVER_ERROR:
            phrase = _phrase(rule.status)
            raise _Answer(rule.status, {"code": rule.status, "message": phrase})
        retry_after = str(max(0, math.ceil(rule.retry_after)))
        raise _Answer(
            429, {"code": 429, "message": "Too Many Requests"}, {"Retry-After": retry_after}
        )

    def _abort(self, reset: bool = True) -> None:
        """Cut the connection: with `reset` an RST (SO_LINGER 0), else a FIN, which lets the
        client read what was already sent and then see the body end early."""
        self.close_connection = True
        self._record()
        with contextlib.suppress(OSError):
            if reset:
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        # rfile holds a reference to the socket: close() only closes it once both are closed.
        with contextlib.suppress(OSError):
            self.rfile.close()
        self.connection.close()
        raise _Aborted

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.fake._stopping.wait(seconds):
            self._abort(reset=False)

    def _drain(self) -> None:
        if self._body is not None and not self._body.finished:
            self._body.drain()

    def _send_json(
        self, status: int, body: Any, headers: dict[str, str] | None = None, drain: bool = True
    ) -> None:
        if drain:
            self._drain()  # read what the client sent, so it can read the answer
        if self._lost is not None and status < 300:  # done, but the answer is lost
            self._fault = Fault.LOST_ANSWER
            status, body = self._lost.status, {"code": self._lost.status, "message": "Bad Gateway"}
            headers = None
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, content: bytes, content_type: str) -> None:
        self._drain()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def _send_video(self, endpoint: Endpoint) -> None:
        self._drain()
        fake = self.fake
        cut = fake.faults.take(endpoint, Fault.TRUNCATE)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(fake.video_size))
        self.end_headers()
        with fake.video.open("rb") as file:
            if cut is not None:  # a part of it, then the connection closed
                self._fault = Fault.TRUNCATE
                self.wfile.write(file.read(min(cut.after_bytes, fake.video_size - 1)))
                self.wfile.flush()
                self._abort(reset=False)
            while data := file.read(CHUNK):
                self.wfile.write(data)

    def _json_body(self) -> Any:
        assert self._body is not None
        raw = self._body.read_all(JSON_LIMIT)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _Answer(422, _validation("json_invalid", ["body"], "JSON decode error")) from None

    def _authenticate(self, endpoint: Endpoint) -> tuple[_User, str]:
        """The caller's user and token, or the API's answer to a bad or expired one."""
        fake = self.fake
        authorization = self.headers.get("Authorization") or ""
        value = authorization.removeprefix("Bearer ").strip()
        with fake._lock:
            token = fake._tokens.get(value) if authorization.startswith("Bearer ") else None
            if token is None or fake.clock() >= token.expires_at:
                raise fake._auth_error()
            user = fake._users[token.user_id]
        if fake.faults.take(endpoint, Fault.EXPIRED_TOKEN) is not None:
            with fake._lock:
                token.expires_at = min(token.expires_at, fake.clock())
            raise fake._auth_error(Fault.EXPIRED_TOKEN)
        return user, value

    def _find_session(self, endpoint: Endpoint, user: _User, session_id: str) -> _Session:
        fake = self.fake
        with fake._lock:
            session = fake._sessions.get(session_id)
        if session is None or session.user_id != user.user_id:
            raise fake._session_lost(session_id)
        if fake.faults.take(endpoint, Fault.LOST_SESSION) is not None:
            with fake._lock:
                fake._sessions.pop(session_id, None)
            raise fake._session_lost(session_id, Fault.LOST_SESSION)
        return session

    # Endpoints, one method each, named after Endpoint values.

    def _token(self) -> None:
        fake = self.fake
        client_id = (self.headers.get("X-Client-Id") or "").strip()
        if not client_id:
            raise _Answer(400, {"code": 400, "message": "X-Client-Id header is required"})
        with fake._lock:
            now = fake.clock()
            issued = [t for t in fake._tokens.values() if t.client_id == client_id]
            live = max((token.expires_at for token in issued), default=now)
            if live > now:  # one token per client per window, unless it has expired
                wait = str(max(1, math.ceil(live - now)))
                raise _Answer(
                    429,
                    {"code": 429, "message": "Anonymous token rate limit: 1 per client per 7 days"},
                    {"Retry-After": wait},
                )
            user = next((u for u in fake._users.values() if u.client_id == client_id), None)
            if user is None:
                user = _User(f"anon_{secrets.token_hex(8)}", client_id, fake._credits(None))
                fake._users[user.user_id] = user
            value = f"nmv_usr_{secrets.token_hex(16)}"
            expires_at = now + fake.token_ttl
            fake._tokens[value] = _Token(user.user_id, client_id, expires_at)
            available = user.available
        fake.books.add_token(IssuedToken(client_id, user.user_id, now, expires_at, value))
        data = {
            "token": value,
            "user_id": user.user_id,
            "credits": available,
            "expires_at": _iso(expires_at),
        }
        if not fake.variants.token_user_id:
            del data["user_id"]
        self._send_json(200, fake._ok(data))

    def _session(self) -> None:
        fake = self.fake
        user, _ = self._authenticate(Endpoint.SESSION)
        body = self._json_body()
        if body is not None and not isinstance(body, dict):
            raise _Answer(422, _validation("model_attributes_type", ["body"], "Not an object"))
        task_name = str((body or {}).get("task_name") or "project")
        with fake._lock:
            session_id = str(next(fake._session_numbers))
            task_id = f"task_{secrets.token_hex(8)}"
            state = empty_state(fake.video_facts, task_name)
            fake._sessions[session_id] = _Session(session_id, user.user_id, state)
        fake.books.add_session(SessionRecord(session_id, task_id, user.user_id, body or {}))
        data = {"task_id": task_id, "session_id": session_id, "user_id": user.user_id}
        self._send_json(200, fake._ok(data))

    def _upload(self, session_id: str) -> None:
        fake = self.fake
        user, _ = self._authenticate(Endpoint.UPLOAD)
        self._find_session(Endpoint.UPLOAD, user, session_id)
        kind = self.headers.get_content_type()
        if kind == "multipart/form-data":
            files = self._multipart_files(session_id)
        elif kind == "application/json":
            files = self._url_files(session_id)
        else:
            raise _Answer(422, _validation("missing", ["body", "files"], "Field required"))
        for record in files:
            extension = record.filename.rsplit(".", 1)[-1].lower() if "." in record.filename else ""
            if extension not in SUPPORTED:
                raise fake._code_error(4001, f"Unsupported file type: .{extension}", 415)
            if record.size > fake.upload_limit:
                limit = f"{fake.upload_limit / 1024 / 1024:g} MB"
                raise fake._code_error(4002, f"File too large (limit {limit})", 413)
        if fake.faults.take(Endpoint.UPLOAD, Fault.UNSUPPORTED_MEDIA):
            raise fake._code_error(4001, "Unsupported file", 415, Fault.UNSUPPORTED_MEDIA)
        if fake.faults.take(Endpoint.UPLOAD, Fault.MEDIA_TOO_LARGE):
            raise fake._code_error(4002, "File too large", 413, Fault.MEDIA_TOO_LARGE)
        infos = []
        with fake._lock:
            session = fake._sessions.get(session_id)
            if session is None:  # dropped while the body streamed in
                raise fake._session_lost(session_id)
            for record in files:
                info = self._file_info(session_id, record)
                session.state = add_upload(session.state, info, fake.video_facts)
                infos.append(info)
        for record in files:
            fake.books.add_upload(record)
        self._send_json(200, fake._ok({"files": infos, "session_state_applied": True}))

    def _multipart_files(self, session_id: str) -> list[UploadRecord]:
        assert self._body is not None
        counter = MultipartCounter(self.headers.get_param("boundary") or "")  # type: ignore[arg-type]
        for data in self._body.chunks():
            counter.feed(data)
        parts = [part for part in counter.finish() if part.name == "files" and part.filename]
        if not parts:
            raise _Answer(422, _validation("missing", ["body", "files"], "Field required"))
        return [
            UploadRecord(
                session_id,
                part.filename or "",
                part.size,
                part.sha256,
                _file_type(part.filename or ""),
                "multipart",
            )
            for part in parts
        ]

    def _url_files(self, session_id: str) -> list[UploadRecord]:
        body = self._json_body()
        urls = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise _Answer(422, _validation("missing", ["body", "urls"], "Field required"))
        if body.get("source_type") != "url":
            raise _Answer(422, _validation("literal_error", ["body", "source_type"], "'url'"))
        records = []
        for url in urls:
            name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "remote"
            records.append(UploadRecord(session_id, name, 0, _sha256(url), _file_type(name), "url"))
        return records

    def _file_info(self, session_id: str, record: UploadRecord) -> dict[str, Any]:
        facts = self.fake.video_facts
        visual = record.file_type in ("video", "image")
        return {
            "filename": record.filename,
            "file_type": record.file_type,
            "cdn_url": f"{self.fake._address}/cdn/{session_id}/{quote(record.filename)}",
            "duration": facts.duration if record.file_type != "image" else 0,
            "width": facts.width if visual else None,
            "height": facts.height if visual else None,
            "fps": facts.fps if record.file_type == "video" else None,
            "hash": record.sha256,
        }

    def _run_sse(self) -> None:
        fake = self.fake
        user, _ = self._authenticate(Endpoint.RUN_SSE)
        body = self._json_body()
        session_id, instruction = _run_request(body)
        session = self._find_session(Endpoint.RUN_SSE, user, session_id)
        if fake.faults.take(Endpoint.RUN_SSE, Fault.NO_CREDITS) is not None:
            with fake._lock:
                user.available = 0.0
            self._fault = Fault.NO_CREDITS
        with fake._lock:
            short = user.available < fake.edit_cost
        if short:
            raise self._no_credits(user, session_id, instruction)
        stall = fake.faults.take(Endpoint.RUN_SSE, Fault.STALL)
        ending = fake.faults.take(
            Endpoint.RUN_SSE, Fault.DROP_STREAM, Fault.ERROR_FRAME, Fault.MODEL_ERROR
        )
        for rule in (stall, ending):
            if rule is not None:
                self._fault = rule.fault
        with fake._lock:
            script = fake._scripts.pop(0) if fake._scripts else None
        applied = (ending is None or ending.apply) if script is None else script.apply
        landing_delay = fake._take_landing_delay()  # see FakeNemo.land_later
        applied = applied and landing_delay is None
        with fake._lock:
            if fake._sessions.get(session_id) is not session:  # dropped meanwhile
                raise fake._session_lost(session_id)
            if fake._refusing:  # the outage came first (see FakeNemo.stop)
                raise _Answer(503, {"code": 503, "message": "Service Unavailable"})
            if applied and user.available < fake.edit_cost:  # a parallel edit spent it
                raise self._no_credits(user, session_id, instruction)
            new_state, change = apply_instruction(session.state, instruction, fake.video_facts)
            if fake._layouts:
                new_state = lay_out(new_state, fake._layouts.pop(0))
            revision = int(new_state["draft"]["m"]["revision"])
            if applied:  # the edit lands and is charged before anything is streamed
                session.state = new_state
                user.available -= fake.edit_cost
                user.spent += fake.edit_cost
            sequence = next(fake._sequence)
        if landing_delay is not None:
            fake._land_later(_LateLanding(fake.clock() + landing_delay, session, user, new_state))
        outcome = "applied" if ending is None else _OUTCOMES[ending.fault]
        fake.books.add_instruction(
            InstructionRecord(
                session_id, instruction, applied, outcome, revision if applied else None
            )
        )
        variants = fake.variants
        if script is not None:
            self._stream(list(script.frames), stall, ending, sequence)
            return
        events = turn_events(
            instruction,
            change,
            revision=revision,
            with_text=has_text(instruction, variants.text_turns),
            timestamp=fake.clock(),
            sequence=sequence,
        )
        frames = [_frame(event, variants) for event in events]
        self._stream(frames, stall, ending, sequence)

    def _no_credits(self, user: _User, session_id: str, instruction: str) -> _Answer:
        fake = self.fake
        fake.books.add_instruction(
            InstructionRecord(session_id, instruction, False, "no_credits", None)
        )
        with fake._lock:
            data = {"user_id": user.user_id, "available": user.available}
        return fake._code_error(2001, "Insufficient credits", 403, self._fault, data)

    def _stream(
        self,
        frames: list[bytes | Act],
        stall: FaultRule | None,
        ending: FaultRule | None,
        sequence: int,
    ) -> None:
        fake = self.fake
        variants = fake.variants
        if self._lost is not None:  # applied, but the stream never reaches the client
            self._send_json(200, {})
            return
        self._drain()
        self.close_connection = True  # the turn is over when the server closes the stream
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self._streaming = True
        if stall is not None:
            gap = stall.delay / (stall.heartbeats + 1)
            for _ in range(stall.heartbeats):
                self._wait(gap)
                self._chunk(fake._heartbeat())
            self._wait(gap)
        cut = ending.after_events if ending is not None else len(frames) + 1
        for index, frame in enumerate(frames):
            if index == cut:
                break
            if index and variants.event_gap:
                self._wait(variants.event_gap)
            self._send_frame(frame)
            if index == 1:  # keep-alives mid-turn, after the function call
                for _ in range(variants.heartbeats_in_turn):
                    self._chunk(fake._heartbeat())
        if ending is not None and ending.fault is Fault.DROP_STREAM:
            half = frames[cut] if cut < len(frames) else b""
            if isinstance(half, bytes):  # half an event: what a cut connection leaves behind
                self._chunk(half[: len(half) // 2])
            self._abort(reset=False)
        if ending is not None and ending.fault is Fault.ERROR_FRAME:
            self._chunk(error_frame(ending.message, legacy=variants.legacy_error_frame))
        if ending is not None and ending.fault is Fault.MODEL_ERROR:
            event = model_error_event(ending.message, timestamp=fake.clock(), sequence=sequence)
            self._chunk(_frame(event, variants))
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    # Misbehaving streams (tests/fakes/nemo_streams.py): an act plays through a Wire.

    def _send_frame(self, frame: bytes | Act) -> None:
        if isinstance(frame, Act):
            frame.play(Wire(write=self._chunk, wait=self._wait, heartbeat=self.fake._heartbeat))
        else:
            self._chunk(frame)

    def _state(self, session_id: str) -> None:
        user, _ = self._authenticate(Endpoint.STATE)
        session = self._find_session(Endpoint.STATE, user, session_id)
        self.fake._land_due(session)  # see FakeNemo.land_later
        with self.fake._lock:
            state = copy.deepcopy(session.state)
        self._send_json(200, self.fake._ok({"session_id": session_id, "state": state}))

    def _credits(self) -> None:
        user, _ = self._authenticate(Endpoint.CREDITS)
        with self.fake._lock:
            data = {"available": user.available, "frozen": 0, "total": user.available + user.spent}
        self._send_json(200, self.fake._ok(data))

    def _render_submit(self) -> None:
        fake = self.fake
        user, _ = self._authenticate(Endpoint.RENDER_SUBMIT)
        body = self._json_body()
        if not isinstance(body, dict):
            raise fake._render_error(400, "Request body must be a JSON object")
        render_id, session_id = body.get("id"), body.get("sessionId")
        draft, output = body.get("draft"), body.get("output")
        if not isinstance(render_id, str) or not render_id:
            raise fake._render_error(400, "id is required")
        if not isinstance(session_id, str) or not session_id:
            raise fake._render_error(400, "sessionId is required")
        if not isinstance(draft, dict) or not isinstance(output, dict):
            raise fake._render_error(400, "draft and output are required")

        def refuse(outcome: str, answer: _Answer) -> _Answer:
            fake.books.add_render(
                RenderRecord(render_id, session_id, False, outcome, draft, output)
            )
            return answer

        if not all(self.headers.get(name) for name in ATTRIBUTION):
            # The free plan's export gate: without attribution the backend refuses (402).
            raise refuse(
                "blocked",
                _Answer(
                    402,
                    {
                        "success": False,
                        "error": "Export blocked on the free plan: register or upgrade your plan",
                    },
                ),
            )
        self._find_session(Endpoint.RENDER_SUBMIT, user, session_id)
        failing = fake.faults.take(Endpoint.RENDER_SUBMIT, Fault.RENDER_FAILED)
        with fake._lock:
            duplicate = render_id in fake._renders
            if not duplicate and _ready(draft):
                render = _Render(render_id, session_id, user.user_id)
                if failing is not None:
                    render.fail_at_poll = failing.after_polls + 1
                    render.fail_message = failing.message
                fake._renders[render_id] = render
        if duplicate:
            raise refuse(
                "duplicate",
                fake._render_error(409, f"Duplicate render id: {render_id} already exists"),
            )
        if not _ready(draft):
            raise refuse("empty_draft", fake._render_error(400, "Draft has no segments"))
        if failing is not None:
            self._fault = Fault.RENDER_FAILED
        fake.books.add_render(RenderRecord(render_id, session_id, True, "accepted", draft, output))
        data = {"id": render_id, "status": "pending", "progress": 5}
        self._send_json(200, {"success": True, "data": data})

    def _render(self, endpoint: Endpoint, render_id: str) -> _Render:
        user, _ = self._authenticate(endpoint)
        with self.fake._lock:
            render = self.fake._renders.get(render_id)
        if render is None or render.user_id != user.user_id:
            raise self.fake._render_error(404, f"Render not found: {render_id}")
        return render

    def _render_poll(self, render_id: str) -> None:
        fake = self.fake
        render = self._render(Endpoint.RENDER_POLL, render_id)
        failing = fake.faults.take(Endpoint.RENDER_POLL, Fault.RENDER_FAILED)
        variants = fake.variants
        with fake._lock:
            render.polls += 1
            poll = render.polls
            if failing is not None and render.error is None and render.completed_at_poll is None:
                render.error = failing.message
                self._fault = Fault.RENDER_FAILED
            status, url = _advance(render, variants, fake.file_url(render_id))
            progress, error = render.progress, render.error
        fake.books.add_poll(render_id)
        shape = variants.render_shape
        if shape is RenderShape.ROTATE:
            shape = (RenderShape.A, RenderShape.B, RenderShape.C)[(poll - 1) % 3]
        body = _poll_body(shape, render_id, status, progress, url, error, poll, fake)
        self._send_json(200, body)

    def _download(self, render_id: str) -> None:
        fake = self.fake
        render = self._render(Endpoint.DOWNLOAD, render_id)
        with fake._lock:
            completed = render.completed_at_poll is not None
        if not completed:
            raise fake._render_error(409, f"Render {render_id} is not completed")
        if fake.variants.download_form is DownloadForm.JSON:
            self._send_json(200, {"id": render_id, "output": {"url": fake.file_url(render_id)}})
        else:
            self._send_video(Endpoint.DOWNLOAD)

    def _files(self, render_id: str) -> None:
        fake = self.fake
        with fake._lock:
            render = fake._renders.get(unquote(render_id))
            completed = render is not None and render.completed_at_poll is not None
        if not completed:
            raise _Answer(404, {"detail": "Not Found"})
        if fake.variants.files_as_json:
            # What an expired or refused storage link answers: JSON, with a 200.
            raise _Answer(200, {"error": "AccessDenied", "message": "Request has expired"})
        self._send_video(Endpoint.FILES)


_OUTCOMES = {
    Fault.DROP_STREAM: "dropped",
    Fault.ERROR_FRAME: "error_frame",
    Fault.MODEL_ERROR: "model_error",
}


def _frame(event: dict[str, Any], variants: Variants) -> bytes:
    """One SSE event: a `data:` line of compact JSON and a blank line (ADK's framing)."""
    return b"data: " + compact(snake_case(event) if variants.snake_case_events else event) + b"\n\n"


def _route(method: str, path: str) -> tuple[Endpoint | None, dict[str, str]]:
    for route_method, pattern, endpoint in ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            return endpoint, match.groupdict()
    return None, {}


def _run_request(body: Any) -> tuple[str, str]:
    """The session id and instruction of a /run_sse body, or FastAPI's 422."""
    if not isinstance(body, dict):
        raise _Answer(422, _validation("missing", ["body"], "Field required"))
    for name in ("app_name", "user_id", "session_id", "new_message"):
        if name not in body:
            raise _Answer(422, _validation("missing", ["body", name], "Field required"))
    if body["app_name"] != "nemo_agent":
        raise _Answer(404, {"detail": "App not found"})
    message = body["new_message"]
    parts = message.get("parts") if isinstance(message, dict) else None
    texts = [
        part["text"]
        for part in parts or []
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    if not texts:
        raise _Answer(422, _validation("missing", ["body", "new_message", "parts"], "No text"))
    return str(body["session_id"]), "\n".join(texts)


def _advance(render: _Render, variants: Variants, url: str) -> tuple[str, str | None]:
    """Move `render` on by one poll: its status, and the URL if this poll shows it."""
    poll = render.polls
    if render.error is None and render.fail_at_poll is not None and poll >= render.fail_at_poll:
        render.error = render.fail_message
    if render.error is not None:
        return "failed", None
    needed = max(1, variants.render_polls)
    if poll >= needed:
        if render.completed_at_poll is None:
            render.completed_at_poll = poll
        render.progress = 100
        shown = variants.completed_url is CompletedUrl.IMMEDIATE or (
            variants.completed_url is CompletedUrl.LATER
            and poll >= render.completed_at_poll + variants.url_delay_polls
        )
        return "completed", url if shown else None
    if poll == 1:
        render.progress = 5
        return "pending", None
    render.progress = 5 + (90 * (poll - 1)) // (needed - 1)
    return "processing", None


def _poll_body(
    shape: RenderShape,
    render_id: str,
    status: str,
    progress: int,
    url: str | None,
    error: str | None,
    poll: int,
    fake: FakeNemo,
) -> dict[str, Any]:
    """One poll answer in a published shape (A, B or C)."""
    if shape is RenderShape.A:
        data: dict[str, Any] = {"id": render_id, "status": status, "progress": progress}
        if url:
            data["outputUrl"] = url
        if error is not None:
            data["error"] = error
        return {"success": True, "data": data}
    if shape is RenderShape.B:
        body: dict[str, Any] = {"taskId": render_id, "status": status, "progress": progress}
        if status == "completed":
            output: dict[str, Any] = {
                "duration": fake.video_facts.duration,
                "size": fake.video_size,
            }
            if url:
                output["url"] = url
            body["output"] = output
        if error is not None:
            body["error"] = error
        return body
    errors: list[dict[str, Any]] = []
    if error is not None:
        errors.append({"message": error, "isFatal": True, "willRetry": False})
    elif poll >= 2:  # Remotion reports retried chunks; they are not failures
        errors.append(
            {"message": "Chunk 1 timed out, retrying", "isFatal": False, "willRetry": True}
        )
    return {
        "done": status == "completed",
        "overallProgress": progress / 100,
        "outputFile": url,
        "fatalErrorEncountered": error is not None,
        "errors": errors,
    }


def _ready(draft: dict[str, Any]) -> bool:
    """A draft is ready to export when some track has segments (nemo-api.md, State)."""
    tracks = draft.get("t")
    return isinstance(tracks, list) and any(
        isinstance(track, dict) and track.get("sg") for track in tracks
    )


def _validation(kind: str, location: list[str], message: str) -> dict[str, Any]:
    """FastAPI's 422 body."""
    return {"detail": [{"type": kind, "loc": location, "msg": message}]}


def _file_type(filename: str) -> str:
    return SUPPORTED.get(filename.rsplit(".", 1)[-1].lower(), "unknown")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _probe(video: Path) -> VideoFacts:
    """The video's duration and size, so uploads and drafts describe what is served."""
    stat = video.stat()
    return _probe_once(video.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _probe_once(video: Path, size: int, mtime: int) -> VideoFacts:
    # Cached by size and mtime: tests start a fake per test, mostly with the same clip.
    try:
        from nemowatch.probe import probe

        found = probe(video)
    except Exception:  # not a video: the fake still serves it, with made-up facts
        return VideoFacts()
    stream = found.video
    if stream is None:
        return VideoFacts(duration=found.duration)
    return VideoFacts(
        duration=round(found.duration, 3),
        width=stream.width or 160,
        height=stream.height or 120,
        fps=stream.fps or 25.0,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve the fake until interrupted; print only its base URL."""
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m tests.fakes.nemo_server VIDEO.mp4", file=sys.stderr)
        return 2
    with FakeNemo(video=Path(arguments[0])) as fake:
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
