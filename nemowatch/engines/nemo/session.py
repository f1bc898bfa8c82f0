"""Opening a NemoVideo editing session: `POST /api/tasks/me/with-session/nemo_agent`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nemowatch.engines.nemo.client import CallKind, NemoClient
from nemowatch.errors import EngineError

SESSION_PATH = "/api/tasks/me/with-session/nemo_agent"
TASK_NAME = "project"  # as the API reference writes it


@dataclass(frozen=True)
class OpenedSession:
    task_id: str | None
    session_id: str
    user_id: str | None = None


def parse_session(data: Any) -> OpenedSession:
    """The ids in the answer's `data` (the session id is a numeric string; ints too). Pure."""
    if not isinstance(data, dict):
        raise EngineError("NemoVideo's new-session answer is not an object", retryable=True)
    session_id = data.get("session_id", data.get("sessionId"))
    if session_id is None or str(session_id).strip() == "":
        raise EngineError("NemoVideo's new-session answer has no session_id", retryable=True)
    task_id = data.get("task_id", data.get("taskId"))
    user_id = data.get("user_id", data.get("userId"))
    return OpenedSession(
        task_id=str(task_id) if task_id is not None else None,
        session_id=str(session_id),
        user_id=str(user_id) if user_id else None,
    )


async def create_session(client: NemoClient, *, language: str) -> OpenedSession:
    data = await client.request_json(
        CallKind.SESSION,
        "POST",
        SESSION_PATH,
        what="create a session",
        json={"task_name": TASK_NAME, "language": language},
    )
    return parse_session(data)
