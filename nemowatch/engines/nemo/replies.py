"""NemoVideo's replies as models: every published form of each answer, parsed in one place.

Each model accepts every variant nemo-api.md lists for its endpoint: camelCase and
snake_case keys (`session_id`/`sessionId`), numbers written as strings (`"12.5"`), ids
written as numbers, the three render-status shapes, a draft sent as a JSON string. What
is not documented but harmless (unknown keys, a garbled number) is ignored, as before;
what leaves nothing to act on (no session id, no token, no file) raises `UnexpectedReply`,
whose message names the endpoint and the field.

Envelopes are unwrapped before these models see an answer (`errors.payload`); the models
describe the `data` inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from nemowatch.engines.nemo.errors import UnexpectedReply

M = TypeVar("M", bound="Reply")


def _number(value: Any) -> float | None:
    """A number, also when written as a string; None for null, booleans and garbage."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    """A string, also from a number (ids come as both); None for null and ""."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return str(value) if str(value) != "" else None
    raise ValueError("is not text")


def _object_or_none(value: Any) -> Any:
    """An object that is sometimes written as something else (ignored, as before)."""
    return value if isinstance(value, Mapping) else None


def _object_or_empty(value: Any) -> Any:
    return value if isinstance(value, Mapping) else {}


Number = Annotated[float | None, BeforeValidator(_number)]
Text = Annotated[str | None, BeforeValidator(_text)]


def _aliases(*names: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*names))


class Reply(BaseModel):
    """Base of every reply model: unknown keys ignored, frozen once parsed."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- auth, session, credits


class TokenReply(Reply):
    """`POST /api/auth/anonymous-token` -> `data`."""

    token: str = Field(min_length=1)
    user_id: Text = _aliases("user_id", "userId")
    expires_at: Text = _aliases("expires_at", "expiresAt")
    credits: Number = None


class StoredToken(Reply):
    """`nemo-auth.json` in the state directory (every field may be missing)."""

    client_id: Text = None
    token: Text = None
    user_id: Text = None
    expires_at: Text = None


class SessionReply(Reply):
    """`POST /api/tasks/me/with-session/nemo_agent` -> `data` (the session id is a numeric
    string; ints too)."""

    session_id: Text = Field(validation_alias=AliasChoices("session_id", "sessionId"))
    task_id: Text = _aliases("task_id", "taskId")
    user_id: Text = _aliases("user_id", "userId")

    @field_validator("session_id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str:
        if value is None or not value.strip():
            raise ValueError("is missing")
        return value


class CreditsReply(Reply):
    """`GET /api/credits/balance/simple` -> `data`."""

    available: Number = None
    frozen: Number = None
    total: Number = None


# ---------------------------------------------------------------- upload


class UploadedFile(Reply):
    """One entry of `data.files[]`."""

    filename: Text = None
    file_type: Text = _aliases("file_type", "fileType")
    cdn_url: Text = _aliases("cdn_url", "cdnUrl")
    duration: Number = None
    width: Number = None
    height: Number = None
    fps: Number = None
    hash: Text = None


class UploadReply(Reply):
    """`POST /api/upload-video/nemo_agent/me/<sid>` -> `data`."""

    files: list[UploadedFile] = Field(min_length=1)
    session_state_applied: bool | None = _aliases("session_state_applied", "sessionStateApplied")


# ---------------------------------------------------------------- state


class StateReply(Reply):
    """`GET /api/state/nemo_agent/me/<sid>/latest` -> `data`: the draft in
    `data.state.draft` (an object, a JSON string, empty or absent; `state` itself may be
    left out, the state's keys then sit in `data`)."""

    draft: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _the_state(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "state" in data:
            state = data["state"]
            return {} if state is None else state
        return data

    @field_validator("draft", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("is not valid JSON") from None
        return value


def _objects(value: Any) -> list[Any]:
    """The objects of a list (other items, or a list that is not one, left out)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


class DraftReply(Reply):
    """A draft as NemoVideo writes it: `t` tracks (each with `tt` and `sg` segments), `d`
    milliseconds, `m` metadata; missing, null or odd keys read as empty."""

    tracks: Annotated[list[dict[str, Any]], BeforeValidator(_objects)] = Field(
        default_factory=list, validation_alias="t"
    )
    duration_ms: Number = Field(default=None, validation_alias="d")
    metadata: Annotated[dict[str, Any], BeforeValidator(_object_or_empty)] = Field(
        default_factory=dict, validation_alias="m"
    )

    @property
    def ready(self) -> bool:
        """A draft can be exported when some track has segments."""
        return any(track.get("sg") for track in self.tracks)


# ---------------------------------------------------------------- render


class RenderOutput(Reply):
    """`output` of a poll (shape B) or of a /download answer."""

    url: Text = None
    duration: Number = None
    size: Number = None


class RenderProblem(Reply):
    """One entry of Remotion's `errors[]` (a plain string is a fatal one)."""

    message: Text = None
    name: Text = None
    is_fatal: bool | None = _aliases("isFatal", "is_fatal")
    will_retry: bool | None = _aliases("willRetry", "will_retry")

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        return data if isinstance(data, Mapping) else {"message": data}

    @property
    def fatal(self) -> bool:
        return self.is_fatal is not False and self.will_retry is not True

    @property
    def text(self) -> str:
        return self.message or self.name or "render error"


def _error_text(value: Any) -> str | None:
    """`error` as text: a string, `{message|error}`, or a list of either."""
    if not value:
        return None
    if isinstance(value, Mapping):
        return str(value.get("message") or value.get("error") or value)
    if isinstance(value, list):
        texts = [_error_text(item) for item in value]
        return "; ".join(text for text in texts if text) or None
    return str(value)


class RenderReply(Reply):
    """A render's poll answer, or a /download answer holding a link, in any published shape:
    A `{id, status, progress, outputUrl}` (inside the `success` envelope), B `{taskId,
    status, progress, output: {url, duration, size}}`, C Remotion's `{done,
    overallProgress, outputFile, fatalErrorEncountered, errors[]}`."""

    status: Text = None
    progress: Number = None
    overall_progress: Number = _aliases("overallProgress", "overall_progress")
    output_url: Text = _aliases("outputUrl", "output_url")
    output: Annotated[RenderOutput | None, BeforeValidator(_object_or_none)] = None
    output_file: Text = _aliases("outputFile", "output_file")
    url: Text = None
    output_size: Number = _aliases("outputSizeInBytes", "output_size_in_bytes")
    session_id: Text = _aliases("sessionId", "session_id")
    done: bool | None = None
    fatal_error: bool | None = _aliases("fatalErrorEncountered", "fatal_error_encountered")
    error_text: Annotated[str | None, BeforeValidator(_error_text)] = Field(
        default=None, validation_alias="error"
    )
    problems: Annotated[list[RenderProblem], BeforeValidator(lambda value: value or [])] = Field(
        default_factory=list, validation_alias="errors"
    )

    @property
    def link(self) -> str | None:
        """The finished video's URL, wherever this shape puts it."""
        output_url = self.output.url if self.output is not None else None
        return self.output_url or output_url or self.output_file or self.url

    @property
    def percent(self) -> float | None:
        """`progress` in percent (Remotion's `overallProgress` is 0-1)."""
        if self.progress is None and self.overall_progress is not None:
            overall = self.overall_progress
            return overall * 100 if overall <= 1 else overall
        return self.progress

    @property
    def size(self) -> int | None:
        size = (self.output.size if self.output is not None else None) or self.output_size
        return int(size) if size else None

    @property
    def duration(self) -> float | None:
        return self.output.duration if self.output is not None else None

    @property
    def fatal_problems(self) -> list[str]:
        return [problem.text for problem in self.problems if problem.fatal]


# ---------------------------------------------------------------- /run_sse events


class FunctionCall(Reply):
    id: Any = None
    name: Text = None
    args: Any = None


class FunctionResponse(Reply):
    id: Any = None
    name: Text = None


class EventPart(Reply):
    text: str | None = None
    thought: bool | None = None
    function_call: FunctionCall | None = _aliases("functionCall", "function_call")
    function_response: FunctionResponse | None = _aliases("functionResponse", "function_response")


class EventContent(Reply):
    role: Text = None
    parts: Annotated[list[EventPart], BeforeValidator(lambda value: value or [])] = Field(
        default_factory=list
    )


class AgentReply(Reply):
    """One ADK event of the /run_sse stream (camelCase, or snake_case), or an error frame."""

    type: Text = None
    author: Text = None
    partial: bool | None = None
    error_code: Any = _aliases("errorCode", "error_code")
    error_message: Any = _aliases("errorMessage", "error_message")
    error: Any = None
    content: Annotated[EventContent | None, BeforeValidator(_object_or_none)] = None


# ---------------------------------------------------------------- parsing


def parse(model: type[M], data: Any, *, endpoint: str) -> M:
    """`data` as `model`, or `UnexpectedReply` naming `endpoint` and the first bad field.

    The input is never quoted: it may hold a token."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise unexpected(endpoint, error.errors(include_input=False)[0]) from None


def unexpected(endpoint: str, detail: ErrorDetails) -> UnexpectedReply:
    """The error for one pydantic error detail: "<field> is missing", "... is not ..."."""
    location = ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "missing":
        problem = "is missing"
    elif detail["type"] in ("model_type", "model_attributes_type", "dict_type"):
        problem = "is not an object"
    elif detail["type"] == "list_type":
        problem = "is not a list"
    elif detail["type"] in ("too_short", "string_too_short"):
        problem = "is empty"
    elif detail["type"] == "value_error":
        problem = detail["msg"].removeprefix("Value error, ")
    else:
        problem = f"is not what the API documents ({detail['msg'].lower()})"
    return UnexpectedReply(endpoint, location or "the answer", problem)
