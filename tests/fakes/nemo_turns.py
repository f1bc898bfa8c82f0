"""The fake agent: how one instruction changes a session's draft, and the ADK events it says.

Pure functions, deterministic per instruction (a SHA-256 of its text decides), so tests
can predict which turns carry text. Every applied instruction changes the draft: at least
its `m.revision`, usually a track. The draft's duration stays the uploaded video's, because
the fake renders that video unchanged and a client verifies the output against `d`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.nemo_variants import TextTurns

VIDEO_TRACK, AUDIO_TRACK, TEXT_TRACK = 0, 1, 7
AUTHOR = "nemo_agent"
# What the backend says as if a GUI existed; nemowatch must never pass it on as advice.
GUI_SPEAK = (
    "Click Export to render your video.",
    "Open the Music panel to fine-tune the volume.",
    "Drag the clip on the timeline to adjust where it starts.",
)


@dataclass(frozen=True)
class VideoFacts:
    """What the fake reports for an uploaded video (it never stores uploads)."""

    duration: float = 3.0
    width: int = 160
    height: int = 120
    fps: float = 25.0

    @property
    def duration_ms(self) -> int:
        return round(self.duration * 1000)


@dataclass(frozen=True)
class Change:
    """What an instruction did: the tool the agent "called", and a sentence about it."""

    tool: str
    args: dict[str, Any]
    summary: str


def digest(text: str) -> int:
    """A stable number for `text` (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def has_text(instruction: str, mode: TextTurns) -> bool:
    """Whether the agent's turn for `instruction` ends with text (about 70 % do)."""
    if mode is TextTurns.ALWAYS:
        return True
    if mode is TextTurns.NEVER:
        return False
    return digest(instruction) % 100 >= 30


def empty_state(facts: VideoFacts, task_name: str) -> dict[str, Any]:
    """A new session's state: no media, an empty draft."""
    return {
        "draft": {
            "t": [],
            "d": 0,
            "m": {"title": task_name, "width": facts.width, "height": facts.height, "revision": 0},
        },
        "video_infos": [],
        "generated_media": [],
        "canvas_config": {"width": facts.width, "height": facts.height, "background": "#000000"},
    }


def add_upload(state: dict[str, Any], info: dict[str, Any], facts: VideoFacts) -> dict[str, Any]:
    """The state after an upload: the media is known, and the first video is on the timeline."""
    state = copy.deepcopy(state)
    state["video_infos"].append(info)
    draft = state["draft"]
    if info["file_type"] == "video" and _track(draft, VIDEO_TRACK) is None:
        draft["t"].insert(0, _video_track(info["cdn_url"], facts))
        draft["d"] = facts.duration_ms
        draft["m"]["revision"] += 1
    return state


def apply_instruction(
    state: dict[str, Any], instruction: str, facts: VideoFacts
) -> tuple[dict[str, Any], Change]:
    """The state after the agent carried out `instruction`, and what it did."""
    state = copy.deepcopy(state)
    draft = state["draft"]
    if _track(draft, VIDEO_TRACK) is None:  # editing before uploading: a stock clip
        draft["t"].insert(0, _video_track("stock://placeholder.mp4", facts))
        draft["d"] = facts.duration_ms
    words = instruction.lower()
    if re.search(r"music|song|soundtrack", words):
        change = _add_music(state, facts)
    elif re.search(r"title|text|caption|subtitle", words):
        change = _add_text(draft, instruction, facts)
    elif re.search(r"silen|cut|trim|shorten", words):
        change = _cut_silences(draft)
    else:
        change = _restyle(draft, instruction)
    draft["m"]["revision"] += 1
    return state, change


def lay_out(state: dict[str, Any], pieces: Sequence[tuple[str, Any, int]]) -> dict[str, Any]:
    """The state with its video track laid out as `pieces`, back to back, as the cloud's
    own cut: ("source", from_ms, d_ms) keeps a stretch of the upload (`from`, and `src` its
    URL); ("generated", name, d_ms) is a clip the cloud made (`src` a URL of its own, the
    clip listed in `generated_media`). The draft lasts as long as the pieces together."""
    state = copy.deepcopy(state)
    draft = state["draft"]
    video = _track(draft, VIDEO_TRACK)
    assert video is not None, "lay out a session that has its upload"
    upload = str(video["sg"][0]["src"])
    segments, at = [], 0
    for kind, what, duration in pieces:
        if kind == "source":
            segments.append({"at": at, "d": duration, "from": what, "src": upload})
        else:
            url = f"{upload.rsplit('/', 1)[0]}/generated/{what}.mp4"
            segments.append({"at": at, "d": duration, "src": url})
            state["generated_media"].append({"kind": "video", "name": what, "url": url})
        at += duration
    video["sg"] = segments
    draft["d"] = at
    return state


def turn_events(
    instruction: str,
    change: Change,
    *,
    revision: int,
    with_text: bool,
    timestamp: float,
    sequence: int,
) -> list[dict[str, Any]]:
    """The ADK events of one turn, in camelCase: a thought, a function call and its
    response, an actions-only event, then (when `with_text`) partial previews and the full
    text. `sequence` makes ids unique per server."""
    invocation = f"e-{sequence:06d}-{digest(instruction) % 10**8:08d}"
    call_id = f"adk-{digest(invocation) % 10**12:012d}"
    counter = iter(range(100))

    def event(**fields: Any) -> dict[str, Any]:
        return {
            "invocationId": invocation,
            "author": AUTHOR,
            **fields,
            "id": f"{invocation}-{next(counter)}",
            "timestamp": timestamp,
        }

    events = [
        event(
            content={
                "role": "model",
                "parts": [
                    {"text": f"The user asks: {instruction!r}. Use {change.tool}.", "thought": True}
                ],
            }
        ),
        event(
            content={
                "role": "model",
                "parts": [
                    {"functionCall": {"id": call_id, "name": change.tool, "args": change.args}}
                ],
            },
            longRunningToolIds=[],
        ),
        event(
            content={
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "id": call_id,
                            "name": change.tool,
                            "response": {"status": "success", "draft_revision": revision},
                        }
                    }
                ],
            }
        ),
        event(actions={"stateDelta": {"draft_revision": revision}, "artifactDelta": {}}),
    ]
    if with_text:
        text = " ".join([change.summary, *_gui_speak(instruction)])
        middle = len(text) // 2
        for piece in (text[:middle], text[middle:]):
            events.append(
                event(content={"role": "model", "parts": [{"text": piece}]}, partial=True)
            )
        events.append(event(content={"role": "model", "parts": [{"text": text}]}))
    return events


def _gui_speak(instruction: str) -> list[str]:
    """The GUI-speak a text turn ends with: always an export hint when export was asked."""
    if "export" in instruction.lower():
        return [GUI_SPEAK[0]]
    choice = digest(instruction) // 7 % (len(GUI_SPEAK) + 1)
    return [GUI_SPEAK[choice]] if choice < len(GUI_SPEAK) else []


def model_error_event(message: str, *, timestamp: float, sequence: int) -> dict[str, Any]:
    """A model-level failure: an ordinary event with errorCode and errorMessage."""
    return {
        "invocationId": f"e-{sequence:06d}-error",
        "author": AUTHOR,
        "errorCode": "MALFORMED_FUNCTION_CALL",
        "errorMessage": message,
        "id": f"e-{sequence:06d}-error-0",
        "timestamp": timestamp,
    }


def error_frame(message: str, *, legacy: bool) -> bytes:
    """The last frame of a failed stream; `legacy` writes it unescaped, as old servers did."""
    if legacy:
        return f'data: {{"error": "{message}"}}\n\n'.encode()
    return b"data: " + compact(error_payload(message)) + b"\n\n"


def error_payload(message: str) -> dict[str, Any]:
    return {"error": message}


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def snake_case(event: Any) -> Any:
    """`event` with snake_case keys, leaving tool arguments and results as they are."""
    if isinstance(event, list):
        return [snake_case(item) for item in event]
    if not isinstance(event, dict):
        return event
    converted = {}
    for key, value in event.items():
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        opaque = key in ("args", "response", "stateDelta", "artifactDelta")
        converted[name] = value if opaque else snake_case(value)
    return converted


def _track(draft: dict[str, Any], kind: int, purpose: str | None = None) -> dict[str, Any] | None:
    for track in draft["t"]:
        if track.get("tt") == kind and (
            purpose is None or track.get("m", {}).get("kind") == purpose
        ):
            return track  # type: ignore[no-any-return]
    return None


def _video_track(source: str, facts: VideoFacts) -> dict[str, Any]:
    segment = {"at": 0, "d": facts.duration_ms, "from": 0, "src": source}
    return {"tt": VIDEO_TRACK, "sg": [segment], "m": {"kind": "video", "effects": []}}


def _add_music(state: dict[str, Any], facts: VideoFacts) -> Change:
    draft = state["draft"]
    music = _track(draft, AUDIO_TRACK, "music")
    if music is None:
        music = {
            "tt": AUDIO_TRACK,
            "sg": [{"at": 0, "d": draft["d"]}],
            "m": {"kind": "music", "source": "lofi", "volume": 0.35},
        }
        draft["t"].append(music)
        state["generated_media"].append(
            {"kind": "music", "name": "lofi", "duration": facts.duration}
        )
        return Change(
            "add_background_music",
            {"mood": "lofi", "volume": 0.35},
            "I added lofi background music at 35 % volume.",
        )
    music["m"]["volume"] = round(max(0.05, music["m"]["volume"] - 0.1), 2)
    volume = music["m"]["volume"]
    return Change(
        "set_music_volume", {"volume": volume}, f"I lowered the music to {round(volume * 100)} %."
    )


def _add_text(draft: dict[str, Any], instruction: str, facts: VideoFacts) -> Change:
    quoted = re.search(r"[\"“']([^\"”']+)[\"”']", instruction)
    words = quoted.group(1) if quoted else "Title"
    length = min(3000, draft["d"] or facts.duration_ms)
    track = _track(draft, TEXT_TRACK)
    if track is None:
        track = {"tt": TEXT_TRACK, "sg": []}
        draft["t"].append(track)
    track["sg"].append({"at": 0, "d": length, "text": words})
    return Change(
        "add_text",
        {"text": words, "at": 0, "d": length},
        f'I added the title "{words}" for the first {length / 1000:g} seconds.',
    )


def _cut_silences(draft: dict[str, Any]) -> Change:
    video = _track(draft, VIDEO_TRACK)
    assert video is not None
    video["m"]["silences_removed"] = video["m"].get("silences_removed", 0) + 1
    return Change(
        "remove_silences", {"min_silence_ms": 500}, "I removed the silent parts of your clip."
    )


def _restyle(draft: dict[str, Any], instruction: str) -> Change:
    video = _track(draft, VIDEO_TRACK)
    assert video is not None
    style = instruction.strip()[:60]
    video["m"].setdefault("effects", []).append(style)
    return Change("apply_style", {"style": style}, f"I applied the style: {style}.")
