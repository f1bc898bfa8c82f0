"""The one-line timeline summary that status and explain print."""

from __future__ import annotations

from nemowatch.engines.base import Draft


def test_a_reel_reads_as_video_music_and_title() -> None:
    draft = Draft(
        tracks=(
            {
                "tt": 0,
                "sg": [
                    {"s": 0, "e": 30000, "at": 0, "d": 30000},
                    {"s": 40000, "e": 67600, "at": 30000, "d": 27600},
                ],
            },
            {
                "tt": 1,
                "sg": [{"at": 0, "d": 57600}],
                "m": {"kind": "music", "source": "lofi", "volume": 0.35, "duck": None},
            },
            {"tt": 7, "sg": [{"text": "Urban Dreams", "at": 0, "d": 3000}]},
        ),
        duration_ms=57600,
    )
    assert draft.summary() == (
        "Timeline (3 tracks): video 0–57.6 s from 2 pieces, music lofi 35 %, title 0–3 s"
    )


def test_a_cloud_draft_without_output_times_uses_its_duration() -> None:
    draft = Draft(tracks=({"tt": 0, "sg": [{"id": "clip1"}]},), duration_ms=12000)
    assert draft.summary() == "Timeline (1 track): video 0–12 s"


def test_a_stored_draft_reads_back_as_it_was_written() -> None:
    stored = {
        "t": [{"tt": 0, "sg": [{"at": 0, "d": 1500, "src": "a.mp4"}], "m": {"kind": "video"}}],
        "d": 1500,
        "m": {"title": "Reel", "width": 1080},
    }

    assert Draft.from_json(stored).to_json() == stored


def test_a_draft_missing_its_parts_reads_as_empty() -> None:
    draft = Draft.from_json({"t": [None, "x", {"tt": 7}], "d": None, "m": None})

    assert draft == Draft(tracks=({"tt": 7},), duration_ms=0)
