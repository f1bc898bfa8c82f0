"""A session's state: `GET /api/state/nemo_agent/me/<sid>/latest` -> its draft.

The fingerprint (SHA-256 of the draft's canonical JSON) is the edit checkpoint: read before
an instruction is sent and compared after, it tells whether the instruction landed without
sending it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from nemowatch.engines.base import JSON, Draft
from nemowatch.engines.nemo.client import CallKind, NemoClient
from nemowatch.engines.nemo.replies import DraftReply, StateReply, parse


def state_path(session_id: str) -> str:
    return f"/api/state/nemo_agent/me/{session_id}/latest"


def fingerprint(draft: dict[str, Any]) -> str:
    """A stable digest of a draft: key order and whitespace do not matter. Pure."""
    canonical = json.dumps(draft, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def ready_to_export(draft: dict[str, Any]) -> bool:
    """A draft can be exported when some track has segments. Pure."""
    return DraftReply.model_validate(draft).ready


def to_draft(raw: dict[str, Any]) -> Draft:
    """NemoVideo's draft as a `Draft`, tolerating missing or null `t`, `d`, `m`. Pure."""
    read = DraftReply.model_validate(raw)
    tracks: list[JSON] = [*read.tracks]
    return Draft.from_json({"t": tracks, "d": read.duration_ms, "m": read.metadata})


@dataclass(frozen=True)
class SessionState:
    """What `/latest` says about a session; `raw_draft` is the draft as NemoVideo wrote it."""

    raw_draft: dict[str, Any] = field(default_factory=dict)

    @property
    def draft(self) -> Draft:
        return to_draft(self.raw_draft)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw_draft)

    @property
    def ready(self) -> bool:
        return ready_to_export(self.raw_draft)


def parse_state(data: Any) -> SessionState:
    """The draft in `data.state.draft` (an object, a JSON string, or absent). Pure."""
    draft = parse(StateReply, data, endpoint="session state").draft
    return SessionState() if draft is None else SessionState(raw_draft=draft)


async def read_state(client: NemoClient, session_id: str) -> SessionState:
    data = await client.request_json(
        CallKind.STATE, "GET", state_path(session_id), what="read the session state"
    )
    return parse_state(data)
