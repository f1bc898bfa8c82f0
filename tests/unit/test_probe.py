"""Probing media files with PyAV, and finding the MP4 index."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from nemowatch.errors import MediaError
from nemowatch.probe import MediaKind, _animated_webp, kind_of, moov_before_mdat, probe
from tests.media import TOOL_FFMPEG, Clips, write_random_bytes


def box(box_type: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def large_box(box_type: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4sQ", 1, box_type, 16 + len(payload)) + payload


def test_a_clip_shows_its_video_and_audio_streams(clips: Clips) -> None:
    facts = probe(clips.basic)

    assert facts.format_name.startswith("mov,mp4")
    assert facts.duration == pytest.approx(3.0, abs=0.05)
    assert facts.video is not None
    assert (facts.video.codec, facts.video.pix_fmt) == ("h264", "yuv420p")
    assert (facts.video.width, facts.video.height, facts.video.fps) == (160, 120, 25.0)
    assert facts.video.duration == pytest.approx(3.0, abs=0.001)
    assert facts.audio is not None
    assert (facts.audio.codec, facts.audio.sample_rate, facts.audio.channels) == ("aac", 44100, 1)
    assert facts.audio.duration == pytest.approx(3.0, abs=0.03)


def test_a_clip_without_audio_has_no_audio_stream(clips: Clips) -> None:
    facts = probe(clips.no_audio)

    assert facts.audio is None
    assert [stream.kind for stream in facts.streams] == ["video"]


def test_streams_that_state_no_duration_are_measured_from_their_packets(clips: Clips) -> None:
    facts = probe(clips.matroska)

    assert facts.format_name.startswith("matroska")
    assert facts.video is not None and facts.audio is not None
    assert facts.video.duration == pytest.approx(2.0, abs=0.001)
    # the last AAC frame runs past 2 s: by 43 ms from FFmpeg 5.1's encoder, less from 9's
    assert facts.audio.duration == pytest.approx(2.0, abs=0.05)


def test_an_empty_file_is_not_a_readable_video(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()

    with pytest.raises(
        MediaError,
        match=r"empty\.mp4 is not a readable video, photo or sound file \(the file is empty",
    ):
        probe(empty)


def test_random_bytes_are_not_a_readable_video(tmp_path: Path) -> None:
    noise = write_random_bytes(tmp_path / "noise.mp4")

    with pytest.raises(MediaError, match=r"noise\.mp4 is not a readable video") as raised:
        probe(noise)

    assert raised.value.hint is not None and "opens in a player" in raised.value.hint


def test_a_missing_file_is_not_a_readable_video(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"gone\.mp4 is not a readable video"):
        probe(tmp_path / "gone.mp4")


def test_an_index_before_the_media_data_is_fast_start(tmp_path: Path) -> None:
    path = tmp_path / "fast.mp4"
    path.write_bytes(box(b"ftyp", b"isom") + box(b"moov", b"\0" * 20) + box(b"mdat", b"\1" * 50))

    assert moov_before_mdat(path) is True


def test_an_index_after_the_media_data_is_not_fast_start(tmp_path: Path) -> None:
    path = tmp_path / "slow.mp4"
    path.write_bytes(box(b"ftyp", b"isom") + box(b"mdat", b"\1" * 50) + box(b"moov", b"\0" * 20))

    assert moov_before_mdat(path) is False


def test_boxes_with_64_bit_sizes_are_skipped_correctly(tmp_path: Path) -> None:
    path = tmp_path / "large.mp4"
    path.write_bytes(box(b"ftyp") + large_box(b"free", b"mdat" * 10) + box(b"moov"))

    assert moov_before_mdat(path) is True


def test_a_box_running_to_the_end_of_the_file_ends_the_search(tmp_path: Path) -> None:
    path = tmp_path / "open.mp4"
    path.write_bytes(box(b"ftyp") + struct.pack(">I4s", 0, b"mdat") + b"moov" * 10)

    assert moov_before_mdat(path) is False


def test_a_file_without_an_index_is_not_fast_start(tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(box(b"ftyp") + b"\0\0")

    assert moov_before_mdat(path) is False


def test_ffmpeg_without_faststart_writes_the_index_last(clips: Clips) -> None:
    assert moov_before_mdat(clips.basic) is False


# ---- what a file is, by its content (issue 13) ----------------------------------------------


def _made(target: Path, *arguments: str) -> Path:
    subprocess.run(
        [str(TOOL_FFMPEG), "-nostdin", "-y", "-v", "error", *arguments, str(target)], check=True
    )
    return target


@pytest.mark.parametrize(
    ("name", "arguments", "kind"),
    [
        ("still.mp4", ("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1", "-c:v", "png",
                       "-f", "image2pipe"), MediaKind.PHOTO),  # a PNG, whatever its name
        ("one.gif", ("-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1"), MediaKind.PHOTO),
        ("moving.gif", ("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=0.5"), MediaKind.ANIMATION),
        ("voice.mp4", ("-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac"), MediaKind.SOUND),
        ("clip.mkv", ("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=0.5"), MediaKind.VIDEO),
    ],
)  # fmt: skip
def test_the_kind_of_a_file_is_read_from_its_content(
    tmp_path: Path, name: str, arguments: tuple[str, ...], kind: MediaKind
) -> None:
    path = _made(tmp_path / name, *arguments)

    assert kind_of(path, probe(path)) is kind


def test_an_animated_webp_is_told_from_a_still_one_by_its_header(tmp_path: Path) -> None:
    flags = {"still": 0x00, "animated": 0x02}
    for name, flag in flags.items():
        header = b"RIFF" + bytes(4) + b"WEBPVP8X" + struct.pack("<I", 10) + bytes([flag])
        (tmp_path / f"{name}.webp").write_bytes(header + bytes(16))

    assert not _animated_webp(tmp_path / "still.webp")
    assert _animated_webp(tmp_path / "animated.webp")


def test_a_jpeg_cut_short_is_not_a_readable_photo(tmp_path: Path) -> None:
    whole = _made(tmp_path / "whole.jpg", "-f", "lavfi", "-i", "testsrc2=s=160x120",
                  "-frames:v", "1", "-f", "image2", "-update", "1")  # fmt: skip
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:-300])  # FFmpeg would show the rest grey

    assert kind_of(whole, probe(whole)) is MediaKind.PHOTO
    with pytest.raises(MediaError, match=r"cut\.jpg is not a readable photo \(its picture data"):
        kind_of(cut, probe(cut))
