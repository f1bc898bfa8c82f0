"""What the fake NemoVideo server breaks, on request, and where.

A test arms a fault for the next N requests to one endpoint (`faults.next(...)`) or for
every request with a probability drawn from a seeded RNG (`faults.sometimes(...)`); the
server takes armed faults at fixed points of each request:

- SLOW: a delay before anything else; the request then goes on normally.
- ANSWER: instead of processing the request, answer HTTP `status` with the JSON `body`
  and `headers` given (any published error form; a 429 without Retry-After).
- LOST_ANSWER: process the request (the instruction lands, the render is accepted), then
  answer HTTP `status` instead: a proxy's error after the backend did the work.
- RESET, SERVER_ERROR, RATE_LIMIT (transient): before the request is processed, so a
  retry by the client is safe and the books stay honest. RESET reads `after_bytes` of the
  body, then closes the socket with an RST.
- EXPIRED_TOKEN, LOST_SESSION, NO_CREDITS: real state changes (the token expires, the
  session is forgotten, the caller's credits drop to 0), answered as the API would.
- UNSUPPORTED_MEDIA, MEDIA_TOO_LARGE: an upload is read to its end, then refused.
- STALL, DROP_STREAM, ERROR_FRAME, MODEL_ERROR: on /run_sse only. DROP_STREAM happens
  after the instruction was applied to the draft (the client must read state, not
  re-send).
- RENDER_FAILED: at submit (the render fails `after_polls` polls later) or at a poll
  (the render fails now).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypedDict, Unpack


class Endpoint(StrEnum):
    TOKEN = "token"  # POST /api/auth/anonymous-token
    SESSION = "session"  # POST /api/tasks/me/with-session/nemo_agent
    UPLOAD = "upload"  # POST /api/upload-video/nemo_agent/me/<sid>
    RUN_SSE = "run_sse"  # POST /run_sse
    STATE = "state"  # GET /api/state/nemo_agent/me/<sid>/latest
    CREDITS = "credits"  # GET /api/credits/balance/simple
    RENDER_SUBMIT = "render_submit"  # POST /api/render/proxy/lambda
    RENDER_POLL = "render_poll"  # GET /api/render/proxy/lambda/<id>
    DOWNLOAD = "download"  # GET /api/render/proxy/<id>/download
    FILES = "files"  # GET /files/<id>.mp4 (the rendered video's URL, no auth)


class Fault(StrEnum):
    SLOW = "slow"  # `delay` seconds before answering
    ANSWER = "answer"  # HTTP `status` with `body` and `headers`, the request not processed
    LOST_ANSWER = "lost_answer"  # processed, then answered HTTP `status` instead
    RESET = "reset"  # read `after_bytes` of the body, then reset the connection
    SERVER_ERROR = "server_error"  # HTTP `status` (5xx) with a JSON body
    RATE_LIMIT = "rate_limit"  # HTTP 429 with Retry-After: `retry_after`
    EXPIRED_TOKEN = "expired_token"  # the presented token expires now: 1001 / HTTP 401
    LOST_SESSION = "lost_session"  # the session is forgotten: 1002 / 404 detail
    NO_CREDITS = "no_credits"  # the caller's credits drop to 0: 2001
    UNSUPPORTED_MEDIA = "unsupported_media"  # upload refused with 4001
    MEDIA_TOO_LARGE = "media_too_large"  # upload refused with 4002
    STALL = "stall"  # SSE: `delay` s of silence (with `heartbeats` keep-alives) first
    DROP_STREAM = "drop_stream"  # SSE: applied, then cut after `after_events` events
    ERROR_FRAME = "error_frame"  # SSE: after `after_events` events, data: {"error": ...}
    MODEL_ERROR = "model_error"  # SSE: after `after_events`, an errorCode/errorMessage event
    RENDER_FAILED = "render_failed"  # the render ends `failed` with `message`
    # the video (DOWNLOAD, FILES): its whole length announced, `after_bytes` sent, then the
    # connection closed (FIN): a download cut short
    TRUNCATE = "truncate"


class FaultOptions(TypedDict, total=False):
    """How a fault behaves; each applies to the faults named in its comment."""

    status: int  # SERVER_ERROR, ANSWER, LOST_ANSWER
    body: Any  # ANSWER (JSON)
    headers: dict[str, str]  # ANSWER
    retry_after: float  # RATE_LIMIT (sent as whole seconds, rounded up)
    delay: float  # SLOW, STALL
    heartbeats: int  # STALL
    after_bytes: int  # RESET, TRUNCATE
    after_events: int  # DROP_STREAM, ERROR_FRAME, MODEL_ERROR
    after_polls: int  # RENDER_FAILED armed on RENDER_SUBMIT
    message: str  # ERROR_FRAME, MODEL_ERROR, RENDER_FAILED
    apply: bool  # ERROR_FRAME, MODEL_ERROR: whether the instruction landed anyway


@dataclass
class FaultRule:
    """One armed fault. `remaining` None means until cleared; `fired` counts uses."""

    fault: Fault
    endpoint: Endpoint | None  # None: any endpoint where this fault can happen
    remaining: int | None = 1
    probability: float = 1.0
    status: int = 503
    retry_after: float = 1.0
    delay: float = 0.2
    heartbeats: int = 2
    after_bytes: int = 64 * 1024
    after_events: int = 2
    after_polls: int = 1
    message: str = 'Agent failed: tool "edit_timeline" raised an error'
    apply: bool = False
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    fired: int = field(default=0)


class Faults:
    """Armed faults, shared between the test thread and the server's threads."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)
        self._fired: list[tuple[Fault, Endpoint]] = []

    def next(
        self,
        fault: Fault,
        endpoint: Endpoint | None = None,
        *,
        times: int = 1,
        **options: Unpack[FaultOptions],
    ) -> FaultRule:
        """Break the next `times` requests to `endpoint` (any endpoint when None)."""
        return self._add(FaultRule(fault, endpoint, remaining=times, **options))

    def sometimes(
        self,
        fault: Fault,
        endpoint: Endpoint | None = None,
        *,
        probability: float,
        times: int | None = None,
        **options: Unpack[FaultOptions],
    ) -> FaultRule:
        """Break each request to `endpoint` with `probability` (seeded), at most `times`."""
        return self._add(
            FaultRule(fault, endpoint, remaining=times, probability=probability, **options)
        )

    def clear(self) -> None:
        """Disarm every fault (what already fired stays in `fired`)."""
        with self._lock:
            self._rules.clear()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._random.seed(seed)

    @property
    def armed(self) -> list[FaultRule]:
        """Copies of the faults still armed."""
        with self._lock:
            return [replace(rule) for rule in self._rules]

    @property
    def fired(self) -> list[tuple[Fault, Endpoint]]:
        """Every fault that happened, in order, with the endpoint it hit."""
        with self._lock:
            return list(self._fired)

    def take(self, endpoint: Endpoint, *faults: Fault) -> FaultRule | None:
        """The first armed rule for one of `faults` at `endpoint` that fires now, used up.

        Called by the server at the point of a request where those faults can happen.
        Returns a copy, so the caller reads its options without holding the lock.
        """
        with self._lock:
            for rule in self._rules:
                if rule.fault not in faults or rule.endpoint not in (None, endpoint):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                self._fired.append((rule.fault, endpoint))
                return replace(rule)
        return None

    def _add(self, rule: FaultRule) -> FaultRule:
        where = WHERE.get(rule.fault)
        if where is not None and rule.endpoint is not None and rule.endpoint not in where:
            names = ", ".join(sorted(where))
            raise ValueError(f"{rule.fault} never happens on {rule.endpoint}, only on {names}")
        if rule.fault is Fault.DROP_STREAM:
            rule.apply = True  # the point of this fault: the edit landed, the stream did not
        with self._lock:
            self._rules.append(rule)
        return rule


_AUTHED = frozenset(Endpoint) - {Endpoint.TOKEN, Endpoint.FILES}
_SSE = frozenset({Endpoint.RUN_SSE})
# Where each fault can happen (absent: anywhere), so a mistyped test fails loudly instead
# of arming a fault that never fires.
WHERE: dict[Fault, frozenset[Endpoint]] = {
    Fault.EXPIRED_TOKEN: _AUTHED,
    Fault.LOST_SESSION: frozenset(
        {Endpoint.UPLOAD, Endpoint.RUN_SSE, Endpoint.STATE, Endpoint.RENDER_SUBMIT}
    ),
    Fault.NO_CREDITS: _SSE,
    Fault.UNSUPPORTED_MEDIA: frozenset({Endpoint.UPLOAD}),
    Fault.MEDIA_TOO_LARGE: frozenset({Endpoint.UPLOAD}),
    Fault.STALL: _SSE,
    Fault.DROP_STREAM: _SSE,
    Fault.ERROR_FRAME: _SSE,
    Fault.MODEL_ERROR: _SSE,
    Fault.RENDER_FAILED: frozenset({Endpoint.RENDER_SUBMIT, Endpoint.RENDER_POLL}),
}
