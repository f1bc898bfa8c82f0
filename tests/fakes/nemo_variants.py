"""Which of NemoVideo's published forms the fake speaks (see docs: shared/nemo-api.md).

Where published sources disagree, the client must accept every form; each switch here
picks one form so that a test can prove the client copes with it. The defaults are the
forms the API reference shows first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorStyle(StrEnum):
    CODE = "code"  # HTTP 200 with a non-zero `code` (1001, 1002, 2001, 4001, 4002)
    HTTP = "http"  # a 4xx status with a JSON body; a lost session as FastAPI's 404 `detail`


class RenderShape(StrEnum):
    A = "a"  # {"success": true, "data": {"id", "status", "progress", "outputUrl"}}
    B = "b"  # {"taskId", "status", "progress", "output": {"url", "duration", "size"}}
    C = "c"  # Remotion: {"done", "overallProgress", "outputFile", "errors": [...]}
    ROTATE = "rotate"  # A, B, C, A, ... by poll number, so one render shows all three


class CompletedUrl(StrEnum):
    IMMEDIATE = "immediate"  # the first `completed` poll carries the URL
    LATER = "later"  # `completed` without a URL for `url_delay_polls` polls, then with it
    DOWNLOAD_ONLY = "download_only"  # polls never carry it: only /download gives the video


class DownloadForm(StrEnum):
    BYTES = "bytes"  # GET /api/render/proxy/<id>/download answers with the video itself
    JSON = "json"  # ... or with {"output": {"url": ...}}


class Heartbeat(StrEnum):
    EMPTY_DATA = "empty_data"  # "data:"
    TEXT = "text"  # "data: heartbeat"
    JSON = "json"  # 'data: {"type":"heartbeat"}'
    COMMENT = "comment"  # ":" (an SSE comment line)
    ROTATE = "rotate"  # each keep-alive the next of the four above


class TextTurns(StrEnum):
    HASH = "hash"  # about 30 % of instructions (chosen by their hash) get no text at all
    ALWAYS = "always"  # every turn ends with text
    NEVER = "never"  # every turn is tool calls only


@dataclass(frozen=True)
class Variants:
    """The published forms the fake uses; swap `FakeNemo.variants` at any time."""

    error_style: ErrorStyle = ErrorStyle.CODE
    bare_bodies: bool = False  # successful `code`-envelope answers come as their bare `data`
    render_shape: RenderShape = RenderShape.A
    render_polls: int = 4  # polls until `completed`: pending, processing (rising), completed
    completed_url: CompletedUrl = CompletedUrl.IMMEDIATE
    url_delay_polls: int = 2  # with LATER: completed polls without a URL before it appears
    download_form: DownloadForm = DownloadForm.BYTES
    files_as_json: bool = False  # the output URL answers JSON (an expired link), not video
    heartbeat: Heartbeat = Heartbeat.COMMENT  # the form of every SSE keep-alive
    heartbeats_in_turn: int = 0  # keep-alives written mid-turn (after the function call)
    snake_case_events: bool = False  # SSE event keys in snake_case instead of camelCase
    legacy_error_frame: bool = False  # the in-stream error frame unescaped (not valid JSON)
    text_turns: TextTurns = TextTurns.HASH
    event_gap: float = 0.0  # seconds between SSE events, to look like a working model
    # the anonymous-token answer names its user (False: only the session answer does)
    token_user_id: bool = True
