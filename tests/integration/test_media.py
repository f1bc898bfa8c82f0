"""The tests' own clips (tests/media.py): their sound, computed with NumPy, is what FFmpeg's
`aevalsrc` makes of the same formula (`SPEECH`, the tone) with the same gates and gains."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import numpy as np
import pytest

from tests.media import SPEECH, TOOL_FFMPEG, AudioKind, _number, _samples

SILENCES = ((0.25, 0.5), (1.0, 1.2))
GAINS = ((0.5, 0.9, 0.25), (1.5, 1.9, 3.0))


def evaluated_by_ffmpeg(
    audio: AudioKind,
    seconds: float,
    silences: Sequence[tuple[float, float]],
    gains: Sequence[tuple[float, float, float]],
    rate: int,
) -> np.ndarray:
    """What aevalsrc makes of the clip's formula, as make_clip once asked it to."""
    expression = "0.4*sin(2*PI*440*t)" if audio == "tone" else SPEECH
    expression += "".join(f"*not(between(t\\,{_number(a)}\\,{_number(b)}))" for a, b in silences)
    expression += "".join(
        f"*(1+{_number(factor - 1)}*between(t\\,{_number(a)}\\,{_number(b)}))"
        for a, b, factor in gains
    )
    source = f"aevalsrc={expression}:s={rate}:d={_number(seconds)}"
    raw = subprocess.run(
        [str(TOOL_FFMPEG), "-v", "error", "-f", "lavfi", "-i", source, "-f", "f64le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f8")


@pytest.mark.parametrize("audio", ["speech_with_silences", "tone"])
def test_a_clips_sound_is_what_aevalsrc_makes_of_the_same_formula(audio: AudioKind) -> None:
    seconds, rate = 2.0, 16000

    ours = np.frombuffer(_samples(seconds, audio, SILENCES, GAINS, rate, 1, 440.0), "<f8")
    theirs = evaluated_by_ffmpeg(audio, seconds, SILENCES, GAINS, rate)

    assert len(ours) == len(theirs) == seconds * rate
    assert np.abs(ours - theirs).max() < 1e-12
    assert np.array_equal(ours == 0.0, theirs == 0.0)  # silent exactly where it was
    assert (ours == 0.0).sum() >= 0.45 * rate  # the two gates: 0.25 s and 0.2 s, ends in


def test_channels_are_interleaved_copies() -> None:
    mono = np.frombuffer(_samples(0.5, "tone", (), (), 8000, 1, 300.0), "<f8")
    stereo = np.frombuffer(_samples(0.5, "tone", (), (), 8000, 2, 300.0), "<f8")

    assert np.array_equal(stereo[0::2], mono) and np.array_equal(stereo[1::2], mono)
