"""The two new FFmpeg jobs of this wave, run with every FFmpeg the machine has (Debian's
5.1 and the bundled one): a combined batch's footage (`engines/local/batch.py`) and a
cloud render conformed to the rule's export (`conform.py`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nemowatch import conform
from nemowatch.engines.local.ffmpeg import run_ffmpeg
from nemowatch.engines.local.footage import footage_of
from nemowatch.probe import probe
from nemowatch.rules import EditSpec, ExportSpec, Quality
from tests.media import accepted_ffmpegs

FFMPEGS = accepted_ffmpegs()


def make(binary: Path, *arguments: str) -> None:
    subprocess.run([str(binary), "-nostdin", "-y", "-v", "error", *arguments], check=True)


@pytest.mark.parametrize(("name", "binary"), FFMPEGS)
async def test_a_folder_of_photos_a_clip_and_a_song_joins_into_footage(
    tmp_path: Path, name: str, binary: Path
) -> None:
    folder = tmp_path / "trip"
    folder.mkdir()
    make(
        binary,
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=160x120",
        "-frames:v",
        "1",
        str(folder / "1.png"),
    )
    make(
        binary, "-f", "lavfi", "-i", "testsrc2=s=120x160:r=25:d=1",
        "-c:v", "libx264", "-preset", "ultrafast", str(folder / "2.mp4"),
    )  # fmt: skip
    make(binary, "-f", "lavfi", "-i", "sine=frequency=330:duration=3", str(folder / "song.wav"))
    work = tmp_path / "work"
    work.mkdir()

    footage = await footage_of(
        folder, work_dir=work, edit=EditSpec(), export=ExportSpec(), ffmpeg=binary
    )

    facts = probe(footage.path)
    assert facts.video is not None and facts.audio is not None
    assert (facts.video.width, facts.video.height) == (160, 120)  # the first picture's frame
    # the photo takes what the 1 s clip leaves of the 3 s song
    assert facts.duration == pytest.approx(3.0, abs=0.1)
    assert not [path for path in work.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize(("name", "binary"), FFMPEGS)
async def test_a_render_is_conformed_to_the_rules_size_and_rate(
    tmp_path: Path, name: str, binary: Path
) -> None:
    rendered = tmp_path / "render.mp4"
    make(
        binary, "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=1",
        "-f", "lavfi", "-i", "sine=d=1", "-c:v", "libx264", "-preset", "ultrafast",
        "-shortest", str(rendered),
    )  # fmt: skip
    export = ExportSpec(resolution="240p", fps=30.0, quality=Quality.LOW)
    change = conform.needs(640, 360, 25.0, export)
    assert change is not None
    target = tmp_path / "conformed.mp4"

    await run_ffmpeg(conform.arguments(rendered, target, change, export), ffmpeg=binary)

    facts = probe(target)
    assert facts.video is not None and facts.audio is not None
    assert (facts.video.width, facts.video.height) == (426, 240)
    assert facts.video.fps == pytest.approx(30.0)
    assert facts.duration == pytest.approx(1.0, abs=0.1)
