"""A NemoVideo draft's cut (nemowatch/cloudcut.py): which stretches of the output play the
upload, from where, and which only the render."""

from __future__ import annotations

from nemowatch.cloudcut import Piece, Uploaded, generated, picture, sounds
from nemowatch.engines.base import Draft

UPLOAD = "https://cdn.example/7300000001/talk.mp4"
UPLOADED = Uploaded(urls=frozenset([UPLOAD]), fps=25.0, duration_ms=10_000)


def draft(*tracks: dict[str, object], duration: int = 6000) -> Draft:
    return Draft.from_json({"t": list(tracks), "d": duration, "m": {}})


def test_stretches_of_the_upload_play_the_source_from_their_in_points() -> None:
    cut = draft(
        {
            "tt": 0,
            "sg": [
                {"at": 0, "d": 2000, "from": 500, "src": UPLOAD},
                {"at": 2000, "d": 4000, "from": 7000, "src": UPLOAD},
            ],
        }
    )

    assert picture(cut, UPLOADED) == [
        Piece(0, 2000, True, 500, "talk.mp4"),
        Piece(2000, 4000, True, 7000, "talk.mp4"),
    ]


def test_what_the_cloud_made_and_what_no_segment_covers_play_the_render() -> None:
    cut = draft(
        {
            "tt": 0,
            "sg": [
                {"at": 1000, "d": 2000, "src": "https://cdn.example/generated/broll.mp4"},
                {"at": 3000, "d": 2000, "from": 0, "src": "https://elsewhere.example/talk.mp4"},
                {"at": 4500, "d": 1000, "from": 0, "src": UPLOAD},  # overlaps: its rest only
            ],
        }
    )

    pieces = picture(cut, UPLOADED)

    assert pieces == [
        Piece(0, 1000, False, 0, "the render"),
        Piece(1000, 2000, False, 1000, "broll.mp4"),
        Piece(3000, 2000, False, 3000, "talk.mp4"),  # another file than the upload
        Piece(5000, 500, True, 500, "talk.mp4"),
        Piece(5500, 500, False, 5500, "the render"),
    ]
    assert generated(pieces) == ["the render", "broll.mp4", "talk.mp4"]


def test_audio_tracks_keep_their_kind_and_leave_silence_between_segments() -> None:
    music = {"tt": 1, "sg": [{"at": 1000, "d": 3000}], "m": {"kind": "music", "volume": 0.3}}
    voice = {"tt": 1, "sg": [{"at": 0, "d": 1000, "from": 200, "src": UPLOAD}]}

    found = sounds(draft({"tt": 0, "sg": []}, music, voice), UPLOADED)

    assert [(kind, pieces) for kind, _, pieces in found] == [
        ("music", [Piece(1000, 3000, False, 1000, "generated media")]),
        ("audio", [Piece(0, 1000, True, 200, "talk.mp4")]),
    ]


def test_the_upload_is_read_from_the_jobs_recorded_media() -> None:
    media = {"name": "talk.mp4", "duration": 12.5, "fps": 30.0, "data": {"cdn_url": UPLOAD}}

    assert Uploaded.of_media(media) == Uploaded(frozenset([UPLOAD]), 30.0, 12_500)
    assert Uploaded.of_media(None) == Uploaded(frozenset())
