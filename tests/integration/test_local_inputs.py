"""Photos, animations and sound files through the local engine, with real FFmpeg on media
generated here: each becomes a video of the planned size and length."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
from pathlib import Path

import pytest

from nemowatch.engines.base import Draft, Session
from nemowatch.engines.local import LocalEngine
from nemowatch.engines.local.ffmpeg import probe_ffmpeg
from nemowatch.errors import MediaError
from nemowatch.probe import probe
from nemowatch.rules import Audiogram, EditSpec, ExportSpec, Quality, Still, TextOverlay
from tests.integration.test_local_engine import make_job, produce
from tests.integration.test_local_render import frame, loudness, region_difference
from tests.media import SPEECH, TOOL_FFMPEG, Clips, accepted_ffmpegs

FAST = ExportSpec(quality=Quality.LOW)


def ffmpeg(*arguments: str) -> None:
    subprocess.run(
        [str(TOOL_FFMPEG), "-nostdin", "-y", "-hide_banner", "-v", "error", *arguments],
        check=True,
    )


def halves_picture(target: Path, codec: str, *, size: int = 96) -> Path:
    """A picture twice as wide as high: its left half red, its right half blue."""
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=red:s={size}x{size},format=yuv444p",
        "-f", "lavfi", "-i", f"color=c=blue:s={size}x{size},format=yuv444p",
        "-filter_complex", "[0:v][1:v]hstack=inputs=2", "-frames:v", "1",
        "-c:v", codec, "-f", "image2", "-update", "1", str(target),
    )  # fmt: skip
    return target


def with_exif_orientation(jpeg: Path, orientation: int) -> Path:
    """`jpeg` with an EXIF header saying how to turn it (an APP1 segment after SOI)."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + bytes(4)
    body = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    data = jpeg.read_bytes()
    jpeg.write_bytes(data[:2] + segment + data[2:])
    return jpeg


def sound(target: Path, *arguments: str, seconds: float = 2.0) -> Path:
    """A speech-like tone (its loudness swinging 4 times a second), quiet (about -30 LUFS),
    four times as loud after its first second."""
    ffmpeg(
        "-f", "lavfi", "-i", f"aevalsrc=0.03*(1+3*gte(t\\,1))*{SPEECH}:s=44100:d={seconds}",
        *arguments, str(target),
    )  # fmt: skip
    return target


def rgb_at(path: Path, seconds: float, across: float, down: float) -> tuple[int, int, int]:
    width, height, pixels = frame(path, seconds, "rgb24")
    offset = (int(down * height) * width + int(across * width)) * 3
    red, green, blue = pixels[offset : offset + 3]
    return red, green, blue


async def test_a_png_becomes_a_five_second_shot_that_moves(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=200x150", "-frames:v", "1", str(photo))
    engine = LocalEngine()

    media, _, result = await produce(
        engine, make_job(photo, tmp_path / "work", export=FAST), tmp_path / "out.mp4"
    )

    assert media.duration == 5.0
    assert result.video is not None
    assert (result.video.width, result.video.height) == (200, 150)
    assert result.duration == pytest.approx(5.0, abs=0.1)
    first = frame(tmp_path / "out.mp4", 0.0)
    last = frame(tmp_path / "out.mp4", 4.8)
    # the slow pan and zoom: the picture at the end is not the picture at the start
    assert region_difference(first[2], last[2], 200, range(150), range(200)) > 2.0


async def test_the_text_can_say_how_long_a_photo_shows_and_that_it_holds_still(
    tmp_path: Path,
) -> None:
    photo = tmp_path / "photo.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120", "-frames:v", "1", str(photo))
    job = make_job(
        photo,
        tmp_path / "work",
        instructions=("show each photo for 2 seconds, no ken burns",),
        export=FAST,
    )

    media, _, result = await produce(LocalEngine(), job, tmp_path / "out.mp4")

    assert media.duration == 2.0
    assert result.duration == pytest.approx(2.0, abs=0.1)
    first = frame(tmp_path / "out.mp4", 0.0)
    last = frame(tmp_path / "out.mp4", 1.8)
    assert region_difference(first[2], last[2], 160, range(120), range(160)) < 1.0


@pytest.mark.parametrize(("name", "binary"), accepted_ffmpegs())
async def test_a_jpeg_turned_by_its_exif_header_comes_out_upright(
    tmp_path: Path, name: str, binary: Path
) -> None:
    # stored 192x96, red left and blue right; orientation 6: shown turned a quarter clockwise,
    # so upright it is 96x192 with the red half on top
    photo = with_exif_orientation(halves_picture(tmp_path / "turned.jpg", "mjpeg"), 6)
    job = make_job(photo, tmp_path / "work", edit=EditSpec(still=Still(duration=2)), export=FAST)

    _, _, result = await produce(LocalEngine(ffmpeg=binary), job, tmp_path / "out.mp4")

    assert result.video is not None
    assert (result.video.width, result.video.height) == (96, 192)
    assert result.duration == pytest.approx(2.0, abs=0.1)
    top, bottom = (
        rgb_at(tmp_path / "out.mp4", 1.0, 0.5, 0.2),
        rgb_at(tmp_path / "out.mp4", 1.0, 0.5, 0.8),
    )
    assert top[0] > 150 > top[2], top  # red
    assert bottom[2] > 150 > bottom[0], bottom  # blue


async def test_an_animated_gif_plays_as_a_clip(tmp_path: Path) -> None:
    gif = tmp_path / "moving.gif"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1.5", str(gif))

    _, _, result = await produce(
        LocalEngine(), make_job(gif, tmp_path / "work", export=FAST), tmp_path / "out.mp4"
    )

    assert result.video is not None
    assert (result.video.width, result.video.height) == (160, 120)
    assert result.duration == pytest.approx(1.5, abs=0.15)
    first, later = frame(tmp_path / "out.mp4", 0.0), frame(tmp_path / "out.mp4", 1.0)
    assert first[2] != later[2]


@pytest.mark.parametrize(("name", "binary"), accepted_ffmpegs())
async def test_an_mp3_with_cover_art_becomes_an_audiogram_over_its_cover(
    tmp_path: Path, name: str, binary: Path
) -> None:
    cover = halves_picture(tmp_path / "cover.png", "png")  # red left, blue right
    song = tmp_path / "inbox" / "song.mp3"
    song.parent.mkdir()
    sound(
        song,
        *["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png"],
        *["-disposition:v", "attached_pic", "-id3v2_version", "3"],
    )
    export = ExportSpec(quality=Quality.LOW, resolution="240p")

    _, _, result = await produce(
        LocalEngine(ffmpeg=binary),
        make_job(song, tmp_path / "work", export=export),
        tmp_path / "out.mp4",
    )

    _assert_audiogram(tmp_path / "out.mp4", result.duration)
    assert result.video is not None
    assert (result.video.width, result.video.height) == (426, 240)
    corner = rgb_at(tmp_path / "out.mp4", 1.0, 0.05, 0.05)
    assert corner[0] > 150 > corner[2], corner  # the cover fills the frame: red at the left


async def test_a_wav_without_cover_becomes_an_audiogram_over_a_colour(tmp_path: Path) -> None:
    wav = sound(tmp_path / "voice.wav")
    export = ExportSpec(quality=Quality.LOW, resolution="240p")
    edit = EditSpec(aspect="9:16", audiogram=Audiogram(background="#204080"))

    _, _, result = await produce(
        LocalEngine(),
        make_job(wav, tmp_path / "work", edit=edit, export=export),
        tmp_path / "o.mp4",
    )

    _assert_audiogram(tmp_path / "o.mp4", result.duration)
    assert result.video is not None
    assert (result.video.width, result.video.height) == (240, 426)
    red, green, blue = rgb_at(tmp_path / "o.mp4", 1.0, 0.05, 0.05)
    assert abs(red - 0x20) < 20 and abs(green - 0x40) < 20 and abs(blue - 0x80) < 20


def _assert_audiogram(path: Path, duration: float) -> None:
    assert duration == pytest.approx(2.0, abs=0.1)
    integrated, _ = loudness(path)
    assert integrated == pytest.approx(-14.0, abs=1.0)
    width, height, early = frame(path, 0.4)
    _, _, late = frame(path, 1.3)
    band = range(height // 3, 2 * height // 3)  # the wave is drawn across the middle third
    assert region_difference(early, late, width, band, range(width)) > 1.0


# ---- bad input --------------------------------------------------------------------------


async def test_a_corrupt_photo_fails_naming_the_file_and_what_to_do(tmp_path: Path) -> None:
    good = halves_picture(tmp_path / "good.jpg", "mjpeg")
    data = good.read_bytes()
    broken = tmp_path / "broken.jpg"
    # the headers, then noise where the picture's data should be
    broken.write_bytes(data[: len(data) // 3] + bytes(range(256)) * 8)
    engine = LocalEngine()
    session = await engine.open_session(make_job(broken, tmp_path / "work"))

    with pytest.raises(MediaError, match=r"broken\.jpg is not a readable photo") as raised:
        await engine.upload(session, broken)  # before any work

    assert "opens in an image viewer" in (raised.value.hint or "")


async def test_a_sound_file_without_sound_fails_naming_the_file(tmp_path: Path) -> None:
    # an M4A holding only its cover picture
    cover = halves_picture(tmp_path / "cover.png", "png")
    empty_song = tmp_path / "silent.m4a"
    ffmpeg("-i", str(cover), "-map", "0:v", "-c:v", "png", "-disposition:v", "attached_pic",
           "-f", "mp4", str(empty_song))  # fmt: skip
    engine = LocalEngine()
    session = await engine.open_session(make_job(empty_song, tmp_path / "work"))

    with pytest.raises(MediaError, match=r"silent\.m4a holds no sound and no picture") as raised:
        await engine.upload(session, empty_song)

    assert "export the recording again" in (raised.value.hint or "")


async def test_an_empty_photo_fails_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.touch()
    engine = LocalEngine()
    session = await engine.open_session(make_job(empty, tmp_path / "work"))

    with pytest.raises(MediaError, match=r"empty\.jpg .*the file is empty, 0 bytes"):
        await engine.upload(session, empty)


async def test_a_restarted_job_makes_its_missing_footage_again(tmp_path: Path) -> None:
    song = sound(tmp_path / "talk.wav", seconds=1.0)
    work = tmp_path / "work"
    job = make_job(song, work, edit=EditSpec(title=TextOverlay(text="Hi")), export=FAST)
    first = LocalEngine()
    session = await first.open_session(job)
    draft = await first.draft(session)
    stored = json.dumps({"session": session.data, "draft": draft.to_json()})
    (work / "footage.mkv").unlink()  # the work folder lost it (a crash, a cleanup)

    restored = json.loads(stored)
    render = await LocalEngine().export(
        Session(id=session.id, data=restored["session"]), Draft.from_json(restored["draft"]), FAST
    )

    result = probe(Path(render.data["path"]))
    assert result.video is not None and result.audio is not None
    assert result.duration == pytest.approx(1.0, abs=0.1)
    assert (work / "footage.mkv").is_file()
    assert sorted(path.name for path in work.iterdir() if "partial" in path.name) == []


def test_an_animated_webp_plays_where_ffmpeg_can_decode_it(tmp_path: Path) -> None:
    """FFmpeg decodes animated WebP from version 8: an older one fails it clearly."""
    for name, binary in accepted_ffmpegs():
        webp = tmp_path / f"{name}.webp"
        major = probe_ffmpeg(binary).major
        capable = major is None or major >= 8  # None: a build from git master
        bundled = [path for label, path in accepted_ffmpegs() if label.startswith("bundled")]
        subprocess.run(
            [str(bundled[0]), "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i",
             "testsrc2=size=96x64:rate=10:duration=1", "-loop", "0", str(webp)],
            check=True,
        )  # fmt: skip
        job = make_job(webp, tmp_path / f"work-{name}", export=FAST)
        if capable:
            _, _, result = asyncio.run(produce(LocalEngine(ffmpeg=binary), job, tmp_path / "o.mp4"))
            assert result.duration == pytest.approx(1.0, abs=0.15)
        else:
            with pytest.raises(
                MediaError, match=rf"{name}\.webp could not be made into a video"
            ) as raised:
                asyncio.run(produce(LocalEngine(ffmpeg=binary), job, tmp_path / "o.mp4"))
            assert "FFmpeg 8 or newer" in (raised.value.hint or "")


@pytest.mark.parametrize(
    ("name", "codecs"),
    [
        ("clip.avi", ("-c:v", "mpeg4", "-q:v", "5", "-c:a", "libmp3lame")),
        ("clip.webm", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                       "-b:v", "200k", "-c:a", "libopus")),
        ("clip.mkv", ("-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac")),
    ],
)  # fmt: skip
async def test_avi_webm_and_mkv_sources_are_edited(
    clips: Clips, tmp_path: Path, name: str, codecs: tuple[str, ...]
) -> None:
    source = tmp_path / name
    ffmpeg("-i", str(clips.basic), *codecs, str(source))
    edit = EditSpec(aspect="1:1", title=TextOverlay(text="Hi"))

    _, _, result = await produce(
        LocalEngine(),
        make_job(source, tmp_path / "work", edit=edit, export=FAST),
        tmp_path / "o.mp4",
    )

    assert result.video is not None and result.audio is not None
    assert result.video.width == result.video.height
    assert result.duration == pytest.approx(probe(clips.basic).duration, abs=0.1)
    assert not (tmp_path / "work" / "footage.mkv").exists()  # a video is edited as it is
