"""Opening a NemoVideo editing session: `POST /api/tasks/me/with-session/nemo_agent`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nemowatch.engines.nemo.client import CallKind, NemoClient
from nemowatch.engines.nemo.replies import SessionReply, parse

SESSION_PATH = "/api/tasks/me/with-session/nemo_agent"
TASK_NAME = "project"  # as the API reference writes it


@dataclass(frozen=True)
class OpenedSession:
    task_id: str | None
    session_id: str
    user_id: str | None = None


def parse_session(data: Any) -> OpenedSession:
    """The ids in the answer's `data` (the session id is a numeric string; ints too). Pure."""
    reply = parse(SessionReply, data, endpoint="new-session")
    assert reply.session_id is not None  # the model refuses an answer without one
    return OpenedSession(task_id=reply.task_id, session_id=reply.session_id, user_id=reply.user_id)


async def create_session(client: NemoClient, *, language: str) -> OpenedSession:
    data = await client.request_json(
        CallKind.SESSION,
        "POST",
        SESSION_PATH,
        what="create a session",
        json={"task_name": TASK_NAME, "language": language},
    )
    return parse_session(data)
