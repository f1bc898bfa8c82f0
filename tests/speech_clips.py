"""Clips with real speech, spoken by espeak-ng (Debian's `espeak-ng`; `.ci/run` installs it),
each piece at a known place: for the caption and filler tests."""

from __future__ import annotations

import array
import re
import shutil
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RATE = 22050  # what espeak-ng writes

# A talk of about two minutes, in plain sentences (written for these tests).
TALK = (
    "Good morning and welcome to the garden show.",
    "Today we are planting tomatoes in the back yard.",
    "The soil should be loose and rich with compost.",
    "Dig a hole about twice as deep as the pot.",
    "Place the young plant gently in the ground.",
    "Fill the hole with soil and press it down.",
    "Water the plant slowly until the ground is soaked.",
    "Tomatoes love sunlight for most of the day.",
    "A wooden stake will help the stem stand tall.",
    "Tie the stem loosely with a piece of soft string.",
    "Check the leaves every week for small insects.",
    "Pick off any yellow leaves near the bottom.",
    "In summer the plants need water every morning.",
    "The first flowers appear after a few weeks.",
    "Each flower can become a bright red fruit.",
    "Harvest the tomatoes when they feel a little soft.",
    "Store them on the kitchen table, not in the fridge.",
    "Fresh tomatoes taste wonderful in a simple salad.",
    "Next week we will talk about growing herbs.",
    "Basil and parsley grow well next to tomatoes.",
    "Herbs are easy to grow in small pots by the window.",
    "Mint spreads quickly, so give it a pot of its own.",
    "Rosemary likes dry soil and plenty of light.",
    "Cut the herbs often and they will grow back thicker.",
    "Now let us look at the compost heap.",
    "Kitchen scraps and dry leaves make good compost.",
    "Turn the heap every few weeks to let in some air.",
    "After a few months the compost turns dark and crumbly.",
    "Spread it around the plants in the spring.",
    "Worms in the soil are a very good sign.",
    "They keep the ground loose and healthy.",
    "A small pond can bring frogs into the garden.",
    "Frogs eat slugs that would damage the lettuce.",
    "Birds will visit if you leave out some seeds.",
    "In autumn, rake the leaves into a quiet corner.",
    "Insects sleep there through the cold winter.",
    "Plant bulbs in October for flowers in April.",
    "Tulips and daffodils brighten the early spring.",
    "Keep a notebook of what you plant each year.",
    "It helps you learn what grows best in your garden.",
    "Thank you for watching and happy gardening.",
    "See you next time in the garden.",
)


@dataclass(frozen=True)
class Piece:
    kind: str  # "say" or "filler"
    text: str
    start: float  # seconds into the clip
    end: float


@dataclass(frozen=True)
class SpokenClip:
    path: Path
    pieces: tuple[Piece, ...]

    @property
    def script(self) -> str:
        return " ".join(piece.text for piece in self.pieces if piece.kind == "say")

    @property
    def duration(self) -> float:
        return self.pieces[-1].end + 0.5


def espeak() -> str:
    found = shutil.which("espeak-ng")
    assert found, "these tests need espeak-ng: apt-get install espeak-ng (.ci/run does)"
    return found


def spoken_clip(
    folder: Path,
    pieces: Sequence[tuple[str, str]],
    *,
    ffmpeg: Path,
    gap: float = 0.35,
    size: str = "192x108",
    fps: int = 15,
) -> SpokenClip:
    """A video of a moving test picture over `pieces` ((kind, text), spoken in order with
    `gap` seconds of silence between them, and half a second after the last)."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = b""
    placed: list[Piece] = []
    for index, (kind, text) in enumerate(pieces):
        piece = folder / f"piece-{index}.wav"
        subprocess.run([espeak(), "-s", "160", "-w", str(piece), text], check=True)
        with wave.open(str(piece)) as stream:
            assert stream.getframerate() == RATE and stream.getsampwidth() == 2
            frames = _trimmed(stream.readframes(stream.getnframes()))
        piece.unlink()
        start = len(audio) / 2 / RATE
        audio += frames
        placed.append(Piece(kind, text, round(start, 3), round(len(audio) / 2 / RATE, 3)))
        audio += b"\0\0" * round(RATE * (gap if index + 1 < len(pieces) else 0.5))
    sound = folder / "speech.wav"
    with wave.open(str(sound), "wb") as stream:
        stream.setnchannels(1)
        stream.setsampwidth(2)
        stream.setframerate(RATE)
        stream.writeframes(audio)
    path = folder / "talk.mp4"
    # The picture lasts as long as the sound: `-shortest` alone stops the muxer some packets
    # late, and by how many varies from run to run (a picture 0.55 s longer was seen).
    seconds = len(audio) / 2 / RATE
    subprocess.run(
        [
            str(ffmpeg), "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}:d={seconds:.3f}",
            "-i", str(sound), "-shortest",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", str(fps),
            "-c:a", "aac", "-aac_coder", "fast", "-b:a", "64k", str(path),
        ],
        check=True,
    )  # fmt: skip
    sound.unlink()
    return SpokenClip(path, tuple(placed))


def _trimmed(frames: bytes, floor: int = 64) -> bytes:
    """16-bit samples without the near-silence espeak-ng leaves before and after speech:
    a piece's times are then where its sound is."""
    samples = array.array("h", frames)
    loud = [index for index, sample in enumerate(samples) if abs(sample) >= floor]
    if not loud:
        return frames
    return samples[loud[0] : loud[-1] + 1].tobytes()


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, heard: str) -> float:
    """(substitutions + deletions + insertions) / words in `reference`, by edit distance."""
    expected, got = words_of(reference), words_of(heard)
    previous = list(range(len(got) + 1))
    for row, word in enumerate(expected, start=1):
        current = [row]
        for column, other in enumerate(got, start=1):
            current.append(
                min(
                    previous[column] + 1,
                    current[column - 1] + 1,
                    previous[column - 1] + (word != other),
                )
            )
        previous = current
    return previous[-1] / max(1, len(expected))


def srt_cues(text: str) -> list[tuple[float, float, list[str]]]:
    """The cues of a SubRip file: (start, end, lines)."""
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if len(lines) < 2 or "-->" not in lines[1]:
            continue
        start, end = (_seconds(part.strip()) for part in lines[1].split("-->"))
        cues.append((start, end, lines[2:]))
    return cues


def _seconds(clock: str) -> float:
    hours, minutes, rest = clock.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)
