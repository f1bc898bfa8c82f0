"""NemoVideo's answers and httpx's failures, translated into nemowatch's one exception tree.

The only module that reads HTTP statuses, envelope codes, FastAPI ``detail`` bodies and
httpx exceptions. nemo-api.md's table, as code (the first matching row wins)::

    answer                                  raised                          caller does
    code 1001, 1010, 1011 / HTTP 401        AuthError                       renew once, retry once
    code 1002 / 404 "Session not found"     SessionLost                     new session
    code 2001                               CreditsExhausted                pause; link or top up
    code 4001                               MediaError                      fail the job
    code 4002                               MediaError (hint: compress)     fail the job
    HTTP 429                                RateLimited(TransientError)     wait Retry-After (30 s)
    HTTP 402                                EngineError                     register or upgrade
    HTTP 400 on anonymous-token             EngineError                     a bug (X-Client-Id)
    HTTP 5xx, 408                           TransientError                  back off, retry
    HTTP 504                                MaybeDelivered(TransientError)  as 5xx; never re-send
    connect / pool errors                   RequestNotSent(TransientError)  retry: never arrived
    timeouts, resets, dropped streams       MaybeDelivered(TransientError)  retry reads only
    HTTP 409 / "already exists"             DuplicateId(EngineError)        render: next id
    other 404 / "not found"                 NotFound(EngineError)           render: unknown id
    other codes, `success: false`           EngineError(retryable=True)     fail; retry later
    a success of an undocumented shape      UnexpectedReply(EngineError)    fail; retry later
    other 4xx (400, 422, ...)               EngineError                     fail: our bug

The subclasses defined here stay inside the tree, so code outside the engine only sees the
parents. Envelopes are unwrapped in the documented order: HTTP status first, then the
``code`` envelope, the ``success`` envelope, FastAPI's lone ``detail``, else a bare body.
Messages never contain the token: only the server's own words (scrubbed of anything that
looks like one), never request headers.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import httpx
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from nemowatch.errors import (
    AuthError,
    CreditsExhausted,
    EngineError,
    MediaError,
    NemowatchError,
    SessionLost,
    TransientError,
)
from nemowatch.errors import RateLimited as AnyRateLimited

REGISTER_URL = "https://nemovideo.com/register"
RATE_LIMIT_DEFAULT = 30.0  # seconds to wait on a 429 without a usable Retry-After
AUTH_CODES = frozenset({1001, 1010, 1011})
MESSAGE_LIMIT = 300  # characters of a server's message kept in ours


class RateLimited(AnyRateLimited):
    """HTTP 429 from NemoVideo: wait `retry_after` seconds, then try once more."""


class RequestNotSent(TransientError):
    """The request never reached the server (connect failure): sending it again is safe."""


class MaybeDelivered(TransientError):
    """The server may have received the request (timeout, reset, dropped stream, 504)."""


class NotFound(EngineError):
    """The API does not know what was asked for (e.g. a render id never submitted)."""


class DuplicateId(EngineError):
    """The id is taken (a render id submitted before)."""


class UnexpectedReply(EngineError):
    """A successful answer in a shape nemo-api.md does not document (replies.py finds it):
    the message names the endpoint and the field. Retryable: a later answer may be whole."""

    def __init__(self, endpoint: str, field: str, problem: str) -> None:
        super().__init__(f"NemoVideo's {endpoint} answer: {field} {problem}", retryable=True)
        self.endpoint = endpoint
        self.field = field


@dataclass(frozen=True)
class Account:
    """Who is asking, for messages that tell the user what to do."""

    user_id: str | None = None
    anonymous: bool = False


@dataclass(frozen=True)
class Call:
    """What was being done, for messages ("create a session"), and how to read refusals."""

    what: str
    account: Account = Account()
    token_request: bool = False  # POST /api/auth/anonymous-token: a 400 is our bug
    secrets: tuple[str, ...] = ()  # text to scrub from server messages (the token)

    def __repr__(self) -> str:  # never show the secrets, even in a traceback's locals
        return f"Call(what={self.what!r}, account={self.account!r})"


def registration_link(user_id: str | None) -> str:
    return f"{REGISTER_URL}?bind={user_id}" if user_id else REGISTER_URL


_TOKEN_LIKE = re.compile(r"(nmv_[A-Za-z0-9_\-.]{6,}|Bearer\s+\S+)", re.IGNORECASE)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without anything that is, or looks like, a token."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[token]")
    return _TOKEN_LIKE.sub("[token]", text)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header: a number of seconds, or an HTTP date
    (measured against `now`; without it, the default). Missing or garbled: 30 s."""
    if not value:
        return RATE_LIMIT_DEFAULT
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return RATE_LIMIT_DEFAULT
    if now is None:
        return RATE_LIMIT_DEFAULT
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _as_code(value: Any) -> int | None:
    """An envelope code: a number, or digits in a string; anything else is no code."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


class Envelope(BaseModel):
    """What any answer may wrap its data or its refusal in: the `code` envelope (`code`,
    `message`, `data`), the `success` envelope (`success`, `data`, `error`), FastAPI's
    `detail`, or a few near variants (`msg`, `errorMessage`). Every field is optional and
    any value is accepted: an error body is read for whatever it holds."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: Annotated[int | None, BeforeValidator(_as_code)] = None
    success: Any = None  # only `true` is a success
    data: Any = None
    message: Any = None
    msg: Any = None
    error_message: Any = Field(None, validation_alias=AliasChoices("errorMessage", "error_message"))
    error: Any = None
    detail: Any = None

    @classmethod
    def of(cls, body: Any) -> Envelope | None:
        """The envelope of a JSON object; None for anything else (text, a list)."""
        return cls.model_validate(body) if isinstance(body, Mapping) else None

    def has(self, name: str) -> bool:
        """Whether the answer had this key at all (even as null)."""
        return name in self.model_fields_set

    @property
    def any_code(self) -> int | None:
        """`code`, or the code inside an `error` object."""
        inner = Envelope.of(self.error)
        return self.code if self.code is not None or inner is None else inner.code

    def words(self) -> str:
        """The server's own words: `message`, `msg`, `errorMessage`, `error`, `detail`
        (an object's own words; FastAPI's validation list as `loc: msg; ...`)."""
        for value in (self.message, self.msg, self.error_message, self.error, self.detail):
            if isinstance(value, str) and value.strip():
                return value.strip()
            inner = Envelope.of(value)
            if inner is not None and inner.words():
                return inner.words()
            if isinstance(value, list) and value:
                return "; ".join(piece for piece in map(_problem_text, value) if piece)
        return ""


class _Problem(BaseModel):
    """One of FastAPI's validation errors: `{"loc": [...], "msg": "...", "type": "..."}`."""

    loc: list[Any] = Field(default_factory=list)
    msg: Any = ""


def _problem_text(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    try:
        problem = _Problem.model_validate(item)
    except ValidationError:
        return str(item)
    location = ".".join(str(part) for part in problem.loc)
    return f"{location}: {problem.msg}" if location else str(problem.msg)


def _message_of(body: Any) -> str:
    """The server's own words in an answer (the text itself, when it is not JSON)."""
    if isinstance(body, str):
        return body.strip()
    envelope = Envelope.of(body)
    return envelope.words() if envelope is not None else ""


def _clean(message: str, call: Call) -> str:
    message = scrub(" ".join(message.split()), call.secrets)
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    return message


def _said(message: str) -> str:
    return f": {message}" if message else ""


_SESSION_NOT_FOUND = re.compile(r"session\s+not\s+found", re.IGNORECASE)
_DUPLICATE = re.compile(r"duplicate|already\s+(exists|in\s+use|used|submitted)", re.IGNORECASE)
_NOT_FOUND = re.compile(r"not\s+found|no\s+such|does\s+not\s+exist|unknown\s+(render|id)", re.I)


def _for_code(code: int, message: str, call: Call) -> NemowatchError | None:
    """The row of the table for an envelope code; None for codes it does not name."""
    if code in AUTH_CODES:
        return AuthError(f"NemoVideo refused the token (code {code}){_said(message)}")
    if code == 1002:
        return SessionLost(f"NemoVideo lost the session (code 1002){_said(message)}")
    if code == 2001:
        return credits_exhausted(call.account)
    if code == 4001:
        return MediaError(
            f"NemoVideo does not support this file (code 4001){_said(message)}",
            hint="convert it to MP4, or narrow the rule's `match` patterns",
        )
    if code == 4002:
        return MediaError(
            f"the file is too large for NemoVideo (code 4002){_said(message)}",
            hint="compress it or trim it (the documented limit is 500 MB), then drop it again",
        )
    return None


def credits_exhausted(account: Account) -> CreditsExhausted:
    """Out of credits: anonymous accounts are told where to register, others to top up."""
    if account.anonymous:
        link = registration_link(account.user_id)
        return CreditsExhausted(
            f"NemoVideo credits are used up: register at {link} to get more",
            hint=f"register (free) at {link}; waiting jobs stay queued and keep their files",
        )
    return CreditsExhausted(
        "NemoVideo credits are used up: top up the account to continue",
        hint="top up your NemoVideo credits; waiting jobs stay queued and keep their files",
    )


def _for_status(status: int, message: str, call: Call, retry_after: float) -> NemowatchError:
    what = call.what
    if status == 429:
        hint = (
            "NemoVideo gives one anonymous token per client every 7 days; set NEMO_TOKEN to a"
            " token from your NemoVideo account"
            if call.token_request
            else None
        )
        return RateLimited(
            f"NemoVideo is rate limiting requests ({what}){_said(message)}; it asks to wait"
            f" {retry_after:.0f} s",
            retry_after=retry_after,
            hint=hint,
        )
    if status == 401:
        return AuthError(f"NemoVideo refused the token (HTTP 401){_said(message)}")
    if status == 402:
        return EngineError(
            "the free plan cannot export: register or upgrade your plan",
            hint=f"register at {registration_link(call.account.user_id)} or upgrade the plan",
        )
    if status == 404 and _SESSION_NOT_FOUND.search(message):
        return SessionLost(f"NemoVideo lost the session{_said(message)}")
    if status == 400 and call.token_request:
        return EngineError(
            "NemoVideo refused the anonymous-token request (HTTP 400): this is a bug in"
            f" nemowatch (the X-Client-Id header must be sent){_said(message)}"
        )
    if status == 504:
        return MaybeDelivered(f"NemoVideo timed out ({what}, HTTP 504){_said(message)}")
    if status >= 500 or status == 408:
        return TransientError(f"NemoVideo failed to {what} (HTTP {status}){_said(message)}")
    if status == 409 or _DUPLICATE.search(message):
        return DuplicateId(f"NemoVideo refused to {what}: the id is taken{_said(message)}")
    if status == 404:
        return NotFound(f"NemoVideo could not {what}: not found{_said(message)}")
    return EngineError(f"NemoVideo refused to {what} (HTTP {status}){_said(message)}")


def error_for(
    status: int, body: Any, call: Call, *, retry_after: float = RATE_LIMIT_DEFAULT
) -> NemowatchError | None:
    """The error an answer stands for, or None when it is a success. Pure.

    `body` is the decoded JSON (or the text, when it was not JSON).
    """
    message = _clean(_message_of(body), call)
    envelope = Envelope.of(body)
    code = envelope.any_code if envelope is not None else None
    if status >= 400:
        known = _for_code(code, message, call) if code else None
        if known is not None and status not in (401, 429):
            return known
        return _for_status(status, message, call, retry_after)
    if envelope is None:
        return None
    if envelope.has("code") and code is not None:
        if code == 0:
            return None
        known = _for_code(code, message, call)
        if known is not None:
            return known
        return _refusal(message or f"code {code}", call, code=code)
    if envelope.has("success"):
        if envelope.success is True:
            return None
        return _refusal(message or "no reason given", call, code=code)
    if envelope.model_fields_set == {"detail"} and len(body) == 1:
        if _SESSION_NOT_FOUND.search(message):
            return SessionLost(f"NemoVideo lost the session{_said(message)}")
        return EngineError(f"NemoVideo refused to {call.what}{_said(message)}")
    return None


def _refusal(message: str, call: Call, *, code: int | None) -> NemowatchError:
    """A refusal in an envelope whose code (if any) the table does not name."""
    if code is not None:
        known = _for_code(code, message, call)
        if known is not None:
            return known
    suffix = f" (code {code})" if code is not None else ""
    if _DUPLICATE.search(message):
        return DuplicateId(f"NemoVideo refused to {call.what}: the id is taken: {message}")
    if _SESSION_NOT_FOUND.search(message):
        return SessionLost(f"NemoVideo lost the session: {message}")
    if _NOT_FOUND.search(message):
        return NotFound(f"NemoVideo could not {call.what}: {message}")
    return EngineError(f"NemoVideo could not {call.what}{suffix}: {message}", retryable=True)


def payload(body: Any) -> Any:
    """The data inside a successful answer: `code` envelope, `success` envelope, bare."""
    envelope = Envelope.of(body)
    if envelope is None:
        return body
    if envelope.has("code") and envelope.any_code == 0:
        return {} if envelope.data is None else envelope.data
    if envelope.success is True:
        if envelope.has("data"):
            return {} if envelope.data is None else envelope.data
        return {key: value for key, value in body.items() if key != "success"}
    return body


def unwrap(status: int, body: Any, call: Call, *, retry_after: float = RATE_LIMIT_DEFAULT) -> Any:
    """The data of an answer, or the error it stands for, raised. Pure."""
    error = error_for(status, body, call, retry_after=retry_after)
    if error is not None:
        raise error
    return payload(body)


def decode_body(content: bytes) -> Any:
    """JSON when it parses, else the text (an HTML error page, a proxy's plain text)."""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def check(response: httpx.Response, call: Call, *, now: datetime | None = None) -> Any:
    """The data of a read response, or the error it stands for, raised."""
    body = decode_body(response.content)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    data = unwrap(response.status_code, body, call, retry_after=retry_after)
    if isinstance(data, str) and response.status_code < 300 and data.strip():
        # a 2xx that is not JSON where JSON was expected: a proxy page, say
        raise EngineError(
            f"NemoVideo answered ({call.what}) with something that is not JSON:"
            f" {_clean(data, call)[:80]!r}",
            retryable=True,
        )
    return data


def from_transport(error: httpx.HTTPError, call: Call) -> TransientError:
    """A network failure as a transient error: was the request possibly delivered?"""
    kind = type(error).__name__
    where = ""
    with contextlib.suppress(RuntimeError):  # an httpx error may come without its request
        where = f" ({error.request.url.host})"
    message = f"could not reach NemoVideo to {call.what}{where}: {kind}"
    detail = _clean(str(error), call)
    if detail:
        message += f": {detail}"
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return RequestNotSent(message)
    return MaybeDelivered(message)


class LinkRefused(EngineError):
    """The rendered video's URL answered 401, 403, 404 or 410: not retried as it is (the
    download asks the render for a fresh link once, then fails)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class Incomplete(TransientError):
    """A download that ended before the whole video came: retried a few times."""


def download_refused(
    status: int, what: str, *, retry_after: float = RATE_LIMIT_DEFAULT
) -> NemowatchError:
    """A refusal from the rendered video's URL (not an API endpoint: no envelopes)."""
    if status in (401, 403, 404, 410):
        # the link expired or is not there: a fresh poll brings a fresh link, once
        return LinkRefused(f"the rendered video's link was refused (HTTP {status}, {what})")
    if status == 429:
        return RateLimited(f"the video download is rate limited ({what})", retry_after=retry_after)
    if status >= 500 or status == 408:
        return TransientError(f"the video download failed (HTTP {status}, {what})")
    return EngineError(f"the video download was refused (HTTP {status}, {what})", retryable=True)
