"""Pictures of a finished job: its timeline from the draft the ledger keeps, and a strip of
thumbnails of its output (real FFmpeg, real ledger)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import av
import pytest

from nemowatch.config import Rule
from nemowatch.engines.base import Draft
from nemowatch.engines.local import LocalEngine
from nemowatch.errors import EngineError, MediaError
from nemowatch.files import claim
from nemowatch.ledger import JobRecord, JobState, Ledger, new_job_id
from nemowatch.picture import THUMB_WIDTH, svg_for_draft, thumbnails
from nemowatch.pipeline import Pipeline
from nemowatch.rules import ExportSpec
from tests.media import TOOL_FFMPEG

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, clips) -> JobRecord:
    """A job of the three-pause clip, cut, with music and a title, done."""
    folder = tmp_path_factory.mktemp("finished")
    rule = Rule(
        name="clips",
        inbox=folder / "inbox",
        outbox=folder / "outbox",
        instructions=("cut out silences, add background music", 'add the title "Hi" for 2s'),
        export=ExportSpec(quality="low"),
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir()
    source = rule.inbox / "talk.mp4"
    shutil.copy(clips.three_pauses, source)
    ledger = Ledger.in_state_dir(folder / "state")
    try:
        job_id = new_job_id()
        claimed = claim(source, rule.inbox, job_id)
        assert claimed is not None
        ledger.create(job_id=job_id, rule=rule.name, engine="local", source=source, claimed=claimed)
        pipeline = Pipeline(LocalEngine(), ledger, state_dir=folder / "state")
        record = asyncio.run(pipeline.run(job_id, rule))
    finally:
        ledger.close()
    assert record.state is JobState.DONE and record.draft is not None
    return record


def test_the_draft_of_a_finished_job_draws_its_cuts_music_and_title(finished, clips) -> None:
    assert finished.draft is not None
    draft = Draft.from_json(finished.draft)
    root = ElementTree.fromstring(svg_for_draft(draft, clips.three_pauses))
    shapes = list(root.iter(f"{SVG}rect"))
    cuts = [shape for shape in shapes if shape.get("class") == "cut"]
    pauses = clips.layout("three_pauses").silences
    assert len(cuts) == 3
    for shape, (start, end) in zip(cuts, pauses, strict=True):
        assert (
            start
            < float(shape.get("data-start", "nan"))
            < float(shape.get("data-end", "nan"))
            < end
        )
    (output,) = [shape for shape in shapes if shape.get("class") == "output"]
    assert float(output.get("data-end", "nan")) == pytest.approx(draft.duration, abs=0.001)
    assert [shape for shape in shapes if shape.get("class") == "music"]
    assert [shape.get("data-end") for shape in shapes if shape.get("class") == "title"] == ["2.000"]
    assert root.find(f"{SVG}polygon[@class='waveform']") is not None


def test_without_the_source_the_timeline_is_drawn_without_a_waveform(finished, tmp_path) -> None:
    assert finished.draft is not None
    draft = Draft.from_json(finished.draft)
    root = ElementTree.fromstring(svg_for_draft(draft, tmp_path / "gone.mp4"))
    assert root.find(f"{SVG}polygon[@class='waveform']") is None
    assert len([shape for shape in root.iter(f"{SVG}rect") if shape.get("class") == "cut"]) == 3


def test_thumbnails_are_one_decodable_strip_of_the_output(finished, tmp_path: Path) -> None:
    assert finished.output is not None
    strip = tmp_path / "strip.jpg"
    strip.write_bytes(thumbnails(finished.output, count=5))
    with av.open(str(strip)) as container:
        frame = next(container.decode(video=0))
    with av.open(str(finished.output)) as video:
        width, height = video.streams.video[0].width, video.streams.video[0].height
    expected_height = 2 * round(THUMB_WIDTH * height / width / 2)
    assert (frame.width, frame.height) == (5 * THUMB_WIDTH, expected_height)


def test_thumbnails_of_a_file_without_a_picture_say_so(clips, tmp_path: Path) -> None:
    sound = tmp_path / "sound.m4a"
    subprocess.run(
        [
            str(TOOL_FFMPEG),
            "-v",
            "error",
            "-i",
            str(clips.basic),
            "-vn",
            "-c:a",
            "copy",
            str(sound),
        ],
        check=True,
    )
    with pytest.raises(EngineError, match=r"sound\.m4a has no picture"):
        thumbnails(sound)
    with pytest.raises(MediaError):
        thumbnails(tmp_path / "missing.mp4")
