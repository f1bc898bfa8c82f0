"""The footage builders for photos and sound files, without running FFmpeg: EXIF headers,
the Ken Burns move, sizes, and where a cover picture comes from."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from nemowatch.engines.local import inputs
from nemowatch.engines.local.footage import dropped_name
from nemowatch.rules import Audiogram, Still


def jpeg_with_exif(orientation: int, byte_order: str = "<") -> bytes:
    mark = b"II" if byte_order == "<" else b"MM"
    entry = struct.pack(f"{byte_order}HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = (
        mark
        + struct.pack(f"{byte_order}H", 42)
        + struct.pack(f"{byte_order}I", 8)
        + struct.pack(f"{byte_order}H", 1)
        + entry
        + bytes(4)
    )
    body = b"Exif\x00\x00" + tiff
    comment = b"\xff\xfe" + struct.pack(">H", 7) + b"hello"  # a segment before it
    return b"\xff\xd8" + comment + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_the_exif_orientation_is_read_in_either_byte_order(
    orientation: int, byte_order: str
) -> None:
    assert inputs.exif_orientation(jpeg_with_exif(orientation, byte_order)) == orientation


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n", b"\xff\xd8", b"\xff\xd8\xff\xda\x00\x02", jpeg_with_exif(6)[:30]],
)
def test_a_picture_without_a_readable_orientation_is_upright(data: bytes) -> None:
    assert inputs.exif_orientation(data) == 1


def test_turned_by_a_quarter_the_picture_swaps_its_sides() -> None:
    assert [inputs.upright_size(300, 200, orientation) for orientation in (1, 3, 6, 8)] == [
        (300, 200),
        (300, 200),
        (200, 300),
        (200, 300),
    ]
    assert inputs.upright_filters(6) == ("transpose=dir=clock",)
    assert inputs.upright_filters(1) == ()


def test_the_same_photo_always_moves_the_same_way_and_others_differently() -> None:
    moves = {inputs.motion_for(bytes([index]) * 32) for index in range(16)}

    assert inputs.motion_for(b"a" * 32) == inputs.motion_for(b"a" * 32)
    assert len(moves) == 16
    assert {move.zoom_start < move.zoom_end for move in moves} == {True, False}  # in and out
    for move in moves:
        assert {move.zoom_start, move.zoom_end} == {1.0, 1.0 + inputs.ZOOM_RANGE}
        assert all(
            0.2 <= value <= 0.8
            for value in (move.across_start, move.across_end, move.down_start, move.down_end)
        )


def test_a_photo_keeps_its_shape_at_most_1920_long_with_even_sides() -> None:
    assert inputs.photo_size(4032, 3024) == (1920, 1440)
    assert inputs.photo_size(201, 151) == (200, 150)
    assert inputs.photo_size(1080, 1920) == (1080, 1920)


def test_a_photos_shot_lasts_the_still_duration_and_stands_still_without_motion() -> None:
    arguments = inputs.photo_arguments(
        Path("/in.jpg"),
        Path("/out.mkv"),
        size=(200, 150),
        orientation=6,
        still=Still(duration=2.5, motion=False),
        motion=inputs.motion_for(b"x"),
    )
    graph = arguments[arguments.index("-filter_complex") + 1]

    assert arguments[arguments.index("-frames:v") + 1] == "75"
    assert "-noautorotate" in arguments
    assert "transpose=dir=clock" in graph and ":d=75:s=200x150:" in graph
    assert "z='(1.0000+(0.0000)*(on/74))'" in graph  # no zoom


@pytest.mark.parametrize(("cover", "source"), [(None, "color=c=0x101820"), ("/c.png", "[1:v]")])
def test_an_audiogram_is_drawn_over_the_cover_or_the_colour(cover: str | None, source: str) -> None:
    arguments = inputs.audiogram_arguments(
        Path("/song.mp3"),
        Path("/out.mkv"),
        size=(640, 360),
        seconds=12.5,
        settings=Audiogram(),
        cover=Path(cover) if cover else None,
    )
    graph = arguments[arguments.index("-filter_complex") + 1]

    assert source in graph
    assert "showwaves=s=640x120" in graph and "overlay=x=0:y=120" in graph
    assert arguments[arguments.index("-t") + 1] == "12.500"
    sound = arguments.index("0:a:0")
    assert arguments[sound - 1] == "-map"  # the sound itself, beside the picture drawn of it


def test_a_spectrum_audiogram_draws_the_frequencies() -> None:
    arguments = inputs.audiogram_arguments(
        Path("/a.wav"),
        Path("/o.mkv"),
        size=(640, 360),
        seconds=1.0,
        settings=Audiogram(style="spectrum", color="#ff8800"),
        cover=None,
    )
    assert "showfreqs=s=640x120" in arguments[arguments.index("-filter_complex") + 1]
    assert "colors=0xff8800" in arguments[arguments.index("-filter_complex") + 1]


def test_a_cover_beside_the_sound_is_found_by_its_name_then_as_cover(tmp_path: Path) -> None:
    processing = tmp_path / "inbox" / "processing"
    processing.mkdir(parents=True)
    claimed = processing / "job7__song.mp3"
    claimed.touch()

    assert dropped_name(claimed) == "song.mp3"
    assert inputs.cover_beside(claimed, "song.mp3") is None
    (tmp_path / "inbox" / "cover.jpg").touch()
    assert inputs.cover_beside(claimed, "song.mp3") == tmp_path / "inbox" / "cover.jpg"
    (tmp_path / "inbox" / "song.png").touch()
    assert inputs.cover_beside(claimed, "song.mp3") == tmp_path / "inbox" / "song.png"


def test_the_audiogram_is_the_outputs_size_or_1280_by_720() -> None:
    assert inputs.audiogram_size((None, None)) == (1280, 720)
    assert inputs.audiogram_size((720, 1280)) == (720, 1280)
