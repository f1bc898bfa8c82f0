"""FFmpeg arguments built by the local engine (pure), and reading FFmpeg's own output."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number, silencedetect_arguments
from nemowatch.engines.local.ffmpeg import missing_features, parse_major_version, stderr_tail
from nemowatch.engines.local.plan import Segment, draft_from_segments
from nemowatch.engines.local.render import filter_graph, render_arguments, scale_filter
from nemowatch.probe import Probe, StreamInfo
from nemowatch.rules import ExportSpec, Quality, SilenceCut

SOURCE = Path("/inbox/processing/talk.mp4")
OUTPUT = Path("/work/job/.render.partial.mp4")
VIDEO = StreamInfo(
    "video", "h264", 10.0, profile="High", pix_fmt="yuv420p", width=160, height=120, fps=25.0
)
AUDIO = StreamInfo("audio", "aac", 10.0, profile="LC", sample_rate=44100, channels=1)
WITH_AUDIO = Probe("mov,mp4,m4a,3gp,3g2,mj2", 10.0, (VIDEO, AUDIO))
WITHOUT_AUDIO = Probe("mov,mp4,m4a,3gp,3g2,mj2", 10.0, (VIDEO,))

HEAD = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y", "-i", str(SOURCE)]
VIDEO_ENCODING = ["-c:v", "libx264", "-profile:v", "high", "-preset", "faster", "-crf", "20"]
VIDEO_ENCODING += ["-pix_fmt", "yuv420p"]
AUDIO_ENCODING = ["-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2"]
TAIL = ["-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4", str(OUTPUT)]


def draft(segments: list[Segment], *, has_audio: bool = True) -> Draft:
    return draft_from_segments(
        segments,
        source_name=SOURCE.name,
        source_duration=10.0,
        width=160,
        height=120,
        fps=25.0,
        has_audio=has_audio,
    )


CUT = draft([Segment(0.0, 2.2), Segment(3.8, 10.0)])


def test_cuts_are_one_graph_of_trims_with_fades_at_each_cut_then_concat() -> None:
    graph = (
        "[0:V:0]split=2[v0][v1];"
        "[v0]trim=start=0:end=2.2,setpts=PTS-STARTPTS[v0c];"
        "[v1]trim=start=3.8:end=10,setpts=PTS-STARTPTS[v1c];"
        "[0:a:0]asplit=2[a0][a1];"
        "[a0]atrim=start=0:end=2.2,asetpts=PTS-STARTPTS,afade=t=out:st=2.19:d=0.01[a0c];"
        "[a1]atrim=start=3.8:end=10,asetpts=PTS-STARTPTS,afade=t=in:st=0:d=0.01[a1c];"
        "[v0c][a0c][v1c][a1c]concat=n=2:v=1:a=1[joined][audio];"
        "[joined]scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p[video]"
    )

    arguments = render_arguments(CUT, ExportSpec(), SOURCE, WITH_AUDIO, OUTPUT)

    assert arguments == [
        *HEAD,
        *["-filter_complex", graph, "-map", "[video]", "-map", "[audio]"],
        *VIDEO_ENCODING,
        *AUDIO_ENCODING,
        *TAIL,
    ]


def test_keeping_the_whole_source_is_a_plain_encode() -> None:
    whole = draft([Segment(0.0, 10.0)])

    arguments = render_arguments(whole, ExportSpec(), SOURCE, WITH_AUDIO, OUTPUT)

    assert arguments == [
        *HEAD,
        *["-map", "0:V:0", "-map", "0:a:0"],
        *["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p"],
        *VIDEO_ENCODING,
        *AUDIO_ENCODING,
        *TAIL,
    ]


def test_a_source_without_audio_renders_video_only() -> None:
    silent = draft([Segment(0.0, 10.0)], has_audio=False)

    arguments = render_arguments(silent, ExportSpec(), SOURCE, WITHOUT_AUDIO, OUTPUT)

    assert arguments == [
        *HEAD,
        *["-map", "0:V:0", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p"],
        *VIDEO_ENCODING,
        *TAIL,
    ]


def test_cuts_of_a_source_without_audio_concatenate_video_only() -> None:
    silent = draft([Segment(0.0, 1.0), Segment(2.0, 3.0)], has_audio=False)

    graph = filter_graph(silent, ExportSpec(), has_audio=False)

    assert graph == (
        "[0:V:0]split=2[v0][v1];"
        "[v0]trim=start=0:end=1,setpts=PTS-STARTPTS[v0c];"
        "[v1]trim=start=2:end=3,setpts=PTS-STARTPTS[v1c];"
        "[v0c][v1c]concat=n=2:v=1:a=0[joined];"
        "[joined]scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p[video]"
    )


def test_a_segment_between_two_cuts_fades_in_and_out() -> None:
    middle = draft([Segment(1.0, 2.0)])

    graph = filter_graph(middle, ExportSpec(), has_audio=True)

    assert "[a0]atrim=start=1:end=2,asetpts=PTS-STARTPTS,afade=t=in:st=0:d=0.01," in graph
    assert "afade=t=out:st=0.99:d=0.01[a0c]" in graph


@pytest.mark.parametrize(
    ("quality", "crf", "preset"),
    [
        (Quality.LOW, "28", "veryfast"),
        (Quality.MEDIUM, "23", "veryfast"),
        (Quality.HIGH, "20", "faster"),
    ],
)
def test_quality_chooses_crf_and_preset(quality: Quality, crf: str, preset: str) -> None:
    arguments = render_arguments(CUT, ExportSpec(quality=quality), SOURCE, WITH_AUDIO, OUTPUT)

    assert arguments[arguments.index("-crf") + 1] == crf
    assert arguments[arguments.index("-preset") + 1] == preset


def test_a_target_resolution_sets_the_short_side_whichever_it_is() -> None:
    assert scale_filter(ExportSpec(resolution="720p")) == (
        "scale=w='if(lt(iw,ih),720,-2)':h='if(lt(iw,ih),-2,720)'"
    )


def test_a_long_filter_graph_is_read_from_a_file() -> None:
    script = Path("/work/job/render.filtergraph.txt")

    arguments = render_arguments(
        CUT,
        ExportSpec(),
        SOURCE,
        WITH_AUDIO,
        OUTPUT,
        filter_script=script,
        filter_script_option="-filter_complex_script",
    )

    assert arguments[8:12] == ["-filter_complex_script", str(script), "-map", "[video]"]


def test_silence_detection_reads_only_the_first_audio_stream() -> None:
    cut = SilenceCut(threshold_db=-30.0, margin=0.2, min_cut=0.25)

    assert silencedetect_arguments(SOURCE, cut) == [
        *["-hide_banner", "-nostdin", "-nostats", "-vn", "-sn", "-dn", "-i", str(SOURCE)],
        *["-map", "0:a:0", "-af", "silencedetect=n=-30dB:d=0.65", "-f", "null", "-"],
    ]


@pytest.mark.parametrize(
    ("value", "text"), [(-28.0, "-28"), (0.6000000001, "0.6"), (2.04, "2.04"), (1e-9, "0")]
)
def test_numbers_are_written_without_exponents_or_trailing_zeros(value: float, text: str) -> None:
    assert format_number(value) == text


# reading FFmpeg's own output


ENCODERS = """\
Encoders:
 V..... = Video
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 A....D aac                  AAC (Advanced Audio Coding)
"""
FILTERS = """\
Filters:
  T.. = Timeline support
 T. drawtext          V->V       Draw text on top of video frames using libfreetype library.
 .. loudnorm          A->A       EBU R128 loudness normalization
 .. silencedetect     A->A       Detect silence.
"""


def test_a_binary_lacking_a_filter_is_reported_as_missing_it() -> None:
    assert missing_features(ENCODERS, FILTERS) == ["sidechaincompress"]


@pytest.mark.parametrize(
    ("first_line", "version"),
    [
        ("ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright", 9),
        ("ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024", 5),
        ("ffmpeg version N-113000-g1234abcd Copyright", None),
    ],
)
def test_the_major_version_is_read_from_the_banner(first_line: str, version: int | None) -> None:
    assert parse_major_version(first_line) == version


def test_the_stderr_tail_keeps_the_last_non_blank_lines() -> None:
    stderr = "\n".join(f"line {number}" for number in range(30)) + "\n\n"

    assert stderr_tail(stderr, lines=3) == "line 27\nline 28\nline 29"
