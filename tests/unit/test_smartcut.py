"""Smart rendering's plan (pure): which frames are copied, which encoded, what the encode
run decodes, and the Annex-B byte work, on made-up streams."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nemowatch.engines.local.smartcut import (
    DecodeEntry,
    Packet,
    Piece,
    SourceVideo,
    annexb,
    decode_plan,
    parameter_sets,
    plan_pieces,
    refusal,
    run_starts,
    source_refusal,
    split_access_units,
    track_timescale,
)
from nemowatch.engines.local.timeline import Cut, SourceFacts, build_draft
from nemowatch.rules import EditSpec, ExportSpec, Quality, TextOverlay

FPS = 30


def video(frames: int = 300, gop: int = 30, *, ticks: int = 512, **changes: object) -> SourceVideo:
    """A 30 fps stream in a 1/15360 time base, an IDR frame every `gop` frames."""
    fields: dict[str, object] = dict(
        codec="h264", profile="High", level=40, pixel_format="yuv420p", width=320,
        height=180, time_base=Fraction(1, 15360), start=Fraction(0), reorders=False,
        rotated=False, length_prefixed=True, color_range=1, color_primaries=1,
        color_trc=1, colorspace=1,
        packets=tuple(Packet(index * ticks, index % gop == 0) for index in range(frames)),
    )  # fmt: skip
    fields.update(changes)
    return SourceVideo(**fields)  # type: ignore[arg-type]


def draft(export: ExportSpec | None = None, edit: EditSpec | None = None, fps: float = FPS):  # type: ignore[no-untyped-def]
    facts = SourceFacts(
        name="clip.mp4", duration=10.0, width=320, height=180, fps=fps, has_audio=True,
        format="mov,mp4",
    )  # fmt: skip
    return build_draft(
        [Cut(0.5, 3.2), Cut(4.0, 9.0)], source=facts, edit=edit or EditSpec(),
        export=export or ExportSpec(),
    )  # fmt: skip


def test_a_segment_is_its_head_encoded_its_whole_gops_copied_its_tail_encoded() -> None:
    pieces = plan_pieces(video(), [Cut(0.5, 3.2)])  # frames 15..95, keyframes every 30
    assert pieces == (Piece("encode", 15, 30), Piece("copy", 30, 90), Piece("encode", 90, 96))


def test_a_segment_on_keyframes_is_copied_whole() -> None:
    assert plan_pieces(video(), [Cut(1.0, 3.0)]) == (Piece("copy", 30, 90),)


def test_a_segment_ending_the_clip_copies_its_last_gop() -> None:
    assert plan_pieces(video(), [Cut(8.5, 10.0)]) == (
        Piece("encode", 255, 270),
        Piece("copy", 270, 300),
    )


def test_a_segment_without_a_whole_gop_is_encoded_whole() -> None:
    assert plan_pieces(video(), [Cut(1.1, 1.9)]) == (Piece("encode", 33, 57),)


def test_encoded_pieces_between_copies_start_each_run_at_an_idr_frame() -> None:
    pieces = plan_pieces(video(), [Cut(0.5, 3.2), Cut(3.5, 6.0)])
    # the tail of the first and the head of the second play back to back: one run
    assert [piece.kind for piece in pieces] == ["encode", "copy", "encode", "encode", "copy"]
    assert run_starts(pieces) == [0, 15]


def test_the_encode_run_decodes_from_the_keyframe_before_each_piece() -> None:
    pieces = plan_pieces(video(), [Cut(0.5, 3.2), Cut(3.5, 6.0)])
    entries, ranges = decode_plan(video(), pieces)
    # head 15-30 from 0; tail 90-96 and head 105-120 share the decode from 90
    assert entries == [DecodeEntry(0, 30), DecodeEntry(90, 120)]
    assert ranges == [(15, 29), (30, 35), (45, 59)]


def test_a_segment_before_the_last_one_is_decoded_again() -> None:
    pieces = (Piece("encode", 100, 110), Piece("copy", 120, 150), Piece("encode", 95, 99))
    entries, ranges = decode_plan(video(), pieces)
    assert entries == [DecodeEntry(90, 110), DecodeEntry(90, 99)]
    assert ranges == [(10, 19), (25, 28)]


def test_a_cut_only_edit_at_high_quality_may_be_smart() -> None:
    assert refusal(draft(), ExportSpec()) is None


@pytest.mark.parametrize(
    ("export", "edit", "reason"),
    [
        (ExportSpec(smart="off"), EditSpec(), "off"),
        (ExportSpec(quality=Quality.MEDIUM), EditSpec(), "quality is medium"),
        (ExportSpec(format="webm"), EditSpec(), "webm"),
        (ExportSpec(resolution="720p"), EditSpec(), "size"),
        (ExportSpec(fps=25), EditSpec(), "frame rate"),
        (ExportSpec(), EditSpec(aspect="9:16"), "size"),
        (ExportSpec(), EditSpec(speed=2.0), "speed"),
        (ExportSpec(), EditSpec(fade_in=1.0), "fades"),
        (ExportSpec(), EditSpec(reverse=True), "effects"),
        (ExportSpec(), EditSpec(title=TextOverlay(text="Hi")), "texts"),
    ],
)
def test_an_edit_that_changes_the_frames_is_refused(
    export: ExportSpec, edit: EditSpec, reason: str
) -> None:
    planned = draft(export, edit)
    assert reason in (refusal(planned, export) or "")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"codec": "hevc"}, "hevc"),
        ({"pixel_format": "yuvj420p"}, "yuvj420p"),
        ({"profile": "High 4:2:2"}, "profile"),
        ({"rotated": True}, "rotates"),
        ({"width": 180, "height": 320}, "coded size"),
        ({"start": Fraction(1, 10)}, "starts later"),
    ],
)
def test_a_source_that_cannot_be_copied_is_refused(changes: dict[str, object], reason: str) -> None:
    assert reason in (source_refusal(video(**changes), draft()) or "")


def test_b_frames_in_closed_gops_are_copied_and_open_gops_refused() -> None:
    # decoding order I P B B P B B ..., each GOP of 30 closed: plays I B B P B B P ...
    def gop_packets(start: int, *, closed: bool) -> list[Packet]:
        order = [0] + [
            index for triple in range(1, 30, 3) for index in (triple + 2, triple, triple + 1)
        ]
        order = [index for index in order if index < 30]
        if not closed:  # two frames of the GOP play before its keyframe
            order = [2, 3, 0, 1, *order[4:]]
        return [Packet((start + index) * 512, index == (2 if not closed else 0)) for index in order]

    closed = video(
        packets=tuple(packet for gop in range(10) for packet in gop_packets(gop * 30, closed=True))
    )
    assert source_refusal(closed, draft()) is None
    assert closed.reorder_delay == 1
    assert plan_pieces(closed, [Cut(0.5, 3.2)]) == (
        Piece("encode", 15, 30), Piece("copy", 30, 90), Piece("encode", 90, 96),
    )  # fmt: skip
    assert closed.decoding(30, 90) == (30, 90)
    # the encode run decodes whole GOPs: a frame may need one played after it
    entries, _ = decode_plan(closed, plan_pieces(closed, [Cut(0.5, 3.2)]))
    assert entries == [DecodeEntry(0, 30), DecodeEntry(90, 120)]
    opened = video(
        packets=tuple(packet for gop in range(10) for packet in gop_packets(gop * 30, closed=False))
    )
    assert "open GOPs" in (source_refusal(opened, draft()) or "")


def test_a_source_at_another_rate_is_refused() -> None:
    assert "plays 25.016 fps" in (source_refusal(video(ticks=614), draft()) or "")


def test_a_millisecond_time_base_holds_30_fps_closely_enough() -> None:
    packets = tuple(Packet(round(index * 1000 / 30), index % 30 == 0) for index in range(300))
    source = video(time_base=Fraction(1, 1000), packets=packets)
    assert source_refusal(source, draft()) is None


def test_a_variable_frame_rate_is_refused() -> None:
    packets = tuple(
        Packet(index * 512 + (256 if 100 < index < 110 else 0), index % 30 == 0)
        for index in range(300)
    )
    assert "not constant" in (source_refusal(video(packets=packets), draft()) or "")


def test_an_avcc_record_gives_its_parameter_sets_as_annex_b() -> None:
    sps, pps = b"\x67\x64\x00\x0d\xac", b"\x68\xee\x3c\x80"
    record = (
        bytes([1, 0x64, 0, 0x0D, 0xFF, 0xE1, 0, len(sps)]) + sps + bytes([1, 0, len(pps)]) + pps
    )
    assert parameter_sets(record) == (4, b"\0\0\0\1" + sps + b"\0\0\0\1" + pps)


def test_a_keyframe_gets_the_parameter_sets_before_its_slices() -> None:
    idr = b"\x65\x88\x84"
    packet = len(idr).to_bytes(4, "big") + idr
    assert annexb(packet, 4, b"SETS", keyframe=True) == b"SETS\0\0\0\1" + idr
    assert annexb(packet, 4, b"SETS", keyframe=False) == b"\0\0\0\1" + idr


def test_an_annex_b_stream_is_cut_into_pictures_at_their_first_slice() -> None:
    stream = (
        b"\0\0\0\1\x67SPS\0\0\0\1\x68PPS\0\0\0\1\x65\x88IDR"  # picture 0 (IDR) from offset 0
        + b"\0\0\0\1\x41\x9aP1"  # picture 1
        + b"\0\0\0\1\x41\x1aP1b"  # a second slice of picture 1 (first_mb_in_slice > 0)
        + b"\0\0\0\1\x67SPS\0\0\0\1\x65\x88IDR"  # picture 2 (IDR)
    )
    pictures = split_access_units(stream)
    assert [idr for _, idr in pictures] == [True, False, True]
    assert pictures[0][0] == 0
    assert stream[pictures[2][0] :].startswith(b"\0\0\0\1\x67")


def test_the_mp4_track_counts_a_whole_number_of_ticks_a_frame() -> None:
    assert track_timescale(30.0) == 15360
    assert track_timescale(30000 / 1001) == 30000
    assert track_timescale(25.0) == 12800
