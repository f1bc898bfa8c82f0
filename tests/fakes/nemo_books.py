"""What happened on the fake NemoVideo server, for tests to assert on.

Written by the server's threads, read by the test thread: every read returns a copy. The
request log never holds a token (only whether one came, and its SHA-256), so a test can
scan logs and reports for the token and trust a miss.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.nemo_faults import Endpoint, Fault


@dataclass(frozen=True)
class IssuedToken:
    client_id: str
    user_id: str
    issued_at: float  # the fake's clock
    expires_at: float
    token: str = field(repr=False)  # kept out of repr: a failing assert must not print it


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    task_id: str
    user_id: str
    body: dict[str, Any]  # what the client sent (task_name, language)


@dataclass(frozen=True)
class UploadRecord:
    session_id: str
    filename: str
    size: int  # bytes of the file part (0 for a URL)
    sha256: str  # of the file part's bytes (of the URL for a URL)
    file_type: str  # video, image, audio
    via: Literal["multipart", "url"]


@dataclass(frozen=True)
class InstructionRecord:
    session_id: str
    text: str
    applied: bool  # the draft changed and credits were charged
    outcome: str  # applied, dropped, error_frame, model_error, no_credits
    revision: int | None  # the draft revision it produced, when applied


@dataclass(frozen=True)
class RenderRecord:
    render_id: str
    session_id: str
    accepted: bool
    outcome: str  # accepted, duplicate, blocked (402), empty_draft
    draft: dict[str, Any]
    output: dict[str, Any]


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the query string
    endpoint: Endpoint | None
    status: int | None  # None: the fake reset the connection instead of answering
    headers: dict[str, str]  # lower-case names; Authorization left out
    has_token: bool  # an `Authorization: Bearer ...` header came
    token_sha256: str | None
    fault: Fault | None  # the fault that shaped this answer, if any
    body_bytes: int

    def attribution(self) -> tuple[str | None, str | None, str | None]:
        """(X-Skill-Source, X-Skill-Version, X-Skill-Platform) as sent."""
        return (
            self.headers.get("x-skill-source"),
            self.headers.get("x-skill-version"),
            self.headers.get("x-skill-platform"),
        )


class Books:
    """The fake's ledger of everything clients did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, list[IssuedToken]] = {}
        self._sessions: list[SessionRecord] = []
        self._uploads: dict[str, list[UploadRecord]] = {}
        self._instructions: dict[str, list[InstructionRecord]] = {}
        self._renders: dict[str, list[RenderRecord]] = {}
        self._polls: dict[str, int] = {}
        self._requests: list[RequestRecord] = []
        self._server_errors: list[str] = []

    @property
    def tokens(self) -> dict[str, list[IssuedToken]]:
        """Anonymous tokens issued, by client id."""
        with self._lock:
            return {client: list(items) for client, items in self._tokens.items()}

    @property
    def sessions(self) -> list[SessionRecord]:
        with self._lock:
            return list(self._sessions)

    @property
    def uploads(self) -> dict[str, list[UploadRecord]]:
        """Files accepted, by session id."""
        with self._lock:
            return {session: list(items) for session, items in self._uploads.items()}

    @property
    def instructions(self) -> dict[str, list[InstructionRecord]]:
        """Every instruction received, by session id, in order (refused ones too)."""
        with self._lock:
            return {session: list(items) for session, items in self._instructions.items()}

    @property
    def renders(self) -> dict[str, list[RenderRecord]]:
        """Every render submission, by session id, in order (refused ones too)."""
        with self._lock:
            return {session: list(items) for session, items in self._renders.items()}

    @property
    def polls(self) -> dict[str, int]:
        """Poll count by render id."""
        with self._lock:
            return dict(self._polls)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def server_errors(self) -> list[str]:
        """Exceptions inside the fake (a bug in the fake, or a client it could not parse)."""
        with self._lock:
            return list(self._server_errors)

    def applied_instructions(self, session_id: str) -> list[str]:
        """The texts that changed `session_id`'s draft, in order."""
        with self._lock:
            items = self._instructions.get(session_id, [])
            return [item.text for item in items if item.applied]

    def accepted_renders(self, session_id: str | None = None) -> list[str]:
        """Render ids accepted (for one session, or all), in order."""
        with self._lock:
            groups = (
                [self._renders.get(session_id, [])]
                if session_id is not None
                else list(self._renders.values())
            )
            return [item.render_id for items in groups for item in items if item.accepted]

    def upload_bytes(self, session_id: str) -> int:
        with self._lock:
            return sum(item.size for item in self._uploads.get(session_id, []))

    def requests_to(self, endpoint: Endpoint) -> list[RequestRecord]:
        with self._lock:
            return [item for item in self._requests if item.endpoint is endpoint]

    # Written by the server.

    def add_token(self, record: IssuedToken) -> None:
        with self._lock:
            self._tokens.setdefault(record.client_id, []).append(record)

    def add_session(self, record: SessionRecord) -> None:
        with self._lock:
            self._sessions.append(record)

    def add_upload(self, record: UploadRecord) -> None:
        with self._lock:
            self._uploads.setdefault(record.session_id, []).append(record)

    def add_instruction(self, record: InstructionRecord) -> None:
        with self._lock:
            self._instructions.setdefault(record.session_id, []).append(record)

    def add_render(self, record: RenderRecord) -> None:
        # The draft is copied: the caller may go on changing its own.
        record = RenderRecord(
            record.render_id,
            record.session_id,
            record.accepted,
            record.outcome,
            copy.deepcopy(record.draft),
            copy.deepcopy(record.output),
        )
        with self._lock:
            self._renders.setdefault(record.session_id, []).append(record)

    def add_poll(self, render_id: str) -> int:
        with self._lock:
            self._polls[render_id] = self._polls.get(render_id, 0) + 1
            return self._polls[render_id]

    def add_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def add_server_error(self, text: str) -> None:
        with self._lock:
            self._server_errors.append(text)
