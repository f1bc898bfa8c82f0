"""The fake NemoVideo server behaves as shared/nemo-api.md says, spoken to with plain httpx.

These tests are the fake's specification: a client written against it can trust that each
published variant and each fault looks the way the API document describes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.harness import wait_for
from tests.fakes.http_body import BadBody, MultipartCounter
from tests.fakes.nemo_server import (
    CompletedUrl,
    DownloadForm,
    Endpoint,
    ErrorStyle,
    FakeNemo,
    Fault,
    Heartbeat,
    RenderShape,
    TextTurns,
    Variants,
)
from tests.fakes.nemo_turns import has_text

CLIENT_ID = "7f1c2a9e-client"
ATTRIBUTION = {
    "X-Skill-Source": "nemowatch",
    "X-Skill-Version": "0.1.0",
    "X-Skill-Platform": "linux",
}


@dataclass
class Api:
    """A bare-handed NemoVideo client: just enough to drive the fake."""

    fake: FakeNemo
    http: httpx.Client
    token: str = ""
    attribution: dict[str, str] = field(default_factory=lambda: dict(ATTRIBUTION))

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self.attribution, **extra}

    def ask_token(self, client_id: str = CLIENT_ID) -> httpx.Response:
        return self.http.post("/api/auth/anonymous-token", headers={"X-Client-Id": client_id})

    def login(self, client_id: str = CLIENT_ID) -> str:
        self.token = unwrap(self.ask_token(client_id))["token"]
        return self.token

    def new_session(self) -> str:
        response = self.http.post(
            "/api/tasks/me/with-session/nemo_agent",
            json={"task_name": "project", "language": "en"},
            headers=self.headers(),
        )
        return str(unwrap(response)["session_id"])

    def upload(self, session_id: str, path: Path, name: str = "clip.mp4") -> httpx.Response:
        with path.open("rb") as file:
            return self.http.post(
                f"/api/upload-video/nemo_agent/me/{session_id}",
                files={"files": (name, file, "video/mp4")},
                headers=self.headers(),
            )

    def say(self, session_id: str, text: str) -> tuple[httpx.Response, list[str]]:
        """Send one instruction; the raw SSE frames of the answer (blank-line separated)."""
        body = {
            "app_name": "nemo_agent",
            "user_id": "me",
            "session_id": session_id,
            "new_message": {"parts": [{"text": text}]},
        }
        headers = self.headers(Accept="text/event-stream")
        with self.http.stream("POST", "/run_sse", json=body, headers=headers) as response:
            raw = response.read()
        return response, frames(raw)

    def state(self, session_id: str) -> dict[str, Any]:
        response = self.http.get(
            f"/api/state/nemo_agent/me/{session_id}/latest", headers=self.headers()
        )
        return unwrap(response)["state"]  # type: ignore[no-any-return]

    def submit(
        self, session_id: str, render_id: str, draft: dict[str, Any] | None = None
    ) -> httpx.Response:
        body = {
            "id": render_id,
            "sessionId": session_id,
            "draft": draft if draft is not None else self.state(session_id)["draft"],
            "output": {"format": "mp4", "quality": "high"},
        }
        return self.http.post("/api/render/proxy/lambda", json=body, headers=self.headers())

    def poll(self, render_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/render/proxy/lambda/{render_id}", headers=self.headers())
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    def ready_session(self) -> str:
        """Logged in, a session with the video uploaded."""
        if not self.token:
            self.login()
        session_id = self.new_session()
        assert self.upload(session_id, self.fake.video).status_code == 200
        return session_id


def unwrap(response: httpx.Response) -> Any:
    """The answer's payload: `code` envelope, `success` envelope, or bare (nemo-api.md)."""
    assert response.status_code == 200, response.text
    body = response.json()
    if "code" in body:
        assert body["code"] == 0, body
        return body["data"]
    if "success" in body:
        assert body["success"] is True, body
        return body["data"]
    return body


def frames(raw: bytes) -> list[str]:
    return [block for block in raw.decode("utf-8").split("\n\n") if block]


def events(blocks: list[str]) -> list[dict[str, Any]]:
    """The JSON events among SSE frames (heartbeats and comments left out)."""
    found = []
    for block in blocks:
        if block.startswith("data: {"):
            event = json.loads(block.removeprefix("data: "))
            if event.get("type") != "heartbeat":
                found.append(event)
    return found


def final_text(found: list[dict[str, Any]]) -> str:
    """What the agent said: text parts of non-partial events, thoughts left out."""
    return "".join(
        part.get("text", "")
        for event in found
        if not event.get("partial") and "content" in event
        for part in event["content"]["parts"]
        if not part.get("thought")
    )


def instruction_with_text(wanted: bool, stem: str = "make it brighter") -> str:
    """An instruction whose turn does (or does not) end with text, by the fake's hash."""
    for index in range(200):
        text = f"{stem} #{index}"
        if has_text(text, TextTurns.HASH) is wanted:
            return text
    raise AssertionError("no such instruction")


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(clips: Any) -> Iterator[FakeNemo]:
    with FakeNemo(video=clips.basic) as server:
        yield server
    assert server.books.server_errors == []


@pytest.fixture
def api(fake: FakeNemo) -> Iterator[Api]:
    with httpx.Client(base_url=fake.base_url, timeout=10) as http:
        yield Api(fake, http)


# The whole flow.


def test_happy_path_from_token_to_downloaded_video(fake: FakeNemo, api: Api, capfd) -> None:
    capfd.readouterr()
    token = api.login()
    assert token.startswith("nmv_usr_")
    session_id = api.new_session()
    assert session_id.isdigit()

    uploaded = unwrap(api.upload(session_id, fake.video))
    assert uploaded["session_state_applied"] is True
    (info,) = uploaded["files"]
    assert info["filename"] == "clip.mp4" and info["file_type"] == "video"
    assert info["hash"] == hashlib.sha256(fake.video.read_bytes()).hexdigest()
    before = api.state(session_id)["draft"]

    response, blocks = api.say(session_id, "add background music")
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(blocks)
    assert any(
        part.get("functionCall") for e in found for part in e.get("content", {}).get("parts", [])
    )
    state = api.state(session_id)
    assert state["draft"] != before
    assert any(track["tt"] == 1 for track in state["draft"]["t"])
    assert set(state) >= {"draft", "video_infos", "generated_media", "canvas_config"}

    balance = unwrap(api.http.get("/api/credits/balance/simple", headers=api.headers()))
    assert balance["available"] == 99 and balance["total"] == 100

    submitted = unwrap(api.submit(session_id, "render_happy"))
    assert submitted == {"id": "render_happy", "status": "pending", "progress": 5}
    seen = [api.poll("render_happy")["data"] for _ in range(4)]
    assert [item["status"] for item in seen] == ["pending", "processing", "processing", "completed"]
    progress = [item["progress"] for item in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    url = seen[-1]["outputUrl"]

    video = httpx.get(url)  # no Authorization: the output URL is public
    assert video.headers["content-type"] == "video/mp4"
    assert video.content == fake.video.read_bytes()

    assert fake.books.applied_instructions(session_id) == ["add background music"]
    assert fake.books.accepted_renders(session_id) == ["render_happy"]
    assert fake.books.polls == {"render_happy": 4}
    assert fake.books.upload_bytes(session_id) == fake.video.stat().st_size
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the fake prints nothing, so never a token


def test_request_log_records_attribution_but_never_the_token(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    api.state(session_id)
    records = fake.books.requests
    assert records and all(api.token not in repr(record) for record in records)
    authed = [record for record in records if record.endpoint is not Endpoint.TOKEN]
    assert all(record.has_token for record in authed)
    assert {record.token_sha256 for record in authed} == {
        hashlib.sha256(api.token.encode()).hexdigest()
    }
    assert {record.attribution() for record in authed} == {tuple(ATTRIBUTION.values())}
    assert "authorization" not in records[-1].headers
    assert api.token not in repr(fake.books.tokens)  # repr hides issued tokens too


# Auth.


def test_anonymous_token_without_client_id_is_http_400(api: Api) -> None:
    response = api.http.post("/api/auth/anonymous-token")
    assert response.status_code == 400


def test_second_anonymous_token_for_a_client_is_429_until_the_first_expires(
    fake: FakeNemo, api: Api
) -> None:
    first = unwrap(api.ask_token())
    again = api.ask_token()
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) > 6 * 24 * 3600
    assert api.ask_token("another-client").status_code == 200

    fake.expire_tokens()
    second = unwrap(api.ask_token())
    assert second["user_id"] == first["user_id"]  # same client id, same user
    assert second["token"] != first["token"]
    assert len(fake.books.tokens[CLIENT_ID]) == 2


def test_tokens_expire_after_their_ttl_on_the_fakes_clock(clips: Any) -> None:
    clock = Clock()
    with (
        FakeNemo(video=clips.basic, clock=clock, token_ttl=60) as fake,
        httpx.Client(base_url=fake.base_url) as http,
    ):
        api = Api(fake, http)
        data = unwrap(api.ask_token())
        assert data["expires_at"] == "2025-06-15T15:07:40Z"  # clock + 60 s, ISO 8601
        api.token = data["token"]
        api.new_session()
        clock.now += 61
        response = api.http.get("/api/credits/balance/simple", headers=api.headers())
        assert response.status_code == 200 and response.json()["code"] == 1001


@pytest.mark.parametrize(
    ("style", "status", "code"), [(ErrorStyle.CODE, 200, 1001), (ErrorStyle.HTTP, 401, 1001)]
)
def test_unknown_token_is_refused_per_error_style(
    fake: FakeNemo, api: Api, style: ErrorStyle, status: int, code: int
) -> None:
    fake.variants = Variants(error_style=style)
    api.token = "nmv_usr_not-a-real-one"
    response = api.http.get("/api/credits/balance/simple", headers=api.headers())
    assert response.status_code == status
    assert response.json()["code"] == code


def test_minted_token_works_like_a_registered_user(fake: FakeNemo, api: Api) -> None:
    api.token = fake.mint_token(credits=5)
    balance = unwrap(api.http.get("/api/credits/balance/simple", headers=api.headers()))
    assert balance["available"] == 5
    assert fake.user_id(api.token).startswith("user_")


# Upload.


def test_multipart_upload_records_each_file(fake: FakeNemo, api: Api, tmp_path: Path) -> None:
    api.login()
    session_id = api.new_session()
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3" + bytes(1000))
    with fake.video.open("rb") as video, song.open("rb") as audio:
        response = api.http.post(
            f"/api/upload-video/nemo_agent/me/{session_id}",
            files=[("files", ("a.mp4", video, "video/mp4")), ("files", ("b.mp3", audio))],
            data={"note": "ignored"},
            headers=api.headers(),
        )
    files = unwrap(response)["files"]
    assert [item["file_type"] for item in files] == ["video", "audio"]
    records = fake.books.uploads[session_id]
    assert [(item.filename, item.size) for item in records] == [
        ("a.mp4", fake.video.stat().st_size),
        ("b.mp3", 1003),
    ]
    assert records[1].sha256 == hashlib.sha256(song.read_bytes()).hexdigest()
    assert len(api.state(session_id)["video_infos"]) == 2


def test_upload_by_url(fake: FakeNemo, api: Api) -> None:
    api.login()
    session_id = api.new_session()
    response = api.http.post(
        f"/api/upload-video/nemo_agent/me/{session_id}",
        json={"urls": ["https://example.com/footage/beach.mov"], "source_type": "url"},
        headers=api.headers(),
    )
    assert unwrap(response)["files"][0]["filename"] == "beach.mov"
    assert fake.books.uploads[session_id][0].via == "url"


def test_unsupported_type_is_4001_and_too_large_is_4002(clips: Any, tmp_path: Path) -> None:
    with (
        FakeNemo(video=clips.basic, upload_limit=1000) as fake,
        httpx.Client(base_url=fake.base_url) as http,
    ):
        api = Api(fake, http)
        api.login()
        session_id = api.new_session()
        text = tmp_path / "notes.txt"
        text.write_text("hello")
        assert api.upload(session_id, text, "notes.txt").json()["code"] == 4001
        too_big = api.upload(session_id, fake.video)
        assert too_big.json()["code"] == 4002
        assert "1000" not in too_big.json()["message"]  # the limit is stated in MB
        fake.variants = Variants(error_style=ErrorStyle.HTTP)
        assert api.upload(session_id, fake.video).status_code == 413
        assert fake.books.uploads == {}


def test_large_upload_streams_without_growing_the_fakes_memory(fake: FakeNemo, api: Api) -> None:
    api.login()
    session_id = api.new_session()
    boundary = "nemoBoundary7MA4YWxk"
    # Blocks end with most of a delimiter, so a naive split parser would cut the file there.
    block = bytes(1024 * 1024 - 40) + b"\r\n--" + boundary[:-1].encode() + bytes(16)
    count = 50
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    expected = hashlib.sha256()

    def body() -> Iterator[bytes]:  # generated on the fly: never 50 MB at once, here either
        yield head
        for _ in range(count):
            expected.update(block)
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = api.headers(**{"Content-Type": f"multipart/form-data; boundary={boundary}"})
    tracemalloc.start()
    try:
        response = api.http.post(
            f"/api/upload-video/nemo_agent/me/{session_id}", content=body(), headers=headers
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    (record,) = fake.books.uploads[session_id]
    assert record.size == count * len(block)
    assert record.sha256 == expected.hexdigest()
    assert peak < 8 * 1024 * 1024  # a few chunks, not the 50 MB body


def test_multipart_parser_survives_any_chunk_split() -> None:
    body = (
        b"preamble\r\n--xyz\r\n"
        b'Content-Disposition: form-data; name="files"; filename="t\xc3\xa9.mp4"\r\n\r\n'
        b"ab\r\n--xy\r\nq--xyz\r\n--xyz\r\n"
        b'Content-Disposition: form-data; name="other"\r\n\r\nvalue\r\n--xyz--\r\nepilogue'
    )
    for size in (1, 2, 3, 7, len(body)):
        counter = MultipartCounter("xyz")
        for start in range(0, len(body), size):
            counter.feed(body[start : start + size])
        first, second = counter.finish()
        assert (first.filename, first.size) == ("té.mp4", len(b"ab\r\n--xy\r\nq--xyz"))
        assert (second.name, second.filename, second.size) == ("other", None, 5)
    with pytest.raises(BadBody):
        MultipartCounter("xyz").finish()


# Editing: /run_sse.


def test_a_turn_has_previews_thoughts_tool_calls_and_an_actions_only_event(
    api: Api,
) -> None:
    session_id = api.ready_session()
    response, blocks = api.say(session_id, instruction_with_text(True))
    assert response.headers["connection"] == "close"  # no end marker: the close ends it
    assert all(block.startswith("data: {") and "\n" not in block for block in blocks)
    found = events(blocks)
    assert all("invocationId" in event for event in found)  # camelCase keys
    parts = [part for event in found for part in event.get("content", {}).get("parts", [])]
    assert any(part.get("thought") for part in parts)
    assert any("functionCall" in part for part in parts)
    assert any("functionResponse" in part for part in parts)
    assert any("content" not in event and "actions" in event for event in found)
    partials = [event for event in found if event.get("partial")]
    assert len(partials) >= 2
    previews = "".join(event["content"]["parts"][0]["text"] for event in partials)
    assert final_text(found) == previews  # counted once, from the non-partial event


def test_about_30_percent_of_turns_have_no_text(api: Api) -> None:
    share = sum(not has_text(f"instruction {n}", TextTurns.HASH) for n in range(1000)) / 1000
    assert 0.25 < share < 0.35
    session_id = api.ready_session()
    _, blocks = api.say(session_id, instruction_with_text(False))
    found = events(blocks)
    assert final_text(found) == ""
    assert any("functionCall" in str(event) for event in found)


def test_text_turns_variant_forces_text_or_silence(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    fake.variants = Variants(text_turns=TextTurns.NEVER)
    assert final_text(events(api.say(session_id, instruction_with_text(True))[1])) == ""
    fake.variants = Variants(text_turns=TextTurns.ALWAYS)
    assert final_text(events(api.say(session_id, instruction_with_text(False))[1])) != ""


def test_export_instructions_get_gui_speak(api: Api, fake: FakeNemo) -> None:
    fake.variants = Variants(text_turns=TextTurns.ALWAYS)
    session_id = api.ready_session()
    _, blocks = api.say(session_id, "export as a 60-second highlight reel")
    assert "Click Export to render your video." in final_text(events(blocks))


def test_every_instruction_changes_the_draft_and_is_booked_in_order(
    fake: FakeNemo, api: Api
) -> None:
    session_id = api.ready_session()
    texts = ["cut out silences", 'add the title "Urban Dreams"', "add music", "add music"]
    drafts = [api.state(session_id)["draft"]]
    for text in texts:
        api.say(session_id, text)
        drafts.append(api.state(session_id)["draft"])
    assert all(before != after for before, after in itertools.pairwise(drafts))
    revisions = [draft["m"]["revision"] for draft in drafts]
    assert revisions == sorted(set(revisions))
    assert {track["tt"] for track in drafts[-1]["t"]} == {0, 1, 7}
    assert all(draft["d"] == 3000 for draft in drafts)  # the served video's length
    assert fake.books.applied_instructions(session_id) == texts


def test_snake_case_variant(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(snake_case_events=True, text_turns=TextTurns.ALWAYS)
    session_id = api.ready_session()
    found = events(api.say(session_id, "add music")[1])
    assert all("invocation_id" in event and "invocationId" not in event for event in found)
    raw = json.dumps(found)
    assert "function_call" in raw and "state_delta" in raw and "functionCall" not in raw


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (Heartbeat.EMPTY_DATA, {"data:"}),
        (Heartbeat.TEXT, {"data: heartbeat"}),
        (Heartbeat.JSON, {'data: {"type":"heartbeat"}'}),
        (Heartbeat.COMMENT, {":"}),
        (Heartbeat.ROTATE, {"data:", "data: heartbeat", 'data: {"type":"heartbeat"}', ":"}),
    ],
)
def test_heartbeat_forms(fake: FakeNemo, api: Api, form: Heartbeat, expected: set[str]) -> None:
    fake.variants = Variants(heartbeat=form, heartbeats_in_turn=4)
    session_id = api.ready_session()
    _, blocks = api.say(session_id, "add music")
    beats = [block for block in blocks if not block.startswith('data: {"invocationId"')]
    assert len(beats) == 4 and set(beats) == expected


def test_errors_before_the_stream_are_plain_json(fake: FakeNemo, api: Api) -> None:
    api.login()
    missing = api.http.post("/run_sse", json={"app_name": "nemo_agent"}, headers=api.headers())
    assert missing.status_code == 422 and "detail" in missing.json()
    fake.variants = Variants(error_style=ErrorStyle.HTTP)
    response, _ = api.say("999", "add music")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


# Credits.


def test_edits_cost_credits_and_at_zero_answer_2001(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    fake.set_credits(api.token, 1)
    api.say(session_id, "add music")
    response, _ = api.say(session_id, "add a title")
    assert response.headers["content-type"] == "application/json"  # not a stream
    body = response.json()
    assert body["code"] == 2001 and body["data"]["user_id"] == fake.user_id(api.token)
    balance = unwrap(api.http.get("/api/credits/balance/simple", headers=api.headers()))
    assert balance["available"] == 0

    fake.set_credits(fake.user_id(api.token), 10)
    assert api.say(session_id, "add a title")[0].status_code == 200
    assert fake.credits(api.token) == 9
    outcomes = [item.outcome for item in fake.books.instructions[session_id]]
    assert outcomes == ["applied", "no_credits", "applied"]


def test_set_credits_for_everyone_covers_users_to_come(fake: FakeNemo, api: Api) -> None:
    fake.set_credits(None, 0)
    assert unwrap(api.ask_token())["credits"] == 0


# Export.


def test_render_without_attribution_headers_is_http_402(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    api.attribution = {}
    response = api.submit(session_id, "render_unattributed")
    assert response.status_code == 402
    assert response.json()["success"] is False
    assert fake.books.accepted_renders() == []
    assert fake.books.renders[session_id][0].outcome == "blocked"


@pytest.mark.parametrize(("style", "status"), [(ErrorStyle.CODE, 200), (ErrorStyle.HTTP, 409)])
def test_duplicate_render_id_is_refused(
    fake: FakeNemo, api: Api, style: ErrorStyle, status: int
) -> None:
    fake.variants = Variants(error_style=style)
    session_id = api.ready_session()
    assert api.submit(session_id, "render_same").status_code == 200
    again = api.submit(session_id, "render_same")
    assert again.status_code == status
    assert again.json()["success"] is False
    assert again.json()["error"].startswith("Duplicate render id")
    assert fake.books.accepted_renders(session_id) == ["render_same"]


def test_render_of_an_empty_draft_is_refused(api: Api) -> None:
    api.login()
    session_id = api.new_session()  # nothing uploaded: no segments
    response = api.submit(session_id, "render_empty")
    assert response.json() == {"success": False, "error": "Draft has no segments"}


def test_poll_shape_b(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(render_shape=RenderShape.B, render_polls=2)
    session_id = api.ready_session()
    api.submit(session_id, "render_b")
    assert api.poll("render_b") == {"taskId": "render_b", "status": "pending", "progress": 5}
    done = api.poll("render_b")
    assert done["status"] == "completed" and done["progress"] == 100
    assert done["output"]["url"].endswith("/files/render_b.mp4")
    assert done["output"]["size"] == fake.video.stat().st_size


def test_poll_shape_c_is_remotion_style_with_non_fatal_errors(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(render_shape=RenderShape.C, render_polls=3)
    session_id = api.ready_session()
    api.submit(session_id, "render_c")
    first, second, third = (api.poll("render_c") for _ in range(3))
    assert first["done"] is False and first["errors"] == []
    assert second["overallProgress"] == 0.5
    assert second["errors"][0]["isFatal"] is False and second["errors"][0]["willRetry"]
    assert third["done"] is True and third["outputFile"].endswith("/files/render_c.mp4")
    assert third["fatalErrorEncountered"] is False


def test_rotating_shapes_show_a_b_and_c_for_one_render(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(render_shape=RenderShape.ROTATE)
    session_id = api.ready_session()
    api.submit(session_id, "render_rotate")
    shapes = [api.poll("render_rotate") for _ in range(3)]
    assert "success" in shapes[0] and "taskId" in shapes[1] and "done" in shapes[2]


def test_completed_without_url_then_url_later(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(render_polls=1, completed_url=CompletedUrl.LATER, url_delay_polls=2)
    session_id = api.ready_session()
    api.submit(session_id, "render_later")
    polls = [api.poll("render_later")["data"] for _ in range(3)]
    assert [item["status"] for item in polls] == ["completed"] * 3
    assert ["outputUrl" in item for item in polls] == [False, False, True]


@pytest.mark.parametrize("form", [DownloadForm.BYTES, DownloadForm.JSON])
def test_download_only_gives_bytes_or_json_with_the_url(
    fake: FakeNemo, api: Api, form: DownloadForm
) -> None:
    fake.variants = Variants(
        render_polls=1, completed_url=CompletedUrl.DOWNLOAD_ONLY, download_form=form
    )
    session_id = api.ready_session()
    api.submit(session_id, "render_dl")
    early = api.http.get("/api/render/proxy/render_dl/download", headers=api.headers())
    assert early.json()["success"] is False  # not completed yet
    assert "outputUrl" not in api.poll("render_dl")["data"]
    response = api.http.get("/api/render/proxy/render_dl/download", headers=api.headers())
    if form is DownloadForm.BYTES:
        assert response.headers["content-type"] == "video/mp4"
        assert response.content == fake.video.read_bytes()
    else:
        assert httpx.get(response.json()["output"]["url"]).content == fake.video.read_bytes()


def test_output_url_can_answer_json_instead_of_video(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(render_polls=1, files_as_json=True)
    session_id = api.ready_session()
    api.submit(session_id, "render_json")
    response = httpx.get(api.poll("render_json")["data"]["outputUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert httpx.get(fake.file_url("render_unknown")).status_code == 404


def test_bare_bodies_variant(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(bare_bodies=True)
    data = api.ask_token().json()
    assert "code" not in data and data["token"].startswith("nmv_usr_")
    api.token = data["token"]
    response = api.http.get("/api/credits/balance/simple", headers=api.headers())
    assert response.json() == {"available": 100.0, "frozen": 0, "total": 100.0}


# Faults.


def test_server_errors_come_before_processing(fake: FakeNemo, api: Api) -> None:
    api.login()
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.SESSION, times=2, status=502)
    statuses = [
        api.http.post("/api/tasks/me/with-session/nemo_agent", headers=api.headers()).status_code
        for _ in range(3)
    ]
    assert statuses == [502, 502, 200]
    assert len(fake.books.sessions) == 1
    assert [record.fault for record in fake.books.requests_to(Endpoint.SESSION)] == [
        Fault.SERVER_ERROR,
        Fault.SERVER_ERROR,
        None,
    ]


def test_a_fault_answer_to_a_body_cut_short_is_no_server_error(fake: FakeNemo, api: Api) -> None:
    """An outage or a client gone mid-upload cuts the body the fault's answer drains: the
    fake then closes the connection, and records no bug of its own (the fixture checks)."""
    api.login()
    session_id = api.new_session()
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.UPLOAD, status=502)
    head = (
        f"POST /api/upload-video/nemo_agent/me/{session_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {api.token}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n"
    )
    address = urlsplit(fake.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"--x\r\n" + b"0" * 1000)
        sock.shutdown(socket.SHUT_WR)  # the rest never comes
        answer = sock.recv(4096)
    assert answer == b""  # closed, no answer to a request it never had whole
    wait_for(lambda: len(fake.books.requests_to(Endpoint.UPLOAD)) == 1)
    [record] = fake.books.requests_to(Endpoint.UPLOAD)
    assert record.fault is Fault.SERVER_ERROR


def test_rate_limit_has_retry_after_and_books_nothing(fake: FakeNemo, api: Api) -> None:
    api.login()
    session_id = api.new_session()
    fake.faults.next(Fault.RATE_LIMIT, Endpoint.UPLOAD, retry_after=2)
    limited = api.upload(session_id, fake.video)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert fake.books.uploads == {}
    assert api.upload(session_id, fake.video).status_code == 200


def test_connection_reset_mid_upload(fake: FakeNemo, api: Api) -> None:
    api.login()
    session_id = api.new_session()
    fake.faults.next(Fault.RESET, Endpoint.UPLOAD, after_bytes=16 * 1024)
    with pytest.raises(httpx.TransportError):
        api.upload(session_id, fake.video)
    assert fake.books.uploads == {}
    assert fake.books.requests_to(Endpoint.UPLOAD)[0].status is None
    assert api.upload(session_id, fake.video).status_code == 200


def test_dropped_stream_after_the_edit_landed(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    before = api.state(session_id)["draft"]
    fake.faults.next(Fault.DROP_STREAM, after_events=2)
    received = b""
    body = {
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": session_id,
        "new_message": {"parts": [{"text": "add music"}]},
    }
    with (
        pytest.raises(httpx.RemoteProtocolError),  # the chunked body never ends
        api.http.stream("POST", "/run_sse", json=body, headers=api.headers()) as response,
    ):
        for data in response.iter_bytes():
            received += data
    assert len(events(frames(received)[:2])) == 2  # what came before the cut is readable
    assert api.state(session_id)["draft"] != before  # so the client must read state...
    (record,) = fake.books.instructions[session_id]
    assert record.applied and record.outcome == "dropped"  # ...and never re-send
    assert fake.credits(api.token) == 99


@pytest.mark.parametrize("legacy", [False, True])
def test_error_frame_is_the_last_frame(fake: FakeNemo, api: Api, legacy: bool) -> None:
    fake.variants = Variants(legacy_error_frame=legacy)
    session_id = api.ready_session()
    before = api.state(session_id)["draft"]
    fake.faults.next(Fault.ERROR_FRAME, message='bad "draft" at C:\\tmp')
    _, blocks = api.say(session_id, "add music")
    last = blocks[-1].removeprefix("data: ")
    assert len(events(blocks[:-1])) == 2
    if legacy:
        assert last == '{"error": "bad "draft" at C:\\tmp"}'
        with pytest.raises(json.JSONDecodeError):
            json.loads(last)
    else:
        assert json.loads(last) == {"error": 'bad "draft" at C:\\tmp'}
    assert api.state(session_id)["draft"] == before
    assert fake.books.instructions[session_id][0].outcome == "error_frame"


def test_model_error_is_an_ordinary_event(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    fake.faults.next(Fault.MODEL_ERROR, after_events=1, message="quota")
    found = events(api.say(session_id, "add music")[1])
    assert len(found) == 2
    assert found[-1]["errorCode"] and found[-1]["errorMessage"] == "quota"
    assert fake.books.applied_instructions(session_id) == []


@pytest.mark.parametrize(("style", "status"), [(ErrorStyle.CODE, 200), (ErrorStyle.HTTP, 401)])
def test_expired_token_fault_really_expires_the_token(
    fake: FakeNemo, api: Api, style: ErrorStyle, status: int
) -> None:
    fake.variants = Variants(error_style=style)
    session_id = api.ready_session()
    fake.faults.next(Fault.EXPIRED_TOKEN, Endpoint.STATE)
    url = f"/api/state/nemo_agent/me/{session_id}/latest"
    for _ in range(2):  # not a one-off: the token is dead
        response = api.http.get(url, headers=api.headers())
        assert (response.status_code, response.json()["code"]) == (status, 1001)
    api.login()  # a new token for the same client id is allowed now (no 429)
    assert api.state(session_id)["draft"]["t"]


@pytest.mark.parametrize("style", [ErrorStyle.CODE, ErrorStyle.HTTP])
def test_lost_session(fake: FakeNemo, api: Api, style: ErrorStyle) -> None:
    fake.variants = Variants(error_style=style)
    session_id = api.ready_session()
    fake.faults.next(Fault.LOST_SESSION, Endpoint.RUN_SSE)
    response, _ = api.say(session_id, "add music")
    if style is ErrorStyle.CODE:
        assert (response.status_code, response.json()["code"]) == (200, 1002)
    else:
        assert response.status_code == 404
        assert response.json()["detail"].startswith("Session not found")
    url = f"/api/state/nemo_agent/me/{session_id}/latest"
    assert api.http.get(url, headers=api.headers()).status_code == response.status_code
    assert fake.books.instructions == {}

    other = api.ready_session()
    fake.drop_sessions()
    lost = api.http.get(f"/api/state/nemo_agent/me/{other}/latest", headers=api.headers())
    assert lost.status_code == response.status_code


def test_no_credits_fault(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    fake.faults.next(Fault.NO_CREDITS)
    response, _ = api.say(session_id, "add music")
    assert response.json()["code"] == 2001
    assert fake.credits(api.token) == 0


@pytest.mark.parametrize("shape", [RenderShape.A, RenderShape.B, RenderShape.C])
def test_failed_render_armed_at_submit(fake: FakeNemo, api: Api, shape: RenderShape) -> None:
    fake.variants = Variants(render_shape=shape)
    session_id = api.ready_session()
    fake.faults.next(Fault.RENDER_FAILED, Endpoint.RENDER_SUBMIT, after_polls=1, message="OOM")
    assert unwrap(api.submit(session_id, "render_doomed"))["status"] == "pending"
    api.poll("render_doomed")
    failed = api.poll("render_doomed")
    if shape is RenderShape.A:
        assert (failed["data"]["status"], failed["data"]["error"]) == ("failed", "OOM")
    elif shape is RenderShape.B:
        assert (failed["status"], failed["error"]) == ("failed", "OOM")
    else:
        assert failed["fatalErrorEncountered"] is True
        assert failed["errors"] == [{"message": "OOM", "isFatal": True, "willRetry": False}]
    assert api.poll("render_doomed") == failed  # terminal


def test_failed_render_at_a_poll(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    api.submit(session_id, "render_poll_fail")
    fake.faults.next(Fault.RENDER_FAILED, Endpoint.RENDER_POLL)
    assert api.poll("render_poll_fail")["data"]["status"] == "failed"


def test_slow_responses(fake: FakeNemo, api: Api) -> None:
    fake.faults.next(Fault.SLOW, Endpoint.TOKEN, delay=0.3)
    started = time.monotonic()
    assert api.ask_token().status_code == 200
    assert time.monotonic() - started >= 0.3


def test_stall_before_the_first_event_with_heartbeats(fake: FakeNemo, api: Api) -> None:
    fake.variants = Variants(heartbeat=Heartbeat.TEXT)
    session_id = api.ready_session()
    fake.faults.next(Fault.STALL, delay=0.3, heartbeats=2)
    started = time.monotonic()
    _, blocks = api.say(session_id, "add music")
    assert time.monotonic() - started >= 0.3
    assert blocks[:2] == ["data: heartbeat", "data: heartbeat"]
    assert blocks[2].startswith("data: {")


def test_silence_before_the_first_event(fake: FakeNemo, api: Api) -> None:
    session_id = api.ready_session()
    fake.faults.next(Fault.STALL, delay=0.2, heartbeats=0)
    started = time.monotonic()
    _, blocks = api.say(session_id, "add music")
    assert time.monotonic() - started >= 0.2
    assert blocks[0].startswith("data: {")


def test_probabilistic_faults_are_reproducible_with_a_seed(fake: FakeNemo, api: Api) -> None:
    def run(seed: int) -> list[int]:
        fake.faults.clear()
        fake.faults.reseed(seed)
        fake.faults.sometimes(Fault.SERVER_ERROR, Endpoint.TOKEN, probability=0.5)
        return [api.ask_token(f"client-{seed}-{n}").status_code for n in range(20)]

    first = run(1)
    assert 3 <= first.count(503) <= 17
    fake.expire_tokens()
    assert [status == 503 for status in run(1)] == [status == 503 for status in first]


def test_a_fault_armed_where_it_cannot_happen_is_refused(fake: FakeNemo) -> None:
    with pytest.raises(ValueError, match="never happens"):
        fake.faults.next(Fault.DROP_STREAM, Endpoint.UPLOAD)
    with pytest.raises(ValueError, match="never happens"):
        fake.faults.next(Fault.LOST_SESSION, Endpoint.CREDITS)


# Lifecycle.


class StalledTurn:
    """An instruction whose turn stalls for 30 s, listened to on a thread of its own: what
    a stop of the fake does to a stream."""

    def __init__(self, fake: FakeNemo, api: Api, session_id: str) -> None:
        fake.faults.next(Fault.STALL, delay=30, heartbeats=0)
        self.outcome: list[BaseException | None] = []
        self._listener = threading.Thread(target=self._listen, args=(api, session_id))
        self._listener.start()
        # the turn has reached its stall (a fixed sleep can end first on a busy machine)
        wait_for(lambda: (Fault.STALL, Endpoint.RUN_SSE) in fake.faults.fired, what="the stall")

    def _listen(self, api: Api, session_id: str) -> None:
        try:
            api.say(session_id, "add music")
            self.outcome.append(None)
        except httpx.HTTPError as exc:
            self.outcome.append(exc)

    def ended(self) -> BaseException | None:
        self._listener.join(15)
        return self.outcome[0]


def test_stop_cuts_a_stalled_stream_and_start_comes_back_on_the_same_port(
    fake: FakeNemo, api: Api
) -> None:
    session_id = api.ready_session()
    turn = StalledTurn(fake, api, session_id)
    base_url = fake.base_url
    started = time.monotonic()
    fake.stop()
    assert isinstance(turn.ended(), httpx.RemoteProtocolError)
    assert time.monotonic() - started < 15  # cut off, not left to its 30 s stall

    fake.start(port=int(base_url.rsplit(":", 1)[1]))
    assert fake.base_url == base_url
    assert api.state(session_id)["draft"]["t"]  # state survives a restart


def test_stop_refusing_cuts_the_stream_and_answers_503_on_a_connection_left_open(
    fake: FakeNemo, api: Api
) -> None:
    """An outage behind a proxy (tests/e2e/test_faults.py): the turn being streamed is cut,
    but an instruction sent on a kept-alive connection is refused with 503, never applied,
    so its client knows it may send it again; a new connection is refused outright."""
    session_id = api.ready_session()
    turn = StalledTurn(fake, api, session_id)
    applied = api.state(session_id)["draft"]  # "add music", on a second connection
    base_url = fake.base_url
    fake.stop(refuse=True)
    assert isinstance(turn.ended(), httpx.RemoteProtocolError)  # the stream was cut
    applied_before = fake.books.applied_instructions(session_id)

    response, _ = api.say(session_id, "make it brighter")  # on the pool's open connection
    assert response.status_code == 503
    assert fake.books.applied_instructions(session_id) == applied_before
    with pytest.raises(httpx.ConnectError), httpx.Client(base_url=base_url) as fresh:
        fresh.get("/api/credits/balance/simple")

    fake.start(port=int(base_url.rsplit(":", 1)[1]))
    assert api.say(session_id, "make it brighter")[0].status_code == 200  # sent again: lands
    assert fake.books.applied_instructions(session_id) == [*applied_before, "make it brighter"]
    assert api.state(session_id)["draft"] != applied


def test_unknown_paths_are_404(api: Api) -> None:
    assert api.http.get("/api/nothing").status_code == 404
