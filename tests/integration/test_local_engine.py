"""The local engine end to end, with real FFmpeg on generated clips."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nemowatch.engines.base import (
    Draft,
    EditEvent,
    EditEventKind,
    Engine,
    Job,
    Media,
    RenderState,
    Session,
)
from nemowatch.engines.local import LocalEngine
from nemowatch.engines.local import render as render_module
from nemowatch.engines.local.analysis import Segment
from nemowatch.engines.local.ffmpeg import find_ffmpeg, probe_ffmpeg, run_ffmpeg
from nemowatch.engines.local.music import MusicChoice
from nemowatch.engines.local.timeline import SourceFacts, build_draft
from nemowatch.errors import EngineError, MediaError
from nemowatch.probe import Probe, moov_before_mdat, probe
from nemowatch.rules import EditSpec, ExportSpec, Quality, SilenceCut
from tests.media import Clips, make_clip, write_random_bytes

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def make_job(
    source: Path,
    work_dir: Path,
    *,
    instructions: tuple[str, ...] = (),
    edit: EditSpec | None = None,
    export: ExportSpec | None = None,
) -> Job:
    return Job(
        id="job-1",
        rule="talks",
        source=source,
        instructions=instructions,
        edit=edit or EditSpec(),
        export=export or ExportSpec(),
        work_dir=work_dir,
    )


async def edit_events(engine: Engine, session: Session, instruction: str) -> list[EditEvent]:
    return [event async for event in engine.edit(session, instruction)]


async def produce(engine: Engine, job: Job, destination: Path) -> tuple[Media, Draft, Probe]:
    """Drive a job through every step, as the pipeline does."""
    session = await engine.open_session(job)
    media = await engine.upload(session, job.source)
    for instruction in job.instructions:
        await edit_events(engine, session, instruction)
    draft = await engine.draft(session)
    render = await engine.export(session, draft, job.export)
    status = await engine.poll(render)
    assert status.state is RenderState.COMPLETED
    await engine.download(render, destination)
    return media, draft, probe(destination)


async def test_cutting_silences_shortens_the_clip_by_its_silences(
    clips: Clips, tmp_path: Path
) -> None:
    layout = clips.layout("silences")
    job = make_job(layout.path, tmp_path / "work", instructions=("cut out silences",))
    destination = tmp_path / "outbox" / ".talk.mp4.part"
    destination.parent.mkdir()

    media, draft, result = await produce(LocalEngine(), job, destination)

    expected = layout.duration_without_silences(margin=0.2, min_cut=0.2)
    assert media.duration == pytest.approx(10.0, abs=0.05)
    assert draft.duration == pytest.approx(expected, abs=0.2)
    assert result.video is not None and result.audio is not None
    assert result.video.duration == pytest.approx(expected, abs=0.2)
    assert result.video.duration == pytest.approx(draft.duration, abs=0.05)
    assert result.audio.duration == pytest.approx(result.video.duration, abs=0.05)
    # a cut-only job is smart-rendered: the source's whole GOPs are copied, in its profile
    source = probe(layout.path).video
    assert source is not None
    assert (result.video.codec, result.video.profile, result.video.pix_fmt) == (
        "h264",
        source.profile,
        "yuv420p",
    )
    assert (result.audio.codec, result.audio.sample_rate, result.audio.channels) == (
        "aac",
        48000,
        2,
    )
    assert moov_before_mdat(destination)


async def test_without_an_edit_the_clips_picture_is_copied(clips: Clips, tmp_path: Path) -> None:
    destination = tmp_path / "out.mp4"

    _, draft, result = await produce(
        LocalEngine(), make_job(clips.basic, tmp_path / "work"), destination
    )

    assert draft.duration == pytest.approx(3.0, abs=0.001)
    assert result.video is not None and result.audio is not None
    assert result.video.duration == pytest.approx(3.0, abs=0.05)
    # smart rendering: every GOP copied as it is, in the source's profile
    source = probe(clips.basic).video
    assert source is not None
    assert (result.video.width, result.video.height) == (160, 120)
    assert result.video.profile == source.profile
    assert (result.audio.sample_rate, result.audio.channels) == (48000, 2)
    assert moov_before_mdat(destination)


@pytest.mark.parametrize(
    ("clip", "size"), [("basic", (320, 240)), ("portrait", (240, 320))], ids=["wide", "tall"]
)
async def test_a_target_resolution_sets_the_short_side(
    clips: Clips, tmp_path: Path, clip: str, size: tuple[int, int]
) -> None:
    job = make_job(clips.layout(clip).path, tmp_path / "work", export=ExportSpec(resolution="240p"))

    _, _, result = await produce(LocalEngine(), job, tmp_path / "out.mp4")

    assert result.video is not None
    assert (result.video.width, result.video.height) == size


async def test_a_clip_without_audio_comes_out_without_audio_even_when_cutting_silences(
    clips: Clips, tmp_path: Path
) -> None:
    job = make_job(clips.no_audio, tmp_path / "work", instructions=("remove silence",))

    media, draft, result = await produce(LocalEngine(), job, tmp_path / "out.mp4")

    assert media.has_audio is False
    assert [track["tt"] for track in draft.tracks] == [0]
    assert result.audio is None
    assert result.video is not None
    assert result.video.duration == pytest.approx(2.0, abs=0.05)


async def test_the_rules_structured_edit_wins_over_the_text(clips: Clips, tmp_path: Path) -> None:
    engine = LocalEngine()
    job = make_job(
        clips.silences,
        tmp_path / "work",
        instructions=("cut out silences",),
        edit=EditSpec.model_validate({"cut_silences": False}),
    )
    session = await engine.open_session(job)

    draft = await engine.draft(session)

    assert draft.duration == pytest.approx(10.0, abs=0.001)


async def test_a_session_restored_from_json_carries_on_after_a_restart(
    clips: Clips, tmp_path: Path
) -> None:
    job = make_job(
        clips.silences,
        tmp_path / "work",
        instructions=("remove the pauses",),
        edit=EditSpec(cut_silences=SilenceCut(margin=0.1)),
    )
    session = await LocalEngine().open_session(job)
    stored = json.dumps({"id": session.id, "data": session.data})

    restored = Session(**json.loads(stored))
    draft = await LocalEngine().draft(restored)

    layout = clips.layout("silences")
    assert draft.duration == pytest.approx(layout.duration_without_silences(margin=0.1), abs=0.2)


async def test_edit_says_what_it_will_do_and_warns_about_the_rest(
    clips: Clips, tmp_path: Path
) -> None:
    engine = LocalEngine()
    asked = "cut out silences, and make it look like a Wes Anderson film"
    job = make_job(clips.basic, tmp_path / "work", instructions=(asked,))
    session = await engine.open_session(job)

    events = await edit_events(engine, session, asked)

    assert [(event.kind, event.text) for event in events] == [
        (EditEventKind.TEXT, "will cut silences below -28 dB"),
        (
            EditEventKind.WARNING,
            'not understood by the local engine, ignored: "make it look like a Wes Anderson film"',
        ),
    ]


async def test_an_instruction_outside_the_job_is_refused_aloud_not_silently_planned(
    clips: Clips, tmp_path: Path
) -> None:
    engine = LocalEngine()
    job = make_job(clips.basic, tmp_path / "work", instructions=("cut out silences",))
    session = await engine.open_session(job)

    events = await edit_events(engine, session, "add a title 'Hello'")
    plan = await engine.plan(session)

    assert [event.kind for event in events] == [EditEventKind.WARNING]
    assert "is not one of them and is ignored" in events[0].text
    assert plan.edit.title is None  # the draft comes from the job's instructions alone


async def test_a_matroska_clip_is_accepted(clips: Clips, tmp_path: Path) -> None:
    engine = LocalEngine()
    session = await engine.open_session(make_job(clips.matroska, tmp_path / "work"))

    media = await engine.upload(session, clips.matroska)

    assert (media.name, media.width, media.height, media.has_audio) == (
        "matroska.mkv",
        160,
        120,
        True,
    )
    assert media.duration == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("noise.mp4", "random", r"noise\.mp4 is not a readable video"),
        (
            "empty.mp4",
            "empty",
            r"empty\.mp4 is not a readable video, photo or sound file \(the file is empty",
        ),
        # by content, not name: a .txt is refused for what it holds
        ("notes.txt", "random", r"notes\.txt is not a readable video, photo or sound file"),
    ],
)
async def test_unusable_files_are_refused_at_upload(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    source = tmp_path / name
    if content == "random":
        write_random_bytes(source)
    else:
        source.touch()
    engine = LocalEngine()
    session = await engine.open_session(make_job(source, tmp_path / "work"))

    with pytest.raises(MediaError, match=message) as raised:
        await engine.upload(session, source)

    assert raised.value.hint


async def test_a_clip_that_is_silent_throughout_cannot_have_its_silences_cut(
    tmp_path: Path,
) -> None:
    silent = make_clip(
        tmp_path / "hush.mp4", 2, audio="speech_with_silences", silences=[(0.0, 2.0)]
    )
    engine = LocalEngine()
    session = await engine.open_session(
        make_job(silent.path, tmp_path / "work", instructions=("cut out silences",))
    )

    with pytest.raises(MediaError, match=r"hush\.mp4 is silent throughout") as raised:
        await engine.draft(session)

    assert raised.value.hint and "threshold_db" in raised.value.hint


async def test_a_very_long_filter_graph_is_passed_through_a_file(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_module, "FILTER_SCRIPT_THRESHOLD", 0)
    engine = LocalEngine()
    session = await engine.open_session(make_job(clips.basic, tmp_path / "work"))
    segments = [Segment(0.0, 1.0), Segment(2.0, 3.0)]
    draft = build_draft(
        segments,
        source=SourceFacts("basic.mp4", 3.0, 160, 120, 25.0, has_audio=True),
        edit=EditSpec(),
        export=ExportSpec(quality=Quality.LOW),
    )

    render = await engine.export(session, draft, ExportSpec(quality=Quality.LOW))

    result = probe(Path(render.data["path"]))
    assert result.video is not None and result.audio is not None
    assert result.video.duration == pytest.approx(2.0, abs=0.05)
    assert result.audio.duration == pytest.approx(2.0, abs=0.05)
    assert (tmp_path / "work" / "render.filtergraph.txt").read_text().startswith("[0:V:0]split=2")


async def test_music_that_does_not_exist_fails_the_draft_naming_it(
    clips: Clips, tmp_path: Path
) -> None:
    missing = tmp_path / "tracks" / "theme.mp3"
    engine = LocalEngine()
    session = await engine.open_session(
        make_job(clips.basic, tmp_path / "work", edit=EditSpec(music=str(missing)))
    )

    with pytest.raises(MediaError, match=r"the music '.*tracks/theme\.mp3' does not exist"):
        await engine.draft(session)


async def test_a_draft_and_session_restored_from_json_export_after_a_restart(
    clips: Clips, tmp_path: Path
) -> None:
    job = make_job(
        clips.basic,
        tmp_path / "work",
        instructions=("export as webm",),
        edit=EditSpec.model_validate({"music": "calm", "title": "Hello", "aspect": "1:1"}),
        export=ExportSpec(quality=Quality.LOW),
    )
    first = LocalEngine()
    session = await first.open_session(job)
    draft = await first.draft(session)
    stored = json.dumps(
        {"session": {"id": session.id, "data": session.data}, "draft": draft.to_json()}
    )

    restored = json.loads(stored)
    render = await LocalEngine().export(
        Session(**restored["session"]), Draft.from_json(restored["draft"]), job.export
    )

    result = probe(Path(render.data["path"]))
    assert Path(render.data["path"]).name == "render.webm"
    assert json.loads(json.dumps(render.data)) == render.data
    assert result.video is not None and (result.video.width, result.video.height) == (120, 120)
    assert result.audio is not None


@pytest.mark.default_ffmpeg  # rotation is stored differently before FFmpeg 6 (conftest.py)
async def test_a_phone_video_shown_upright_keeps_its_upright_shape(
    clips: Clips, tmp_path: Path
) -> None:
    # stored 160x120, to be shown turned a quarter: 120x160 (a phone held upright)
    turned = tmp_path / "turned.mp4"
    ffmpeg = probe_ffmpeg(find_ffmpeg())
    if ffmpeg.major is not None and ffmpeg.major < 6:  # -display_rotation arrived in 6.0
        rotation = ["-i", str(clips.basic), "-metadata:s:v:0", "rotate=90"]
    else:
        rotation = ["-display_rotation", "90", "-i", str(clips.basic)]
    subprocess.run(
        [
            *[str(ffmpeg.path), "-hide_banner", "-loglevel", "error"],
            *[*rotation, "-c", "copy", str(turned)],
        ],
        check=True,
    )
    job = make_job(turned, tmp_path / "work", export=ExportSpec(resolution="240p"))

    _, draft, result = await produce(LocalEngine(), job, tmp_path / "out.mp4")

    assert (draft.metadata["width"], draft.metadata["height"]) == (240, 320)
    assert result.video is not None
    assert (result.video.width, result.video.height) == (240, 320)


async def test_a_render_whose_file_is_gone_is_lost(clips: Clips, tmp_path: Path) -> None:
    engine = LocalEngine()
    session = await engine.open_session(make_job(clips.no_audio, tmp_path / "work"))
    render = await engine.export(
        session, await engine.draft(session), ExportSpec(quality=Quality.LOW)
    )

    Path(render.data["path"]).unlink()
    status = await engine.poll(render)

    assert status.state is RenderState.LOST
    with pytest.raises(EngineError, match="missing"):
        await engine.download(render, tmp_path / "out.mp4")


async def test_download_can_be_repeated(clips: Clips, tmp_path: Path) -> None:
    engine = LocalEngine()
    session = await engine.open_session(make_job(clips.no_audio, tmp_path / "work"))
    render = await engine.export(
        session, await engine.draft(session), ExportSpec(quality=Quality.LOW)
    )
    destination = tmp_path / "out.mp4"

    await engine.download(render, destination)
    await engine.download(render, destination)

    assert destination.read_bytes() == Path(render.data["path"]).read_bytes()
    assert not list((tmp_path / "work").glob(".*partial*"))


async def test_the_engine_needs_no_account(tmp_path: Path) -> None:
    assert await LocalEngine().credits() is None


# running FFmpeg


async def test_a_failing_ffmpeg_reports_its_exit_status_and_last_words(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"

    with pytest.raises(EngineError, match=r"(?s)ffmpeg exited with status \d+:\n.*missing\.mp4"):
        await run_ffmpeg(["-nostdin", "-i", str(missing), "-f", "null", "-"], ffmpeg=find_ffmpeg())


@linux_only
async def test_when_one_run_of_a_render_fails_the_other_is_stopped_and_nothing_is_left(
    clips: Clips, tmp_path: Path
) -> None:
    draft = build_draft(
        [Segment(0.0, 3.0)],
        source=SourceFacts("basic.mp4", 3.0, 160, 120, 25.0, has_audio=True),
        edit=EditSpec(music="lofi"),
        export=ExportSpec(quality=Quality.LOW),
        music=MusicChoice("lofi", generated=True),
    )

    with pytest.raises(EngineError, match=r"(?s)ffmpeg exited with status \d+:.*missing\.wav"):
        await render_module.render(
            draft,
            ExportSpec(quality=Quality.LOW),
            clips.basic,
            tmp_path / "render.mp4",
            ffmpeg=probe_ffmpeg(find_ffmpeg()),
            font=tmp_path / "font.otf",
            music=tmp_path / "missing.wav",  # the audio run cannot start
        )

    assert not [pid for pid, parent in processes() if parent == os.getpid() and is_alive(pid)]
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_an_explicit_binary_wins_over_the_environment(tmp_path: Path) -> None:
    bundled = find_ffmpeg()
    chosen = tmp_path / "my-ffmpeg"
    chosen.symlink_to(bundled)
    environ = {"NEMOWATCH_FFMPEG": str(bundled), "PATH": ""}

    assert find_ffmpeg(chosen, environ=environ) == chosen
    assert find_ffmpeg(environ=environ) == bundled
    with pytest.raises(EngineError, match="not found"):
        find_ffmpeg(environ={"NEMOWATCH_FFMPEG": str(tmp_path / "nothing"), "PATH": ""})


LONG_RUN = ["-nostdin", "-re", "-f", "lavfi", "-i", "anullsrc", "-t", "60", "-f", "null", "-"]


@linux_only
async def test_cancelling_the_run_kills_ffmpeg() -> None:
    task = asyncio.create_task(run_ffmpeg(LONG_RUN, ffmpeg=find_ffmpeg()))
    children = await asyncio.to_thread(wait_for_children, os.getpid())

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert children
    assert not [pid for pid in children if is_alive(pid)]


DAEMON = """\
import asyncio
from nemowatch.engines.local.ffmpeg import find_ffmpeg, run_ffmpeg
from nemowatch.engines.local.music import MusicChoice
asyncio.run(run_ffmpeg({arguments!r}, ffmpeg=find_ffmpeg()))
"""


@linux_only
def test_ffmpeg_dies_with_a_daemon_killed_by_sigkill() -> None:
    script = DAEMON.format(arguments=LONG_RUN)
    daemon = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL)
    try:
        children = wait_for_children(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()

    assert children
    deadline = time.monotonic() + 5
    while any(is_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if is_alive(pid)]


def wait_for_children(parent: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [pid for pid, parent_pid in processes() if parent_pid == parent]
        if children and all(is_alive(pid) for pid in children):
            return children
        time.sleep(0.05)
    return []


def processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = read_stat(int(entry.name))
            if fields is not None:
                found.append((int(entry.name), int(fields[1])))
    return found


def is_alive(pid: int) -> bool:
    fields = read_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has already died


def read_stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields follow it.
    return stat.rsplit(")", 1)[1].split()
