"""A clip's sound level, and the music's ducking under speech, as each format's
OpenTimelineIO adapter carries them (for timelines.py):

    otio, kdenlive  a `volume` effect whose keyframes are the level in dB by frame (the
                    Kdenlive adapter writes it as a volume filter with those keyframes)
    xml (FCP 7)     an "Audio Levels" filter on the clip item, its level parameter keyed
                    by frame as a gain (1.0: 0 dB); the FCP 7 adapter writes a clip's
                    `fcp_xml` metadata into its clip item, as it does when it round-trips
                    a file it read
    fcpxml          the clip's note: its adapter writes no volume

The keyframes count frames from the clip's first frame in its source (the music bed
starts at its source's first frame, at the sequence's start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from nemowatch.engines.local.timeline import DUCK_ATTACK, DUCK_RELEASE

if TYPE_CHECKING:
    import opentimelineio as otio

# FCP 7's Audio Levels goes up to +12 dB (a gain of 3.98109)
_FCP7_MAX_GAIN = 3.98109


def duck_keyframes(
    decibels: float,
    duck_db: float | None,
    under: Sequence[tuple[float, float]],
    rate: float,
) -> dict[str, float]:
    """The music's level in dB by frame (as text: OTIO metadata keys), a straight line between
    keyframes: going down DUCK_ATTACK before each speech window, back up
    DUCK_RELEASE after it, as the render ducks it."""
    level, low = round(decibels, 2), round(decibels + (duck_db or 0.0), 2)
    points: dict[int, float] = {0: level}
    for start, end in under:
        points[max(0, round((start - DUCK_ATTACK) * rate))] = level
        points[round(start * rate)] = low
        points[round(end * rate)] = low
        points[round((end + DUCK_RELEASE) * rate)] = level
    # zero-padded: OTIO keeps metadata keys in text order, and Kdenlive reads them in turn
    return {f"{frame:07d}": points[frame] for frame in sorted(points)}


def set_level(
    clip: otio.schema.Clip,
    fmt: str,
    *,
    what: str,
    volume: float,
    keyframes: Mapping[str, float],
    described: Mapping[str, object] | None = None,
    ducking: str | None = None,
) -> list[str]:
    """Give `clip` its level in format `fmt`: `keyframes` as `duck_keyframes` makes them
    (one: a steady level), `volume` the steady level as a gain; `what` names the sound
    ("music"), `described` is kept with the effect (`nemowatch` metadata), `ducking` says
    in words how it is ducked, if it is. Returns what the format leaves out of it."""
    import opentimelineio as otio

    clip.effects.append(
        otio.schema.Effect(
            name="volume",
            effect_name="volume",  # the name Kdenlive's adapter writes as a volume filter
            metadata={
                "keyframes": dict(keyframes),  # frame -> level in dB (Kdenlive's convention)
                "nemowatch": {"volume": volume, **(described or {})},
            },
        )
    )
    first = next(iter(keyframes.values()), 0.0)
    level = f"{what} at {round(volume * 100)} % ({first:.1f} dB)"
    if fmt == "xml":
        clip.metadata["fcp_xml"] = {"filter": {"effect": _audio_levels(keyframes)}}
        return []
    if fmt == "fcpxml":
        note = level + (f", {ducking}" if ducking else "")
        clip.media_reference.metadata["fcpx"] = {"note": note}
        left = [f"the {what}'s level as a setting (it is in the clip's note)"]
        if ducking:
            left.append(f"the {what}'s ducking under speech as keyframes (it is in the note)")
        return left
    return []


def _audio_levels(keyframes: Mapping[str, float]) -> dict[str, object]:
    """FCP 7's Audio Levels effect, keyed as `keyframes` (frame -> dB) say."""
    gains = [(int(frame), _gain(decibels)) for frame, decibels in keyframes.items()]
    parameter: dict[str, object] = {
        "parameterid": "level",
        "name": "Level",
        "valuemin": 0,
        "valuemax": _FCP7_MAX_GAIN,
        "value": gains[0][1] if gains else 1.0,
    }
    if len(gains) > 1:
        parameter["keyframe"] = [{"when": frame, "value": gain} for frame, gain in gains]
    return {
        "name": "Audio Levels",
        "effectid": "audiolevels",
        "effectcategory": "audiolevels",
        "effecttype": "audiolevels",
        "mediatype": "audio",
        "parameter": parameter,
    }


def _gain(decibels: float) -> float:
    return round(min(_FCP7_MAX_GAIN, 10 ** (decibels / 20)), 5)
