"""The timelines of a nemo job (issue 18), against the fake NemoVideo server on 127.0.0.1:
the cloud's draft cuts the upload and adds a clip and music of its own; the timelines link
the archived source for the stretches of the upload, with their in points, and the
downloaded render where the cloud made what plays."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import opentimelineio as otio
import pytest

from nemowatch import timelines
from nemowatch.config import NemoSettings, Rule
from nemowatch.engines.nemo import NemoEngine
from nemowatch.files import claim
from nemowatch.ledger import JobRecord, JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from nemowatch.rules import ExportSpec
from tests.fakes.nemo_server import FakeNemo
from tests.media import Clips
from tests.running import no_sleep

FPS = 25  # clips.basic's rate, which the upload's answer reports
SAYS = ("cut out the silent parts", "add background music", "add the title 'Hello'")


@pytest.fixture(scope="module")
def video(clips: Clips) -> Path:
    """clips.basic (3 s) with its index first, as the fake serves it as the render."""
    return clips.fast_start()


async def run_job(fake: FakeNemo, rule: Rule, video: Path, state: Path) -> JobRecord:
    """A job of `video` dropped into `rule`'s inbox, run by the pipeline to the end."""
    ledger = Ledger.in_state_dir(state)
    engine = NemoEngine(
        NemoSettings(base_url=fake.base_url),
        state_dir=state,
        environ={},
        sleep=no_sleep,
        transport=httpx.AsyncHTTPTransport(),
        system="linux",
    )
    try:
        source = rule.inbox / "talk.mp4"
        shutil.copy(video, source)
        job_id = new_job_id()
        claimed = claim(source, rule.inbox, job_id)
        assert claimed is not None
        ledger.create(
            job_id=job_id, rule=rule.name, engine="nemo", source=source, claimed=claimed,
            source_inode=claimed.stat().st_ino,
        )  # fmt: skip
        await Pipeline(engine, ledger, state_dir=state, sleep=no_sleep).run(job_id, rule)
        return ledger.get(job_id)
    finally:
        await engine.close()
        ledger.close()


@pytest.fixture(scope="module")
def done(video: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[JobRecord, Rule]:
    """A nemo job asking for every timeline, whose cloud draft opens with a generated
    intro (1 s), then keeps 0-1 s and 2-3 s of the upload; run to the end."""
    folder = tmp_path_factory.mktemp("nemo-job")
    rule = Rule(
        name="talks",
        inbox=folder / "inbox",
        outbox=folder / "outbox",
        instructions=SAYS,
        outputs="{stem}-edited.mp4",
        export=ExportSpec(timelines=tuple(timelines.FORMATS)),
    )
    rule.inbox.mkdir()
    with FakeNemo(video=video) as fake:
        fake.lay_out_next(("generated", "intro", 1000), ("source", 0, 1000), ("source", 2000, 1000))
        return asyncio.run(run_job(fake, rule, video, folder / "state")), rule


def test_the_clouds_cut_links_the_archived_source_and_its_generated_clip_the_render(
    done: tuple[JobRecord, Rule],
) -> None:
    record, rule = done
    assert record.state is JobState.DONE, record.error
    output = rule.outbox / "talk-edited.mp4"
    archived = Path(str(record.disposed))
    assert archived.is_file() and archived.parent.parent == rule.inbox / "done"

    timeline = otio.adapters.read_from_file(str(output.with_suffix(".otio")))

    played = [
        (
            clip.media_reference.target_url,
            clip.source_range.start_time.value,
            clip.source_range.end_time_exclusive().value,
        )
        for clip in timeline.video_tracks()[0].find_clips()
    ]
    assert played == [
        (output.as_uri(), 0, 25),  # the generated intro: the render's first second
        (archived.as_uri(), 0, 25),  # the upload's 0-1 s
        (archived.as_uri(), 50, 75),  # the upload's 2-3 s
    ]
    assert {clip.source_range.start_time.rate for clip in timeline.find_clips()} == {FPS}
    source_audio, music = timeline.audio_tracks()
    assert [(type(item).__name__, item.range_in_parent().start_time.value)
            for item in source_audio] == [("Gap", 0), ("Clip", 25), ("Clip", 50)]  # fmt: skip
    (bed,) = music.find_clips()  # the cloud's music: in the render's sound only
    assert bed.media_reference.target_url == output.as_uri()
    assert (bed.source_range.start_time.value, bed.source_range.duration.value) == (0, 75)
    (volume,) = bed.effects
    assert volume.metadata["nemowatch"]["volume"] == 0.35
    titles = [clip.name for track in timeline.video_tracks()[1:] for clip in track.find_clips()]
    assert titles == ["Hello"]
    left = timeline.metadata["nemowatch"]["left_out"]
    assert any("generated media (intro.mp4)" in item for item in left)
    assert any("the cloud's music (lofi)" in item for item in left)


@pytest.mark.parametrize("fmt", ["fcpxml", "xml", "edl", "kdenlive"])
def test_each_editor_format_of_the_clouds_cut_reads_back_as_the_same_cut_list(
    fmt: str, done: tuple[JobRecord, Rule]
) -> None:
    record, rule = done
    output = rule.outbox / "talk-edited.mp4"
    expected = [("talk-edited.mp4", 0, 25), ("talk.mp4", 0, 25), ("talk.mp4", 50, 75)]
    assert timelines.cut_list(timelines.read(output.with_suffix(".otio"), "otio"), FPS) == expected

    back = timelines.read(output.with_suffix(timelines.FORMATS[fmt][1]), fmt, rate=FPS)

    assert timelines.cut_list(back, FPS) == expected
    assert str(output.with_suffix(timelines.FORMATS[fmt][1])) in map(str, record.outputs)
