"""Timelines for editors (nemowatch/timelines.py): a real cut of a clip with three pauses
written through OpenTimelineIO's adapters, read back, and played with real FFmpeg."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import opentimelineio as otio
import pytest

from nemowatch import timelines
from nemowatch.config import BatchMode, OnConflict, Rule
from nemowatch.engines.base import Draft, Job, RenderState
from nemowatch.engines.local import LocalEngine
from nemowatch.engines.local.analysis import Segment
from nemowatch.engines.local.batch import Part, with_parts
from nemowatch.engines.local.footage import footage_of
from nemowatch.engines.local.music import MusicChoice
from nemowatch.engines.local.timeline import SourceFacts, build_draft
from nemowatch.files import claim, claim_folder
from nemowatch.jobs import Batch, Revision
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.pipeline import NO_BATCH_TIMELINES, Pipeline
from nemowatch.probe import probe
from nemowatch.rules import EditSpec, ExportSpec
from tests.media import TOOL_FFMPEG, Clips

FPS = 10  # the three_pauses clip's rate


class Cut:
    """The three-pause clip's cut: its draft, the source it links, its rendered MP4."""

    def __init__(self, draft: Draft, source: Path, output: Path) -> None:
        self.draft = draft
        self.source = source
        self.output = output

    def planned(self) -> list[tuple[str, int, int]]:
        """The plan's cut list, in frames of the source."""
        video = self.draft.tracks[0]
        return [
            (self.source.name, round(item["s"] * FPS / 1000), round(item["e"] * FPS / 1000))
            for item in video["sg"]
        ]


async def _cut(source: Path, work: Path) -> Cut:
    engine = LocalEngine()
    job = Job(
        id="job-1",
        rule="talks",
        source=source,
        instructions=("cut out silences",),
        edit=EditSpec(),
        export=ExportSpec(),
        work_dir=work,
    )
    session = await engine.open_session(job)
    await engine.upload(session, source)
    async for _ in engine.edit(session, "cut out silences"):
        pass
    draft = await engine.draft(session)
    render = await engine.export(session, draft, job.export)
    assert (await engine.poll(render)).state is RenderState.COMPLETED
    output = work.parent / "three_pauses.mp4"
    await engine.download(render, output)
    return Cut(draft, source, output)


@pytest.fixture(scope="module")
def cut(clips: Clips, tmp_path_factory: pytest.TempPathFactory) -> Cut:
    folder = tmp_path_factory.mktemp("cut")
    return asyncio.run(_cut(clips.three_pauses, folder / "work"))


@pytest.fixture(scope="module")
def written(cut: Cut, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The cut written in every format, linking an archived copy's path."""
    folder = tmp_path_factory.mktemp("timelines")
    archived = folder / "done" / cut.source.name  # where the source is said to be for good
    paths = {}
    for fmt, (_, extension) in timelines.FORMATS.items():
        path = folder / f"three_pauses{extension}"
        timelines.write(timelines.build(cut.draft, fmt, source=archived), fmt, path)
        paths[fmt] = path
    return paths


def test_the_otio_file_has_one_clip_per_kept_segment_exact_to_the_frame(
    cut: Cut, written: dict[str, Path]
) -> None:
    timeline = otio.adapters.read_from_file(str(written["otio"]))
    clips = list(timeline.video_tracks()[0].find_clips())

    assert len(cut.planned()) == 4  # four stretches of speech around three pauses
    assert [
        (
            Path(clip.media_reference.target_url).name,
            clip.source_range.start_time.value,
            clip.source_range.end_time_exclusive().value,
        )
        for clip in clips
    ] == cut.planned()
    assert {clip.source_range.start_time.rate for clip in clips} == {FPS}
    archived = written["otio"].parent / "done" / cut.source.name
    assert {clip.media_reference.target_url for clip in clips} == {archived.as_uri()}


def test_the_source_audio_is_on_its_own_track_with_the_same_cuts(
    written: dict[str, Path], cut: Cut
) -> None:
    timeline = otio.adapters.read_from_file(str(written["otio"]))

    (sound,) = timeline.audio_tracks()
    assert timelines.cut_list(timeline, FPS) == cut.planned()
    assert [clip.source_range for clip in sound.find_clips()] == [
        clip.source_range for clip in timeline.video_tracks()[0].find_clips()
    ]
    assert timeline.metadata["nemowatch"]["width"] == 64
    assert timeline.metadata["nemowatch"]["fps"] == FPS


@pytest.mark.parametrize("fmt", ["fcpxml", "xml", "edl", "kdenlive"])
def test_each_editor_format_reads_back_as_the_same_cut_list(
    fmt: str, written: dict[str, Path], cut: Cut
) -> None:
    # a format that counts in SMPTE timecode runs a 10 fps cut at 30 fps: three frames each
    back = timelines.read(written[fmt], fmt, rate=timelines.timecode_rate(FPS))

    assert timelines.cut_list(back, FPS) == cut.planned()


def test_playing_the_otio_cut_list_with_ffmpeg_lasts_as_long_as_the_mp4(
    written: dict[str, Path], cut: Cut, tmp_path: Path
) -> None:
    timeline = otio.adapters.read_from_file(str(written["otio"]))
    pieces = []
    for index, clip in enumerate(timeline.video_tracks()[0].find_clips()):
        start = clip.source_range.start_time.to_seconds()
        end = clip.source_range.end_time_exclusive().to_seconds()
        pieces.append(f"[0:v]trim=start={start}:end={end},setpts=PTS-STARTPTS[v{index}]")
    joined = "".join(f"[v{index}]" for index in range(len(pieces)))
    graph = ";".join([*pieces, f"{joined}concat=n={len(pieces)}:v=1:a=0[out]"])
    played = tmp_path / "played.mp4"
    subprocess.run(
        [str(TOOL_FFMPEG), "-v", "error", "-i", str(cut.source), "-filter_complex", graph,
         "-map", "[out]", "-c:v", "libx264", str(played)],
        check=True,
    )  # fmt: skip

    assert abs(probe(played).duration - probe(cut.output).duration) <= 1 / FPS + 1e-6
    assert abs(probe(played).duration - cut.draft.duration) <= 1 / FPS + 1e-6


@pytest.fixture(scope="module")
def reel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Draft, Path]:
    """A draft with a music file (ducked under speech) and a title, planned without FFmpeg."""
    folder = tmp_path_factory.mktemp("reel")
    music = folder / "bed.m4a"  # linked by its path: the timeline never opens it
    draft = build_draft(
        [Segment(0.0, 2.0), Segment(3.0, 5.0)],
        source=SourceFacts("talk.mp4", 6.0, 1280, 720, 25.0, has_audio=True),
        edit=EditSpec(title="Hello", music=str(music), aspect="9:16", normalize=True),
        export=ExportSpec(),
        speech=[Segment(0.5, 1.5)],
        music=MusicChoice(source=str(music), generated=False),
    )
    return draft, music


def test_a_reel_keeps_its_music_volume_and_title_in_otio(
    reel: tuple[Draft, Path], tmp_path: Path
) -> None:
    draft, music = reel
    built = timelines.build(draft, "otio", source=tmp_path / "talk.mp4")
    timelines.write(built, "otio", tmp_path / "reel.otio")
    timeline = otio.adapters.read_from_file(str(tmp_path / "reel.otio"))

    (bed,) = [track for track in timeline.audio_tracks() if track.name == "Music"]
    (clip,) = bed.find_clips()
    assert Path(clip.media_reference.target_url).name == music.name
    (volume,) = clip.effects
    assert volume.metadata["nemowatch"]["volume"] == 0.35
    # ducked 15 dB under the speech at 0.5-1.5 s: down over 0.25 s before, up over 0.5 s after
    full, ducked = -9.12, -24.12  # 35 % is -9.12 dB
    levels = [(int(frame), level) for frame, level in volume.metadata["keyframes"].items()]
    assert levels == [(0, full), (6, full), (12, ducked), (38, ducked), (50, full)]
    (titles,) = [track for track in timeline.video_tracks() if track.name == "Titles"]
    (title,) = titles.find_clips()
    assert title.media_reference.parameters["text"] == "Hello"
    left = list(timeline.metadata["nemowatch"]["left_out"])
    assert left == list(built.left_out)
    assert any("9:16" in item for item in left) and "loudness normalisation" in left


def test_a_reel_keeps_its_music_volume_and_title_in_fcpxml(
    reel: tuple[Draft, Path], tmp_path: Path
) -> None:
    draft, music = reel
    built = timelines.build(draft, "fcpxml", source=tmp_path / "talk.mp4")
    path = tmp_path / "reel.fcpxml"
    timelines.write(built, "fcpxml", path)
    back = timelines.read(path, "fcpxml")
    text = path.read_text(encoding="utf-8")

    names = [clip.name for clip in back.find_clips()]
    assert music.name in names
    assert "music at 35 %" in text  # the music clip's note
    markers = [marker.name for clip in back.find_clips() for marker in clip.markers]
    assert "title: Hello" in markers
    assert "ducked 15 dB under speech at 0.5-1.5 s" in text  # the note: no keyframes here
    assert any("ducking under speech" in item for item in built.left_out)
    assert "nemowatch left out:" in text


def test_a_reel_keeps_its_music_level_and_ducking_as_keyframes_in_fcp7_xml(
    reel: tuple[Draft, Path], tmp_path: Path
) -> None:
    draft, music = reel
    built = timelines.build(draft, "xml", source=tmp_path / "talk.mp4")
    path = tmp_path / "reel.xml"
    timelines.write(built, "xml", path)

    back = timelines.read(path, "xml")

    (bed,) = [clip for clip in back.find_clips() if clip.name == music.name]
    (levels,) = bed.effects  # FCP 7's Audio Levels filter, read back by the adapter
    parameter = levels.metadata["fcp_xml"]["parameter"]
    assert parameter["parameterid"] == "level"
    keyed = [(int(key["when"]), round(float(key["value"]), 3)) for key in parameter["keyframe"]]
    full, ducked = 0.35, round(0.35 * 10 ** (-15 / 20), 3)  # 35 %, then 15 dB down: 0.062
    assert keyed == [(0, full), (6, full), (12, ducked), (38, ducked), (50, full)]
    assert not any("level" in item or "ducking" in item for item in built.left_out)


def test_a_nemo_draft_without_source_points_plays_the_render_as_one_clip(
    tmp_path: Path,
) -> None:
    draft = Draft(tracks=({"tt": 0, "sg": [{"at": 0, "d": 4000}]},), duration_ms=4000)
    render = tmp_path / "talk.mp4"

    built = timelines.build(draft, "otio", source=tmp_path / "in.mp4", render=render)

    (clip,) = built.timeline.video_tracks()[0].find_clips()
    assert clip.media_reference.target_url == render.as_uri()
    assert clip.source_range.duration.to_seconds() == 4.0
    assert any("NemoVideo" in item for item in built.left_out)


# ---- published by the pipeline, beside the output -----------------------------------------------


def run_job(
    tmp_path: Path,
    clips: Clips,
    export: ExportSpec,
    sidecar: str | None = None,
    on_conflict: OnConflict = OnConflict.RENAME,
) -> tuple[Pipeline, Ledger, Rule, str]:
    """A job of the three-pause clip (and a clip.txt sidecar saying `sidecar`) run by the
    pipeline to the end."""
    rule = Rule(
        name="clips",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=["cut out silences"],
        export=export,
        report=True,
        on_conflict=on_conflict,
    )
    rule.inbox.mkdir()
    rule.outbox.mkdir(exist_ok=True)
    ledger = Ledger.in_state_dir(tmp_path / "state")
    pipeline = Pipeline(LocalEngine(), ledger, state_dir=tmp_path / "state")
    source = rule.inbox / "clip.mp4"
    shutil.copy(clips.three_pauses, source)
    job_id = new_job_id()
    claimed = claim(source, rule.inbox, job_id)
    assert claimed is not None
    sidecars = []
    if sidecar is not None:
        note = rule.inbox / "clip.txt"
        note.write_text(sidecar, encoding="utf-8")
        sidecars = [{"source": str(note), "claimed": str(claim(note, rule.inbox, job_id))}]
    ledger.create(
        job_id=job_id, rule=rule.name, engine="local", source=source, claimed=claimed,
        source_inode=claimed.stat().st_ino,  # as the daemon's intake records it
        sidecars=sidecars,
    )  # fmt: skip
    asyncio.run(pipeline.run(job_id, rule))
    return pipeline, ledger, rule, job_id


@pytest.fixture
def done(tmp_path: Path, clips: Clips) -> tuple[Pipeline, Ledger, Rule, str]:
    """A job with `timelines: [otio, edl]` run by the pipeline to the end."""
    return run_job(tmp_path, clips, ExportSpec(quality="low", timelines=("otio", "edl")))


def test_the_pipeline_publishes_the_timelines_beside_the_mp4_linking_the_archived_source(
    done: tuple[Pipeline, Ledger, Rule, str],
) -> None:
    _, ledger, rule, job_id = done
    record = ledger.get(job_id)

    assert record.state is JobState.DONE
    assert sorted(path.name for path in rule.outbox.iterdir()) == [
        "clip.edl", "clip.mp4", "clip.mp4.json", "clip.otio",
    ]  # fmt: skip
    assert [path.name for path in record.outputs] == ["clip.mp4", "clip.otio", "clip.edl"]
    archived = Path(str(record.disposed))
    assert archived.parent.parent == rule.inbox / "done" and archived.is_file()
    timeline = otio.adapters.read_from_file(str(rule.outbox / "clip.otio"))
    assert {clip.media_reference.target_url for clip in timeline.find_clips()} == {
        archived.as_uri()
    }
    edl = timelines.read(rule.outbox / "clip.edl", "edl", rate=timelines.timecode_rate(FPS))
    assert timelines.cut_list(edl, FPS) == timelines.cut_list(timeline, FPS)
    report = json.loads((rule.outbox / "clip.mp4.json").read_text(encoding="utf-8"))
    assert set(report["timelines"]) == {"otio", "edl"}
    assert report["timelines"]["otio"]["file"] == str(rule.outbox / "clip.otio")
    assert "loudness normalisation" in report["timelines"]["edl"]["left_out"]


def test_a_timeline_that_cannot_be_written_is_a_warning_and_the_others_are_published(
    tmp_path: Path, clips: Clips
) -> None:
    """The `.edl`'s place is taken by a folder, which `overwrite` cannot replace: the video,
    the `.otio` and the `.xml` are published, the source archived, the job done with a
    warning naming the edl, and the folder left as it was."""
    blocker = tmp_path / "outbox" / "clip.edl"
    blocker.mkdir(parents=True)
    (blocker / "mine.txt").write_text("not nemowatch's", encoding="utf-8")
    formats = ("otio", "edl", "xml")
    _, ledger, rule, job_id = run_job(
        tmp_path,
        clips,
        ExportSpec(quality="low", timelines=formats),
        on_conflict=OnConflict.OVERWRITE,
    )
    record = ledger.get(job_id)
    assert record.state is JobState.DONE and record.disposed is not None
    assert list(record.published) == ["", "timeline otio", "timeline xml"]
    assert (rule.outbox / "clip.otio").is_file() and (rule.outbox / "clip.xml").is_file()
    (warning,) = [text for text in record.warnings if "timeline" in text]
    assert warning.startswith("a timeline for editors was not written: edl: ")
    assert (blocker / "mine.txt").read_text(encoding="utf-8") == "not nemowatch's"
    assert not [path.name for path in rule.outbox.iterdir() if path.name.startswith(".")]


def test_a_sidecar_asking_for_a_premiere_timeline_gets_one(tmp_path: Path, clips: Clips) -> None:
    _, ledger, rule, job_id = run_job(
        tmp_path, clips, ExportSpec(quality="low"), sidecar="also export a Premiere timeline"
    )

    record = ledger.get(job_id)
    assert [path.name for path in record.outputs] == ["clip.mp4", "clip.xml"]
    back = timelines.read(rule.outbox / "clip.xml", "xml")
    assert len(timelines.cut_list(back, FPS)) == 4


@pytest.mark.parametrize("fmt", list(timelines.FORMATS))
def test_an_ntsc_cut_with_generated_music_and_a_speed_change_is_written_in_each_format(
    fmt: str, tmp_path: Path
) -> None:
    ntsc = 30000 / 1001
    draft = build_draft(
        [Segment(0.0, 2.002), Segment(3.003, 5.005)],
        source=SourceFacts("talk.mp4", 6.0, 1920, 1080, ntsc, has_audio=True),
        edit=EditSpec(music="lofi", speed=1.5),
        export=ExportSpec(),
        music=MusicChoice(source="lofi", generated=True),
    )
    built = timelines.build(draft, fmt, source=tmp_path / "talk.mp4")
    path = tmp_path / f"talk{timelines.FORMATS[fmt][1]}"

    timelines.write(built, fmt, path)  # read back inside: the cuts must be there

    back = timelines.read(path, fmt, rate=timelines.timecode_rate(ntsc, fmt))
    assert timelines.cut_list(back, ntsc) == [("talk.mp4", 0, 60), ("talk.mp4", 90, 150)]
    assert any("speed change (1.5x)" in item for item in built.left_out)
    if fmt != "edl":
        assert any("generated music (lofi)" in item for item in built.left_out)


def test_a_combined_folders_timeline_links_each_of_its_archived_files(
    tmp_path: Path, clips: Clips
) -> None:
    rule = Rule(
        name="joined",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=["cut out silences"],
        batch=BatchMode.COMBINE,
        export=ExportSpec(quality="low", timelines=("otio", "edl")),
    )
    dropped = rule.inbox / "trip"
    dropped.mkdir(parents=True)
    shutil.copy(clips.basic, dropped / "a.mp4")  # 3 s of steady tone: kept whole
    shutil.copy(clips.three_pauses, dropped / "b.mp4")  # 8 s, three pauses cut
    ledger = Ledger.in_state_dir(tmp_path / "state")
    job_id = new_job_id()
    claimed = claim_folder(dropped, rule.inbox, job_id)
    assert claimed is not None
    batch = Batch(job_id, "combine", dropped, claimed, files=("a.mp4", "b.mp4"))
    ledger.create(
        job_id=job_id, rule=rule.name, engine="local", source=dropped, claimed=claimed,
        source_inode=claimed.stat().st_ino, batch=batch,
    )  # fmt: skip

    record = asyncio.run(
        Pipeline(LocalEngine(), ledger, state_dir=tmp_path / "state").run(job_id, rule)
    )

    assert record.state is JobState.DONE, record.error
    archived = Path(str(ledger.get(job_id).disposed))
    assert archived.is_dir() and archived.name == "trip"
    timeline = otio.adapters.read_from_file(str(rule.outbox / "trip.otio"))
    rate = timeline.metadata["nemowatch"]["fps"]  # the joined footage's
    played = [
        (
            clip.media_reference.target_url,
            clip.source_range.start_time.value,
            clip.source_range.end_time_exclusive().value,
        )
        for clip in timeline.video_tracks()[0].find_clips()
    ]
    # a.mp4 whole, then b.mp4's four phrases (the first joined to a.mp4 in one segment)
    assert [url for url, _, _ in played] == [(archived / "a.mp4").as_uri()] + [
        (archived / "b.mp4").as_uri()
    ] * 4
    assert played[0][1:] == (0, round(3 * rate))
    for start, end in clips.layout("three_pauses").silences:  # cut: in no clip of b.mp4
        middle = (start + end) / 2 * rate
        assert not any(first <= middle < last for _, first, last in played[1:]), (start, end)
    length = sum(last - first for _, first, last in played)
    assert abs(length - probe(record.output).duration * rate) <= 1  # as long as the MP4
    edl = timelines.read(rule.outbox / "trip.edl", "edl", rate=timelines.timecode_rate(rate))
    assert timelines.cut_list(edl, rate) == timelines.cut_list(timeline, rate)


def test_a_file_of_a_batch_each_folder_says_it_gets_no_timelines(
    tmp_path: Path, clips: Clips
) -> None:
    """Its folder moves as one when the last of its jobs ends: no final place to link yet.
    The video is made; the job says why it has no timeline (not a silent half)."""
    rule = Rule(
        name="each",
        inbox=tmp_path / "inbox",
        outbox=tmp_path / "outbox",
        instructions=["cut out silences"],
        export=ExportSpec(quality="low", timelines=("otio",)),
    )
    dropped = rule.inbox / "trip"
    dropped.mkdir(parents=True)
    shutil.copy(clips.basic, dropped / "a.mp4")
    ledger = Ledger.in_state_dir(tmp_path / "state")
    claim_id = new_job_id()
    claimed = claim_folder(dropped, rule.inbox, claim_id)
    assert claimed is not None
    batch = Batch(claim_id, "each", dropped, claimed, files=("a.mp4",))
    job_id = new_job_id()
    ledger.create(
        job_id=job_id, rule=rule.name, engine="local", source=dropped / "a.mp4",
        claimed=claimed / "a.mp4", batch=batch,
    )  # fmt: skip

    record = asyncio.run(
        Pipeline(LocalEngine(), ledger, state_dir=tmp_path / "state").run(job_id, rule)
    )

    assert record.state is JobState.DONE, record.error
    assert record.output is not None and record.output.is_file()
    assert NO_BATCH_TIMELINES in record.warnings
    assert not [name for name in record.published if name.startswith("timeline")]
    assert not list(rule.outbox.glob("*.otio"))


def test_a_revisions_timelines_link_the_first_jobs_source_and_follow_its_file(
    done: tuple[Pipeline, Ledger, Rule, str],
) -> None:
    pipeline, ledger, rule, first_id = done
    first = ledger.get(first_id)
    kept = Path(str(first.disposed))  # the source, archived by the first job
    note = rule.inbox / "clip.revise.txt"
    note.write_text('add the title "Two" for 1 second\nexport a Premiere timeline\n')
    job_id = new_job_id()
    claimed = claim(note, rule.inbox, job_id)
    assert claimed is not None and first.output is not None
    revision = Revision(
        of=first.id, after=first.id, version=2, source=kept, outputs=(("", first.output),)
    )
    ledger.create(
        job_id=job_id, rule=rule.name, engine="local", source=note, claimed=claimed,
        revision=revision,
    )  # fmt: skip

    record = asyncio.run(pipeline.run(job_id, rule))

    assert record.state is JobState.DONE, record.error
    # the revision file's "Premiere timeline" (xml) over the rule's otio and edl
    assert [path.name for path in record.outputs] == ["clip v2.mp4", "clip v2.xml"]
    back = timelines.read(rule.outbox / "clip v2.xml", "xml")
    cuts = timelines.cut_list(back, FPS)
    assert len(cuts) == 4 and {name for name, _, _ in cuts} == {kept.name}
    assert {clip.media_reference.target_url for clip in back.video_tracks()[0].find_clips()} == {
        kept.as_uri()
    }  # the first job's archived source, not the revision file
    titles = [clip.name for track in back.video_tracks()[1:] for clip in track.find_clips()]
    assert titles == ["Two"]


async def test_a_combined_folders_footage_keeps_its_parts_for_a_resumed_job(
    tmp_path: Path, clips: Clips
) -> None:
    folder = tmp_path / "trip"
    folder.mkdir()
    subprocess.run(
        [str(TOOL_FFMPEG), "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x36",
         "-frames:v", "1", str(folder / "1.png")],
        check=True,
    )  # fmt: skip
    shutil.copy(clips.no_audio, folder / "2.mp4")  # 2 s
    shutil.copy(clips.basic, folder / "3.mp4")  # 3 s
    work = tmp_path / "work"
    work.mkdir()
    edit = EditSpec()

    made = await footage_of(
        folder, work_dir=work, edit=edit, export=ExportSpec(), ffmpeg=TOOL_FFMPEG
    )
    found = await footage_of(  # made before: as a resumed job finds it
        folder, work_dir=work, edit=edit, export=ExportSpec(), ffmpeg=TOOL_FFMPEG
    )

    assert [(part.file, part.still) for part in made.parts] == [
        ("1.png", True), ("2.mp4", False), ("3.mp4", False),
    ]  # fmt: skip
    assert made.parts[1].seconds == pytest.approx(2.0, abs=0.05)
    assert made.parts[0].seconds == edit.still.duration
    assert found.path == made.path and found.parts == made.parts


@pytest.mark.parametrize("fmt", list(timelines.FORMATS))
def test_a_combined_folder_with_a_photo_is_written_in_each_format(fmt: str, tmp_path: Path) -> None:
    draft = build_draft(
        [Segment(1.0, 4.0), Segment(4.6, 6.0)],  # the first runs from the photo into 2.mp4
        source=SourceFacts("trip", 6.0, 640, 360, 25.0, has_audio=True),
        edit=EditSpec(),
        export=ExportSpec(),
    )
    parts = (Part("1.jpg", 2.0, still=True), Part("2.mp4", 4.0))
    draft = with_parts(draft, parts, "song.mp3")
    built = timelines.build(draft, fmt, source=tmp_path / "trip")
    path = tmp_path / f"trip{timelines.FORMATS[fmt][1]}"

    timelines.write(built, fmt, path)  # read back inside: the cuts must be there

    back = timelines.read(path, fmt, rate=timelines.timecode_rate(25.0, fmt))
    assert timelines.cut_list(back, 25) == [
        ("1.jpg", 25, 50), ("2.mp4", 0, 50), ("2.mp4", 65, 100),
    ]  # fmt: skip
    assert any("soundtrack (song.mp3)" in item for item in built.left_out)
    assert any("photos" in item for item in built.left_out)
