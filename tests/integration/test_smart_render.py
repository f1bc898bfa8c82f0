"""Smart rendering, on real files: a job that only cuts copies the source's whole GOPs and
encodes only the frames around the cuts; a source that cannot be copied falls back to the
full render, logged. Each output is checked as a player would meet it: decoded without an
error, its frames counted, the frames at every join compared with the full render's."""

from __future__ import annotations

import asyncio
import functools
import http.server
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from playwright.sync_api import sync_playwright
from structlog.testing import capture_logs

from nemowatch.engines.base import Draft
from nemowatch.engines.local.ffmpeg import Capabilities, find_ffmpeg, probe_ffmpeg
from nemowatch.engines.local.render import RenderReport, render
from nemowatch.engines.local.smartcut import kept_frames, plan_pieces
from nemowatch.engines.local.smartrender import read_source_video
from nemowatch.engines.local.timeline import Cut, SourceFacts, build_draft, cuts_of
from nemowatch.rules import EditSpec, ExportSpec

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it)
SECONDS = 10.0
SIZE = (320, 180)
FPS = 30
# kept stretches: cuts inside GOPs (1 s each), one on a keyframe, one that ends the clip
PYRAMID = ["-g", "30", "-bf", "3", "-x264-params", "b-pyramid=normal:open-gop=1"]
CUTS = (Cut(0.5, 3.2), Cut(4.0, 6.9), Cut(7.35, 8.0), Cut(8.4, SECONDS))


@dataclass(frozen=True)
class Rendered:
    source: Path
    path: Path
    report: RenderReport
    events: list[dict[str, object]]


@pytest.fixture(scope="module")
def ffmpeg() -> Capabilities:
    return probe_ffmpeg(find_ffmpeg())


def make_source(folder: Path, name: str, video: Sequence[str], *, fps: int = FPS) -> Path:
    """A SECONDS-long clip of FFmpeg's test pattern with a tone, encoded as `video` says."""
    path = folder / name
    width, height = SIZE
    pattern = f"testsrc2=size={width}x{height}:rate={fps}:duration={SECONDS}"
    subprocess.run(
        [str(find_ffmpeg()), "-v", "error", "-y", "-f", "lavfi", "-i", pattern,
         "-f", "lavfi", "-i", f"sine=f=330:d={SECONDS}",
         "-c:v", "libx264", "-preset", "ultrafast", *video,
         "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("smart-sources")
    phone = make_source(folder, "phone.mp4", ["-g", "30", "-bf", "0", "-pix_fmt", "yuv420p"])
    millisecond = folder / "millisecond.mp4"  # the same, its video timed in a 1 ms time base
    subprocess.run(
        [str(find_ffmpeg()), "-v", "error", "-y", "-i", str(phone), "-c", "copy",
         "-video_track_timescale", "1000", str(millisecond)],
        check=True,
    )  # fmt: skip
    return {
        "millisecond": millisecond,
        # what phones send: a 1-s GOP, no B-frames
        "phone": phone,
        # B-frames (x264's default pyramid), closed GOPs
        "b_frames": make_source(folder, "b-frames.mp4", ["-g", "30", "-bf", "3"]),
        # B-frames in a pyramid, open GOPs
        "pyramid": make_source(folder, "pyramid.mp4", PYRAMID),
        "ten_bit": make_source(folder, "ten-bit.mp4", ["-g", "30", "-pix_fmt", "yuv420p10le"]),
        "pal": make_source(
            folder, "pal.mp4", ["-g", "25", "-bf", "0", "-pix_fmt", "yuv420p"], fps=25
        ),
    }


def draft_of(source: Path, export: ExportSpec, *, fps: int = FPS) -> Draft:
    facts = SourceFacts(
        name=source.name, duration=SECONDS, width=SIZE[0], height=SIZE[1], fps=fps,
        has_audio=True, format="mov,mp4,m4a,3gp,3g2,mj2",
    )  # fmt: skip
    return build_draft(CUTS, source=facts, edit=EditSpec(), export=export)


def run_render(
    source: Path, destination: Path, export: ExportSpec, ffmpeg: Capabilities, *, fps: int = FPS
) -> Rendered:
    with capture_logs() as events:
        report = asyncio.run(
            render(
                draft_of(source, export, fps=fps), export, source, destination,
                ffmpeg=ffmpeg, font=destination,
            )
        )  # fmt: skip
    return Rendered(source, destination, report, events)


@pytest.fixture(scope="module", params=["phone", "b_frames"])
def smart_and_full(
    request: pytest.FixtureRequest,
    sources: dict[str, Path],
    ffmpeg: Capabilities,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Rendered, Rendered]:
    """The cut-only job smart-rendered and fully rendered, of a phone's clip (no B-frames)
    and of a camera's (B-frames in a pyramid, closed GOPs)."""
    source = sources[request.param]
    folder = tmp_path_factory.mktemp(f"smart-renders-{request.param}")
    smart = run_render(source, folder / "smart.mp4", ExportSpec(), ffmpeg)
    full = run_render(source, folder / "full.mp4", ExportSpec(smart="off"), ffmpeg)
    return smart, full


def decode_errors(path: Path) -> str:
    result = subprocess.run(
        [str(find_ffmpeg()), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stderr


def counted_frames(path: Path) -> int:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(result.stdout.strip())


def planned_frames(source: Path) -> list[int]:
    """Frames of each kept segment, as the smart plan keeps them."""
    video, _ = read_source_video(source)
    draft = draft_of(source, ExportSpec())
    counts = []
    for cut in cuts_of(draft):
        first, end = kept_frames(video, cut)
        counts.append(end - first)
    return counts


def luma_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([
            frame.to_ndarray(format="gray").astype(np.float64)
            for frame in container.decode(video=0)
        ])  # fmt: skip


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    error = float(np.mean((first - second) ** 2))
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def stream_durations(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {
            stream.type: float(stream.duration * stream.time_base)
            for stream in container.streams
            if stream.duration is not None and stream.time_base is not None
        }


def test_a_cut_only_job_copies_whole_gops_and_encodes_only_around_the_cuts(
    smart_and_full: tuple[Rendered, Rendered], sources: dict[str, Path]
) -> None:
    smart, _ = smart_and_full
    assert smart.report.smart.used, smart.report.smart.reason
    assert smart.report.smart.copied > 4.0  # of 8.35 s
    assert 0 < smart.report.smart.encoded < smart.report.smart.copied
    assert [event["event"] for event in smart.events if "smart" in str(event["event"])] == [
        "render.smart"
    ]
    video, _ = read_source_video(smart.source)
    pieces = plan_pieces(video, CUTS)
    assert {piece.kind for piece in pieces} == {"copy", "encode"}


def test_the_smart_render_decodes_without_an_error(
    smart_and_full: tuple[Rendered, Rendered],
) -> None:
    smart, _ = smart_and_full
    assert decode_errors(smart.path) == ""


def test_the_smart_render_has_exactly_the_planned_frames_as_the_full_render_has(
    smart_and_full: tuple[Rendered, Rendered], sources: dict[str, Path]
) -> None:
    smart, full = smart_and_full
    planned = sum(planned_frames(smart.source))
    assert counted_frames(smart.path) == planned
    assert counted_frames(full.path) == planned


def test_each_kept_segment_starts_and_ends_on_the_full_renders_frames(
    smart_and_full: tuple[Rendered, Rendered], sources: dict[str, Path]
) -> None:
    smart, full = smart_and_full
    smart_frames, full_frames = luma_frames(smart.path), luma_frames(full.path)
    assert len(smart_frames) == len(full_frames)
    position = 0
    for count in planned_frames(smart.source):
        for index in (position, position + count - 1):
            assert psnr(smart_frames[index], full_frames[index]) >= 35.0, index
            # and not the neighbouring frame: the pattern moves every frame
            other = index + 1 if index + 1 < len(full_frames) else index - 1
            assert psnr(smart_frames[index], full_frames[other]) < psnr(
                smart_frames[index], full_frames[index]
            )
        position += count


def test_the_smart_renders_sound_and_picture_last_as_long(
    smart_and_full: tuple[Rendered, Rendered],
) -> None:
    smart, _ = smart_and_full
    durations = stream_durations(smart.path)
    assert abs(durations["video"] - durations["audio"]) <= 0.020


def test_a_source_timed_in_milliseconds_is_smart_rendered_to_the_planned_frames(
    sources: dict[str, Path], ffmpeg: Capabilities, tmp_path: Path
) -> None:
    """30 fps in a 1 ms time base (33, 33, 34 ms ...) is a constant rate: the joined
    stream is timed anew from the frame rate."""
    rendered = run_render(sources["millisecond"], tmp_path / "out.mp4", ExportSpec(), ffmpeg)
    assert rendered.report.smart.used, rendered.report.smart.reason
    assert decode_errors(rendered.path) == ""
    assert counted_frames(rendered.path) == sum(planned_frames(sources["millisecond"]))


@pytest.mark.parametrize(
    ("name", "export", "fps", "reason"),
    [
        ("pyramid", ExportSpec(), FPS, "open GOPs"),
        ("ten_bit", ExportSpec(), FPS, "yuv420p10le"),
        ("pal", ExportSpec(fps=30), 25, "frame rate"),
    ],
)
def test_a_source_that_cannot_be_copied_falls_back_to_the_full_render_logged(
    name: str,
    export: ExportSpec,
    fps: int,
    reason: str,
    sources: dict[str, Path],
    ffmpeg: Capabilities,
    tmp_path: Path,
) -> None:
    rendered = run_render(sources[name], tmp_path / "out.mp4", export, ffmpeg, fps=fps)
    assert not rendered.report.smart.used
    assert reason in rendered.report.smart.reason
    fallbacks = [event for event in rendered.events if event["event"] == "render.smart_fallback"]
    assert len(fallbacks) == 1 and reason in str(fallbacks[0]["reason"])
    assert decode_errors(rendered.path) == ""
    with av.open(str(rendered.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == SIZE
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert round(float(stream.average_rate or 0)) == 30
    kept = sum(cut.duration for cut in CUTS)
    assert abs(counted_frames(rendered.path) - kept * 30) <= 2


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


SEEK_AND_READ = """async ([url, times]) => {
  const video = document.createElement('video');
  video.muted = true;
  video.preload = 'auto';
  const errors = [];
  video.addEventListener('error', () => errors.push(video.error ? video.error.message : '?'));
  document.body.appendChild(video);
  video.src = url;
  await new Promise((done) => {
    video.addEventListener('loadeddata', done, {once: true});
    video.addEventListener('error', done, {once: true});
  });
  const states = [];
  for (const time of times) {
    video.currentTime = time;
    await new Promise((done) => video.addEventListener('seeked', done, {once: true}));
    if (video.readyState < 2) {
      await new Promise((done) => {
        video.addEventListener('canplay', done, {once: true});
        setTimeout(done, 2000);
      });
    }
    states.push(video.readyState);
  }
  video.playbackRate = 4;
  video.currentTime = 0;
  await video.play();
  await new Promise((done) => {
    video.addEventListener('ended', done, {once: true});
    video.addEventListener('error', done, {once: true});
  });
  const quality = video.getVideoPlaybackQuality();
  return {states, errors, error: video.error && video.error.message,
          frames: quality.totalVideoFrames, duration: video.duration};
}"""


def test_the_smart_render_plays_in_chromium_across_every_join(
    smart_and_full: tuple[Rendered, Rendered], sources: dict[str, Path]
) -> None:
    """Debian's Chromium, headless, loads the render in a <video> element from a server on
    127.0.0.1, seeks to either side of every join of copied and encoded pieces, then plays
    it through: no error event, a decoded frame at each seek."""
    smart, _ = smart_and_full
    video, _ = read_source_video(smart.source)
    joins, position = [], 0
    for piece in plan_pieces(video, CUTS)[:-1]:
        position += piece.frames
        joins += [(position - 0.5) / FPS, (position + 0.5) / FPS]
    handler = functools.partial(_QuietHandler, directory=str(smart.path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"{origin}/")  # the video's origin: no cross-origin rules apply
                result = page.evaluate(SEEK_AND_READ, [f"{origin}/{smart.path.name}", joins])
            finally:
                browser.close()
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert len(joins) >= 6
    assert result["errors"] == [] and result["error"] is None
    assert all(state >= 2 for state in result["states"]), result["states"]
    assert abs(result["duration"] - counted_frames(smart.path) / FPS) < 0.05


def test_smart_off_renders_every_frame_without_a_fallback_logged(
    smart_and_full: tuple[Rendered, Rendered],
) -> None:
    _, full = smart_and_full
    assert not full.report.smart.used
    assert full.report.smart.reason == "smart rendering is off"
    assert not [event for event in full.events if "smart" in str(event["event"])]
    with av.open(str(full.path)) as container:
        assert container.streams.video[0].codec_context.profile == "High"
