"""Captions: the output's words grouped into cues, on the draft and as SubRip. Pure.

A cue holds at most `lines` lines of at most `max_chars` characters, no wider than the
frame allows at the caption's size (a 9:16 frame takes fewer characters a line than a
16:9 one); a cue ends at a sentence's end, at a pause, or when full. It shows from its
first word to a little after its last (MIN_SHOW at least, never over the next cue).
Burned-in cues are drawn by the render's text machinery, inside the platforms' safe zones
(text.py); soft ones become a subtitle track and an .srt file beside the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nemowatch.engines.base import TEXT_TRACK, Draft, Track, TrackSegment
from nemowatch.engines.local.analysis import Segment
from nemowatch.engines.local.arguments import SUBTITLE_CODECS
from nemowatch.engines.local.speech import Transcript, Word
from nemowatch.engines.local.text import TEXT_WIDTH, text_width
from nemowatch.engines.local.words import on_output
from nemowatch.rules import Captions, EditSpec

PAUSE = 0.8  # seconds of quiet between two words that end a cue
LONGEST = 6.0  # seconds a cue may span
MIN_SHOW = 1.0  # seconds a cue stays up, at least (unless the next one starts)
LINGER = 0.4  # seconds a cue stays after its last word, when there is room
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！", "…")
# ISO 639-1 -> 639-2, for the subtitle track's language tag (MP4 wants three letters)
LANGUAGE_TAGS = {
    "en": "eng", "zh": "chi", "es": "spa", "fr": "fre", "de": "ger", "ja": "jpn",
    "ko": "kor", "pt": "por", "ru": "rus", "it": "ita", "ar": "ara", "hi": "hin",
}  # fmt: skip


@dataclass(frozen=True)
class Cue:
    """One caption on screen: its lines and its time on the output."""

    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class CaptionTrack:
    """The captions of a draft, as the render uses them."""

    cues: tuple[Cue, ...]
    burn: bool
    language: str | None
    position: str
    size: float


def line_limit(style: Captions, width: int | None, height: int | None) -> float:
    """The widest a caption line may be, in ems of the caption's size: `max_chars` narrow
    characters, or less where the frame is narrower."""
    narrow = text_width("a", 1.0)
    limit = style.max_chars * narrow
    if width and height:
        limit = min(limit, TEXT_WIDTH * width / (style.size * height))
    return limit


def cues_of(
    words: Sequence[Word],
    style: Captions,
    *,
    width: int | None,
    height: int | None,
    duration: float,
) -> list[Cue]:
    """`words` (in output seconds, in order) grouped into cues that fit `style` and the frame."""
    limit = line_limit(style, width, height)
    groups: list[list[list[Word]]] = []  # cue -> lines -> words
    for word in words:
        if not word.text.strip():
            continue
        cue = groups[-1] if groups else None
        if cue is not None and not _continues(cue, word):
            cue = None
        if cue is not None:
            line = cue[-1]
            if _fits([*line, word], style, limit):
                line.append(word)
                continue
            if len(cue) < style.lines:
                cue.append([word])
                continue
        groups.append([[word]])
    cues: list[Cue] = []
    for index, group in enumerate(groups):
        first, last = group[0][0], group[-1][-1]
        following = groups[index + 1][0][0].start if index + 1 < len(groups) else duration
        end = min(max(last.end + LINGER, first.start + MIN_SHOW), following, duration)
        end = max(end, min(last.end, duration))
        if end <= first.start:
            continue
        lines = tuple(_joined(line) for line in group)
        cues.append(Cue(round(first.start, 3), round(end, 3), lines))
    return cues


def caption_track(cues: Sequence[Cue], style: Captions, language: str | None) -> Track:
    """The draft's captions track: a text track that says whether it is burned in."""
    segments: list[TrackSegment] = [
        {
            "text": cue.text,
            "at": round(cue.start * 1000),
            "d": max(1, round((cue.end - cue.start) * 1000)),
            "position": style.position,
            "size": style.size,
        }
        for cue in cues
    ]
    return {
        "tt": TEXT_TRACK,
        "sg": segments,
        "m": {"kind": "captions", "burn": style.burn, "language": language},
    }


def captions_of(draft: Draft) -> CaptionTrack | None:
    """The draft's captions, if it has any."""
    for track in draft.tracks:
        metadata = track.get("m", {})
        if track.get("tt") != TEXT_TRACK or metadata.get("kind") != "captions":
            continue
        segments = track.get("sg", [])
        language = metadata.get("language")
        first = segments[0] if segments else {}
        return CaptionTrack(
            cues=tuple(
                Cue(
                    item["at"] / 1000,
                    (item["at"] + item["d"]) / 1000,
                    tuple(str(item["text"]).split("\n")),
                )
                for item in segments
            ),
            burn=bool(metadata.get("burn", True)),
            language=str(language) if isinstance(language, str) else None,
            position=str(first.get("position", "bottom")),
            size=float(first.get("size", 0.045)),
        )
    return None


def srt(cues: Sequence[Cue]) -> str:
    """The cues as a SubRip file."""
    blocks = [
        f"{number}\n{_clock(cue.start)} --> {_clock(cue.end)}\n{cue.text}\n"
        for number, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def language_tag(language: str | None) -> str | None:
    """The three-letter tag of a language code, where one is known."""
    return LANGUAGE_TAGS.get(language or "")


def _continues(cue: list[list[Word]], word: Word) -> bool:
    first, last = cue[0][0], cue[-1][-1]
    if word.start - last.end > PAUSE or word.end - first.start > LONGEST:
        return False
    return not last.text.strip().endswith(SENTENCE_ENDS)


def _fits(line: list[Word], style: Captions, limit: float) -> bool:
    text = _joined(line)
    return len(text) <= style.max_chars and text_width(text, 1.0) <= limit


def _joined(line: Sequence[Word]) -> str:
    return "".join(word.text for word in line).strip()


def _clock(seconds: float) -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, milliseconds = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d},{milliseconds:03d}"


def plan_captions(
    transcript: Transcript | None,
    segments: Sequence[Segment],
    edit: EditSpec,
    *,
    size: tuple[int | None, int | None],
    source_name: str,
    export_format: str = "mp4",
) -> tuple[Track | None, list[str]]:
    """The captions track of an edit (None when it asks for none), and any warning: a
    source with no speech found (or played backwards) gets no captions, and the job says
    so. A loop repeats the captions with the picture."""
    style = edit.captions
    if style is None:
        return None, []
    if transcript is None:
        return None, [f"no captions: {source_name} has no sound"]
    if edit.reverse:
        return None, ["no captions: the video plays backwards (reverse), and so does its speech"]
    speed = edit.speed or 1.0
    fillers = edit.remove_fillers.words if edit.remove_fillers is not None else ()
    words = on_output(transcript.words, segments, speed=speed, leave_out=fillers)
    duration = sum(segment.duration for segment in segments) / speed
    width, height = size
    cues = cues_of(words, style, width=width, height=height, duration=duration)
    if not cues:
        return None, [f"no captions: no speech found in what the edit keeps of {source_name}"]
    # a loop plays the edit again: so do its captions
    cues = [
        Cue(round(cue.start + turn * duration, 3), round(cue.end + turn * duration, 3), cue.lines)
        for turn in range(edit.loop or 1)
        for cue in cues
    ]
    language = style.language or transcript.language or None
    warnings = []
    if not style.burn and export_format not in SUBTITLE_CODECS:
        warnings.append(
            f"a {export_format.upper()} holds no subtitle track: the captions are only in the"
            " .srt beside it (burn: true draws them in the picture)"
        )
    return caption_track(cues, style, language), warnings
