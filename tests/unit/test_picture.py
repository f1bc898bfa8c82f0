"""The timeline picture from drafts written by hand (pure: no FFmpeg)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from nemowatch.engines.base import AUDIO_TRACK, TEXT_TRACK, VIDEO_TRACK, Draft
from nemowatch.picture import Waveform, svg_for_timeline

SVG = "{http://www.w3.org/2000/svg}"


def shapes(svg: str, kind: str) -> list[tuple[float, float]]:
    root = ElementTree.fromstring(svg)
    return [
        (float(shape.get("data-start", "nan")), float(shape.get("data-end", "nan")))
        for shape in root.iter(f"{SVG}rect")
        if shape.get("class") == kind
    ]


def test_music_ducking_and_captions_are_drawn_where_the_draft_puts_them() -> None:
    draft = Draft(
        tracks=(
            {"tt": VIDEO_TRACK, "sg": [{"s": 0, "e": 4000, "at": 0, "d": 4000}]},
            {
                "tt": AUDIO_TRACK,
                "sg": [{"at": 0, "d": 4000}],
                "m": {
                    "kind": "music",
                    "source": "lofi",
                    "volume": 0.35,
                    "fade_in": 1.0,
                    "fade_out": 1.0,
                    "duck": {"db": -15, "under": [[500, 1500], [2000, 3000]]},
                },
            },
            {
                "tt": TEXT_TRACK,
                "sg": [
                    {"text": "hello", "at": 250, "d": 750},
                    {"text": "<&>", "at": 1000, "d": 500},
                ],
                "m": {"kind": "captions", "burn": True},
            },
        ),
        duration_ms=4000,
        metadata={"source": "a & b.mp4", "source_duration_ms": 6000},
    )
    svg = svg_for_timeline(draft, waveform=Waveform(0.5, (-6.0,) * 12))
    assert shapes(svg, "duck") == [(0.5, 1.5), (2.0, 3.0)]
    assert shapes(svg, "caption") == [(0.25, 1.0), (1.0, 1.5)]
    assert shapes(svg, "kept") == [(0.0, 4.0)] and shapes(svg, "cut") == [(4.0, 6.0)]
    assert shapes(svg, "music") == [(0.0, 4.0)]
    root = ElementTree.fromstring(svg)  # escaped text parses
    assert "a & b.mp4" in "".join(root.itertext())


def test_a_draft_without_source_times_draws_its_output_only() -> None:
    # a NemoVideo draft: segments know where they play, not where they came from
    draft = Draft(tracks=({"tt": VIDEO_TRACK, "sg": [{"at": 0, "d": 2500}]},), duration_ms=2500)
    svg = svg_for_timeline(draft)
    assert shapes(svg, "cut") == [] and shapes(svg, "kept") == []
    assert shapes(svg, "piece") == [(0.0, 2.5)] and shapes(svg, "output") == [(0.0, 2.5)]


def test_an_empty_draft_still_draws() -> None:
    root = ElementTree.fromstring(svg_for_timeline(Draft(tracks=(), duration_ms=0)))
    assert root.tag == f"{SVG}svg"


def test_a_loop_draws_its_further_passes() -> None:
    pieces = [{"s": 0, "e": 1000, "at": 0, "d": 1000}, {"s": 2000, "e": 2500, "at": 1000, "d": 500}]
    draft = Draft(
        tracks=({"tt": VIDEO_TRACK, "sg": pieces},),
        duration_ms=4500,  # three passes of 1.5 s
        metadata={"source_duration_ms": 3000},
    )
    svg = svg_for_timeline(draft)
    assert shapes(svg, "piece") == [(0.0, 1.0), (1.0, 1.5)]
    assert shapes(svg, "repeat") == [(1.5, 2.5), (2.5, 3.0), (3.0, 4.0), (4.0, 4.5)]
    assert shapes(svg, "cut") == [(1.0, 2.0), (2.5, 3.0)]
