"""The engine seam: one small protocol that both engines (local, nemo) implement.

The pipeline drives a job through these calls in order and checkpoints the ledger between
them; it never knows which engine it talks to. Every value passed across the seam is plain
data that can be stored as JSON in the ledger, so that a restarted daemon can resume.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeAlias, TypedDict, cast

from nemowatch.rules import EditSpec, ExportSpec

# JSON as the ledger stores it: every value an engine keeps between steps is one of these.
JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"
JSONObject: TypeAlias = dict[str, JSON]


@dataclass(frozen=True)
class Job:
    """What an engine needs to know about one job."""

    id: str
    rule: str
    source: Path  # the claimed file (inside the inbox's processing/ folder)
    instructions: tuple[str, ...]
    edit: EditSpec
    export: ExportSpec
    work_dir: Path  # scratch space for this job, kept until the job ends
    # several outputs per rule: the frame of each (captions are laid out to fit them all)
    frames: tuple[Frame, ...] = ()


@dataclass(frozen=True)
class Session:
    """An editing session. `data` is engine-specific, JSON-serialisable, kept in the ledger."""

    id: str
    data: JSONObject = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    """A source the engine has accepted ("uploaded")."""

    name: str
    duration: float  # seconds
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    has_audio: bool = False
    data: JSONObject = field(default_factory=dict)


class EditEventKind(StrEnum):
    TEXT = "text"  # something the engine says about the edit, fit to show a user
    TOOL = "tool"  # an operation the engine performed (debug detail)
    WARNING = "warning"  # e.g. a phrase the engine did not understand
    PROGRESS = "progress"  # still working


@dataclass(frozen=True)
class EditEvent:
    kind: EditEventKind
    text: str
    data: JSONObject = field(default_factory=dict)


class TrackSegment(TypedDict, total=False):
    """A segment of a draft's track (`sg`): its place in the output, `at` and `d` in
    milliseconds, and what the engines put there besides (a NemoVideo segment may carry
    more keys; they are kept as they are)."""

    at: int  # where it starts in the output
    d: int  # how long it lasts in the output
    s: int  # video and source audio: where it starts in the source (local engine)
    e: int  # ... and where it ends
    text: str  # text: what it says
    position: str  # text: top | center | bottom (local engine)
    size: float  # text: its height as a fraction of the frame's (local engine)


class Track(TypedDict, total=False):
    """A track of a draft (an item of `t`): its type `tt` (VIDEO_TRACK, AUDIO_TRACK or
    TEXT_TRACK), its segments `sg`, and metadata `m` (what each engine keeps about it)."""

    tt: int
    sg: list[TrackSegment]
    m: JSONObject


VIDEO_TRACK = 0  # a track's `tt`
AUDIO_TRACK = 1
TEXT_TRACK = 7


@dataclass(frozen=True)
class Draft:
    """A timeline in NemoVideo's shape, so both engines describe an edit the same way.

    `tracks` is the draft's `t` (see `Track`); `duration_ms` is `d`; `metadata` is `m`,
    the whole timeline's facts, which each engine reads in its own way, but for one key
    shared by all: `warnings`, a list of sentences saying where the plan falls short of
    what was asked (see `warnings`).
    """

    tracks: tuple[Track, ...]
    duration_ms: int
    metadata: JSONObject = field(default_factory=dict)

    def to_json(self) -> JSONObject:
        tracks: list[JSON] = [cast(JSONObject, track) for track in self.tracks]
        return {"t": tracks, "d": self.duration_ms, "m": dict(self.metadata)}

    @classmethod
    def from_json(cls, data: JSONObject) -> Draft:
        """The draft `to_json` wrote (or NemoVideo did): tracks that are not objects are
        left out, a missing or null `d` or `m` reads as 0 or {}."""
        tracks = data.get("t")
        duration = data.get("d")
        metadata = data.get("m")
        return cls(
            tracks=tuple(cast(Track, track) for track in tracks if isinstance(track, dict))
            if isinstance(tracks, list)
            else (),
            duration_ms=round(duration) if isinstance(duration, int | float) else 0,
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
        )

    @property
    def duration(self) -> float:
        return self.duration_ms / 1000.0

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the engine says the plan falls short of, e.g. "the reel lasts 42.0 s: 42.0 s
        of speech left after cutting silences; asked 60 s": `m.warnings`, its strings only
        (a draft without the key has none)."""
        found = self.metadata.get("warnings")
        if not isinstance(found, list):
            return ()
        return tuple(item for item in found if isinstance(item, str))

    def summary(self) -> str:
        """One line for people, e.g. "Timeline (3 tracks): video 0–57.6 s, music lofi 35 %,
        title 0–3 s". Works for drafts of either engine: missing keys are left out."""
        parts = [_track_summary(track, self.duration) for track in self.tracks]
        count = len(self.tracks)
        return f"Timeline ({count} track{'s' if count != 1 else ''}): " + ", ".join(
            part for part in parts if part
        )


def _seconds(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _span(segments: list[TrackSegment], whole: float) -> tuple[float, float]:
    """The output time a track's segments cover, in seconds (the whole draft if unknown)."""
    starts = [item["at"] / 1000 for item in segments if "at" in item]
    ends = [(item["at"] + item["d"]) / 1000 for item in segments if "at" in item and "d" in item]
    if not starts or not ends:
        return 0.0, whole
    return min(starts), max(ends)


def _track_summary(track: Track, whole: float) -> str:
    segments = list(track.get("sg") or [])
    metadata = track.get("m") or {}
    kind = track.get("tt")
    if kind == VIDEO_TRACK:
        start, end = _span(segments, whole)
        pieces = f" from {len(segments)} pieces" if len(segments) > 1 else ""
        return f"video {_seconds(start)}–{_seconds(end)} s{pieces}"
    if kind == AUDIO_TRACK and metadata.get("kind") == "music":
        name = Path(str(metadata.get("source", "music"))).stem
        volume = metadata.get("volume")
        level = f" {round(volume * 100)} %" if isinstance(volume, int | float) else ""
        ducked = ", ducked" if metadata.get("duck") else ""
        return f"music {name}{level}{ducked}"
    if kind == AUDIO_TRACK:
        start, end = _span(segments, whole)
        return f"audio {_seconds(start)}–{_seconds(end)} s"
    if kind == TEXT_TRACK and metadata.get("kind") == "captions":
        how = "burned in" if metadata.get("burn", True) else "a subtitle track"
        return f"captions, {len(segments)} cues, {how}"
    if kind == TEXT_TRACK:
        texts = []
        for index, item in enumerate(segments):
            label = "title" if index == 0 else "text"
            start, end = _span([item], whole)
            texts.append(f"{label} {_seconds(start)}–{_seconds(end)} s")
        return ", ".join(texts)
    return f"track {kind}"


@dataclass(frozen=True)
class Frame:
    """Which of a rule's outputs a render makes (several outputs per rule), and what that
    output changes of the edit's picture: its aspect and fit (None: the edit's). `output`
    names the render's files, so two outputs of one job never share one."""

    output: str = ""  # "": the rule's one output
    aspect: str | None = None  # "16:9", "9:16", "1:1", "4:5"
    fit: str | None = None  # crop | blur | pad


EDIT_FRAME = Frame()  # the edit's own picture: a rule's one output


class RenderState(StrEnum):
    PENDING = "pending"  # submitted, not started
    PROCESSING = "processing"  # running
    COMPLETED = "completed"  # finished; the result can be downloaded
    FAILED = "failed"  # finished without a result; `error` says why
    LOST = "lost"  # the engine no longer knows this render (local: the process died)


@dataclass(frozen=True)
class Render:
    id: str
    data: JSONObject = field(default_factory=dict)
    format: str | None = None  # the result's container ("mp4", "gif"...), when the engine knows
    # a SubRip file on this machine to publish beside the result (soft captions), if any
    subtitles: str | None = None
    width: int | None = None  # the result's frame, when the engine knows it (verified)
    height: int | None = None


@dataclass(frozen=True)
class RenderStatus:
    state: RenderState
    progress: float | None = None  # 0..100, for display only
    error: str | None = None
    data: JSONObject = field(default_factory=dict)


@dataclass(frozen=True)
class Credits:
    available: float
    frozen: float = 0.0
    total: float | None = None
    user_id: str | None = None
    anonymous: bool = False  # an anonymous token: tell the user how to register


class Engine(Protocol):
    """What the pipeline needs from an editing engine."""

    name: str
    # whether the jobs of one batch (a folder, `batch: each`) share one session, one after
    # the other: the service's batch workflow (one session, an upload and a render each)
    shares_sessions: bool
    # seconds a render may take before its job fails; None: the pipeline's own (4 h)
    render_deadline: float | None

    async def open_session(self, job: Job) -> Session: ...

    async def join_session(self, session: Session, job: Job) -> Session:
        """`session`, opened by another job of the same batch, made `job`'s: its checks
        run, its own render ids (only called when `shares_sessions`)."""
        ...

    async def upload(self, session: Session, source: Path) -> Media: ...

    def edit(self, session: Session, instruction: str) -> AsyncIterator[EditEvent]:
        """Send one instruction and yield what the engine says.

        The engine alone decides whether an instruction landed: when a send fails, it
        looks (retrying, waiting, reading the edit state, as its service needs) before it
        raises. So the end of the events means it landed; TransientError (or
        CreditsExhausted) means it provably did not, and may be sent again later; any
        other error means the job fails, and the instruction is not sent again."""
        ...

    async def edit_checkpoint(self, session: Session) -> str | None:
        """A token that changes whenever the session's edit state changes. The pipeline
        keeps it in the ledger before each instruction, for `edit_landed` after a restart;
        None when sending an instruction again costs nothing (local): then it is sent again."""
        ...

    async def edit_landed(self, session: Session, checkpoint: str) -> bool:
        """After a run stopped mid-instruction: whether the edit state moved on from
        `checkpoint` (the instruction landed). The engine looks as long as it needs."""
        ...

    async def draft(self, session: Session) -> Draft:
        """The timeline the instructions made. Where it falls short of what they asked
        (a reel shorter than asked, for want of material), the draft says so in its
        `warnings` (`m.warnings`): the pipeline adds them to the job's warnings, with those
        of `edit`."""
        ...

    async def export(
        self, session: Session, draft: Draft, spec: ExportSpec, frame: Frame = EDIT_FRAME
    ) -> Render:
        """Render `draft` as `spec` says, in the picture `frame` says (one output of
        several: its aspect and fit may differ from the edit's). An engine that cannot
        render a frame other than the edit's raises EngineError (`check` says so first)."""
        ...

    async def poll(self, render: Render) -> RenderStatus: ...

    async def download(self, render: Render, dest: Path) -> None: ...

    async def credits(self) -> Credits | None: ...

    async def close(self) -> None: ...
