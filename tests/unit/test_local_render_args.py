"""FFmpeg arguments built by the local engine (pure), and reading FFmpeg's own output."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import Segment, format_number
from nemowatch.engines.local.arguments import (
    audio_arguments,
    encoder_arguments,
    measure_arguments,
    mux_arguments,
    video_arguments,
)
from nemowatch.engines.local.ffmpeg import parse_major_version, stderr_tail
from nemowatch.engines.local.graph import RenderFiles
from nemowatch.engines.local.loudness import MEASURE_FILTER
from nemowatch.engines.local.music import MusicChoice
from nemowatch.engines.local.picture import (
    Reading,
    fitted_size,
    readings_of,
    scale_filter,
    shape_chains,
    source_readings,
    video_graph,
)
from nemowatch.engines.local.sound import atempo_chain, audio_chains, audio_graph, duck_expression
from nemowatch.engines.local.text import (
    drawtext_filter,
    filter_value,
    text_file_contents,
    wrap_text,
)
from nemowatch.engines.local.timeline import Cut, SourceFacts, TextItem, build_draft
from nemowatch.rules import EditSpec, ExportSpec, Quality

SOURCE = Path("/inbox/processing/talk.mp4")
OUTPUT = Path("/work/job/.render.partial.mp4")
FONT = Path("/site-packages/nemowatch/data/fonts/font.otf")
TEXT_FILE = Path("/work/job/render.text-0.txt")
MUSIC = Path("/cache/mood-lofi.wav")
FILES = RenderFiles(font=FONT, text_files=(TEXT_FILE,), music=MUSIC)
MP4 = "mov,mp4,m4a,3gp,3g2,mj2"  # the container, as probed
TALK = SourceFacts("talk.mp4", 10.0, 160, 120, 25.0, has_audio=True, format=MP4)
SILENT_TALK = SourceFacts("talk.mp4", 10.0, 160, 120, 25.0, has_audio=False, format=MP4)
LOFI = MusicChoice("lofi", generated=True)

VIDEO_PART = Path("/work/job/.render.video.mp4")
AUDIO_PART = Path("/work/job/.render.audio.mp4")
START = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
VIDEO_INPUT = ["-an", "-sn", "-dn", "-i", str(SOURCE)]
AUDIO_INPUT = ["-vn", "-sn", "-dn", "-i", str(SOURCE)]
VIDEO_ENCODING = ["-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast", "-crf", "20"]
VIDEO_ENCODING += ["-pix_fmt", "yuv420p"]
AUDIO_ENCODING = [
    "-c:a",
    "aac",
    "-aac_coder",
    "twoloop",
    "-b:a",
    "160k",
    "-ar",
    "48000",
    "-ac",
    "2",
]
TAIL = ["-movflags", "+faststart", "-f", "mp4", str(OUTPUT)]
TO_STEREO = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo"
MEASURE = "ebur128=peak=true:framelog=verbose"


def draft(
    segments: list[Segment],
    *,
    source: SourceFacts = TALK,
    export: ExportSpec | None = None,
    speech: list[Segment] | None = None,
    music: MusicChoice | None = None,
    **edit: object,
) -> Draft:
    return build_draft(
        segments,
        source=source,
        edit=EditSpec.model_validate(edit),
        export=export or ExportSpec(),
        speech=speech or [],
        music=music,
    )


CUT = draft([Segment(0.0, 2.2), Segment(3.8, 10.0)])
WHOLE = [Segment(0.0, 10.0)]


def test_the_video_run_trims_each_kept_segment_and_joins_them_without_sound() -> None:
    graph = (
        "[0:V:0]split=2[v0][v1];"
        "[v0]trim=start=0:end=2.2,setpts=PTS-STARTPTS[v0c];"
        "[v1]trim=start=3.8:end=10,setpts=PTS-STARTPTS[v1c];"
        "[v0c][v1c]concat=n=2:v=1:a=0[joined];"
        "[joined]scale=160:120,setsar=1,format=yuv420p[video]"
    )

    arguments = video_arguments(CUT, ExportSpec(), SOURCE, VIDEO_PART, FILES, part=True)

    assert arguments == [
        *START,
        *VIDEO_INPUT,  # the gap of 1.6 s is not worth a second input
        *["-filter_complex", graph, "-map", "[video]", "-map_chapters", "-1"],
        *VIDEO_ENCODING,
        *["-f", "mp4", str(VIDEO_PART)],  # a part: the join puts the index first
    ]


def test_the_audio_run_trims_the_same_segments_fading_at_each_cut() -> None:
    graph = (
        "[0:a:0]asplit=2[a0][a1];"
        "[a0]atrim=start=0:end=2.2,asetpts=PTS-STARTPTS,afade=t=out:st=2.19:d=0.01[a0c];"
        "[a1]atrim=start=3.8:end=10,asetpts=PTS-STARTPTS,afade=t=in:st=0:d=0.01[a1c];"
        "[a0c][a1c]concat=n=2:v=0:a=1[cut];"
        f"[cut]{TO_STEREO},apad=whole_dur=8.4,atrim=end=8.4[audio]"
    )

    arguments = audio_arguments(CUT, ExportSpec(), SOURCE, AUDIO_PART, FILES)

    assert arguments == [
        *START,
        *AUDIO_INPUT,
        *["-filter_complex", graph, "-map", "[audio]", "-map_chapters", "-1"],
        *AUDIO_ENCODING,
        *["-f", "mp4", str(AUDIO_PART)],
    ]


def test_the_parts_are_joined_by_copying_their_streams_with_the_index_first() -> None:
    assert mux_arguments(ExportSpec(), VIDEO_PART, AUDIO_PART, OUTPUT) == [
        *START,
        *["-i", str(VIDEO_PART), "-i", str(AUDIO_PART)],
        *["-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-map_chapters", "-1"],
        *TAIL,
    ]


def test_keeping_the_whole_source_needs_no_split_or_concat() -> None:
    whole = draft(WHOLE)

    assert video_graph(whole, ExportSpec(), FILES) == (
        "[0:V:0]trim=start=0:end=10,setpts=PTS-STARTPTS[joined];"
        "[joined]scale=160:120,setsar=1,format=yuv420p[video]"
    )
    assert audio_graph(whole, ExportSpec()) == (
        "[0:a:0]atrim=start=0:end=10,asetpts=PTS-STARTPTS[cut];"
        f"[cut]{TO_STEREO},apad=whole_dur=10,atrim=end=10[audio]"
    )


def test_a_source_without_audio_renders_in_one_run_to_the_output() -> None:
    silent = draft(WHOLE, source=SILENT_TALK)

    arguments = video_arguments(silent, ExportSpec(), SOURCE, OUTPUT, FILES)

    graph = (
        "[0:V:0]trim=start=0:end=10,setpts=PTS-STARTPTS[joined];"
        "[joined]scale=160:120,setsar=1,format=yuv420p[video]"
    )
    assert arguments == [
        *START,
        *VIDEO_INPUT,
        *["-filter_complex", graph, "-map", "[video]", "-map_chapters", "-1"],
        *VIDEO_ENCODING,
        *TAIL,
    ]


def test_cuts_of_a_source_without_audio_concatenate_video_only() -> None:
    silent = draft([Segment(0.0, 1.0), Segment(2.0, 3.0)], source=SILENT_TALK)

    assert video_graph(silent, ExportSpec(), FILES) == (
        "[0:V:0]split=2[v0][v1];"
        "[v0]trim=start=0:end=1,setpts=PTS-STARTPTS[v0c];"
        "[v1]trim=start=2:end=3,setpts=PTS-STARTPTS[v1c];"
        "[v0c][v1c]concat=n=2:v=1:a=0[joined];"
        "[joined]scale=160:120,setsar=1,format=yuv420p[video]"
    )


def test_a_segment_between_two_cuts_fades_in_and_out() -> None:
    graph = audio_graph(draft([Segment(1.0, 2.0)]), ExportSpec())

    assert graph.startswith(
        "[0:a:0]atrim=start=1:end=2,asetpts=PTS-STARTPTS,"
        "afade=t=in:st=0:d=0.01,afade=t=out:st=0.99:d=0.01[cut];"
    )


# reading the source


def cuts(*spans: tuple[float, float]) -> list[Cut]:
    return [Cut(start, end) for start, end in spans]


def test_the_kept_segments_are_read_in_runs_split_at_the_widest_gaps() -> None:
    kept = cuts((0, 5), (20, 30), (31, 40), (60, 70), (71, 72), (80, 90))

    readings = source_readings(kept, limit=3, gap=2.0)

    assert (
        readings
        == [
            Reading(0, 5, tuple(kept[0:1])),  # 15 s and 20 s gaps split; 8 s is the fourth
            Reading(20, 40, tuple(kept[1:3])),
            Reading(60, 90, tuple(kept[3:6])),
        ]
    )


def test_gaps_too_short_to_seek_over_are_read_through() -> None:
    kept = cuts((1, 2), (3.5, 4), (5.9, 7))

    assert source_readings(kept, limit=4, gap=2.0) == [Reading(1, 7, tuple(kept))]


def test_segments_out_of_order_are_read_from_the_earliest_to_the_latest() -> None:
    kept = cuts((50, 60), (10, 20), (30, 35))

    assert (
        source_readings(kept, limit=4, gap=2.0)
        == [
            Reading(10, 60, tuple(kept[0:2])),  # the cuts go back: no gap to seek over
            Reading(30, 35, tuple(kept[2:3])),
        ]
    )


@pytest.mark.parametrize(
    ("size", "inputs"), [((1920, 1080), 3), ((1280, 720), 3), ((2560, 1440), 1), ((3840, 2160), 1)]
)
def test_larger_sources_are_read_by_fewer_inputs(size: tuple[int, int], inputs: int) -> None:
    spread = [Segment(start, start + 1.0) for start in (0.0, 10.0, 20.0, 30.0, 40.0, 50.0)]
    large = SourceFacts("talk.mp4", 60.0, *size, 25.0, has_audio=True, format=MP4)

    assert len(readings_of(draft(spread, source=large))) == inputs


def test_each_input_seeks_to_its_run_keeping_the_sources_times_for_the_trims() -> None:
    spread = draft([Segment(2.0, 3.0), Segment(6.0, 7.0), Segment(7.6, 8.0)])

    arguments = video_arguments(spread, ExportSpec(), SOURCE, VIDEO_PART, FILES, part=True)

    graph = arguments[arguments.index("-filter_complex") + 1]
    assert arguments[6 : arguments.index("-filter_complex")] == [
        *["-copyts", "-start_at_zero"],
        *["-threads", "1", "-ss", "2", "-t", "1", *VIDEO_INPUT],
        *["-threads", "1", "-ss", "6", "-t", "2", *VIDEO_INPUT],
    ]
    assert graph.startswith(
        "[0:V:0]trim=start=2:end=3,setpts=PTS-STARTPTS[v0c];"
        "[1:V:0]split=2[v1][v2];"
        "[v1]trim=start=6:end=7,setpts=PTS-STARTPTS[v1c];"
        "[v2]trim=start=7.6:end=8,setpts=PTS-STARTPTS[v2c];"
        "[v0c][v1c][v2c]concat=n=3:v=1:a=0[joined];"
    )


def test_a_container_without_a_keyframe_index_is_read_from_the_start() -> None:
    transport = SourceFacts("talk.ts", 10.0, 160, 120, 25.0, has_audio=True, format="mpegts")
    spread = draft([Segment(2.0, 3.0), Segment(6.0, 7.0)], source=transport)

    arguments = video_arguments(spread, ExportSpec(), SOURCE, VIDEO_PART, FILES, part=True)

    # a seek there lands anywhere, and the frames up to the next keyframe are lost
    assert arguments[6 : arguments.index("-filter_complex")] == ["-t", "7", *VIDEO_INPUT]


def test_a_draft_of_an_earlier_version_still_renders() -> None:
    # shaped as drafts were before the timeline: source facts under width/height/fps
    earlier = Draft.from_json(
        {
            "t": [
                {"tt": 0, "sg": [{"s": 0, "e": 1000, "at": 0}]},
                {"tt": 1, "sg": [{"s": 0, "e": 1000, "at": 0}]},
            ],
            "d": 1000,
            "m": {"width": 160, "height": 120, "fps": 25.0, "source_duration_ms": 3000},
        }
    )

    assert video_graph(earlier, ExportSpec(resolution="720p"), FILES) == (
        "[0:V:0]trim=start=0:end=1,setpts=PTS-STARTPTS[joined];"
        f"[joined]{scale_filter(ExportSpec(resolution='720p'))},setsar=1,format=yuv420p[video]"
    )
    assert audio_graph(earlier, ExportSpec(resolution="720p")) == (
        "[0:a:0]atrim=start=0:end=1,asetpts=PTS-STARTPTS,afade=t=out:st=0.99:d=0.01[cut];"
        f"[cut]{TO_STEREO},apad=whole_dur=1,atrim=end=1[audio]"
    )
    assert video_arguments(earlier, ExportSpec(), SOURCE, OUTPUT, FILES)[6:13] == [
        *["-t", "1", *VIDEO_INPUT]  # reading the first second of three
    ]


# shape


def test_crop_fills_the_frame_and_cuts_the_overflow_centred() -> None:
    chains = shape_chains(1080, 1920, "crop", "9:16", head="[in]", tail="[out]")

    assert chains == [
        "[in]scale=1080:1920:force_original_aspect_ratio=increase,crop=1080:1920,setsar=1[out]"
    ]


def test_pad_letterboxes_in_black() -> None:
    chains = shape_chains(1080, 1080, "pad", "1:1", head="[in]", tail="[out]")

    assert chains == [
        "[in]scale=1080:1080:force_original_aspect_ratio=decrease:force_divisible_by=2,"
        "pad=1080:1080:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1[out]"
    ]


def test_blur_stacks_the_whole_frame_between_bands_of_a_copy_blurred_at_an_eighth() -> None:
    chains = shape_chains(
        1080, 1920, "blur", "9:16", head="[in]", before=["fps=30"], after=["x"], tail="[out]",
        source=(1920, 1080),
    )  # fmt: skip

    assert chains == [
        "[in]fps=30,scale=1080:608,split=2[front][back]",
        # the middle of the frame, in the output's shape, blurred small
        "[back]crop=342:608,scale=136:240:flags=area,boxblur=14:2,split=2[blurred0][blurred1]",
        "[blurred0]crop=136:82:0:0,scale=1080:656:flags=fast_bilinear[top]",
        "[blurred1]crop=136:82:0:158,scale=1080:656:flags=fast_bilinear[bottom]",
        "[top][front][bottom]vstack=inputs=3,setsar=1,x[out]",
    ]


def test_blur_puts_a_tall_frame_between_bands_left_and_right() -> None:
    chains = shape_chains(1920, 1080, "blur", "16:9", head="[in]", tail="[out]", source=(720, 1280))

    assert chains == [
        "[in]scale=608:1080,split=2[front][back]",
        "[back]crop=608:342,scale=240:136:flags=area,boxblur=14:2,split=2[blurred0][blurred1]",
        "[blurred0]crop=82:136:0:0,scale=656:1080:flags=fast_bilinear[left]",
        "[blurred1]crop=82:136:158:0,scale=656:1080:flags=fast_bilinear[right]",
        "[left][front][right]hstack=inputs=3,setsar=1[out]",
    ]


def test_blur_of_a_frame_of_the_outputs_shape_only_scales_it() -> None:
    chains = shape_chains(1080, 1920, "blur", "9:16", head="[in]", tail="[out]", source=(720, 1280))

    assert chains == ["[in]scale=1080:1920,setsar=1[out]"]


def test_blur_of_a_frame_of_unknown_size_puts_it_over_a_blurred_copy() -> None:
    chains = shape_chains(1080, 1920, "blur", "9:16", head="[in]", after=["x"], tail="[out]")

    assert chains == [
        "[in]split=2[fg][bg]",
        "[bg]scale=136:240:force_original_aspect_ratio=increase:flags=area,"
        "crop=136:240,boxblur=14:2,scale=1080:1920:flags=fast_bilinear[blurred]",
        "[fg]scale=1080:1920:force_original_aspect_ratio=decrease:force_divisible_by=2[front]",
        "[blurred][front]overlay=(W-w)/2:(H-h)/2,setsar=1,x[out]",
    ]


@pytest.mark.parametrize(
    ("source", "fitted"),
    [((1920, 1080), (1080, 608)), ((320, 180), (1080, 608)), ((1080, 1080), (1080, 1080))],
)
def test_the_fitted_frame_keeps_its_shape_in_even_sizes(
    source: tuple[int, int], fitted: tuple[int, int]
) -> None:
    assert fitted_size(1080, 1920, source) == fitted


def test_without_an_aspect_the_frame_is_only_scaled() -> None:
    assert shape_chains(1280, 720, "blur", None, head="[in]", tail="[out]") == [
        "[in]scale=1280:720,setsar=1[out]"
    ]


def test_the_aspect_shapes_the_render_at_the_exports_size() -> None:
    export = ExportSpec(resolution="240p")
    vertical = draft(WHOLE, aspect="9:16", fit="crop", export=export)

    graph = video_graph(vertical, export, FILES)

    assert (
        "[joined]scale=240:426:force_original_aspect_ratio=increase,crop=240:426,"
        "setsar=1,format=yuv420p[video]"
    ) in graph


def test_a_scale_for_drafts_without_sizes_sets_the_short_side_whichever_it_is() -> None:
    assert scale_filter(ExportSpec(resolution="720p")) == (
        "scale=w='if(lt(iw,ih),720,-2)':h='if(lt(iw,ih),-2,720)'"
    )


# speed and frame rate


def test_speed_changes_timestamps_holds_the_frame_rate_and_keeps_the_pitch() -> None:
    fast = draft(WHOLE, speed=2.0)

    video = video_graph(fast, ExportSpec(), FILES)
    audio = audio_graph(fast, ExportSpec())

    assert "[joined]setpts=PTS/2,fps=25,scale=160:120,setsar=1,format=yuv420p[video]" in video
    assert f"[cut]atempo=2,{TO_STEREO},apad=whole_dur=5,atrim=end=5[audio]" in audio


@pytest.mark.parametrize(
    ("speed", "chain"),
    [
        (1.0, []),
        (0.5, ["atempo=0.5"]),
        (1.5, ["atempo=1.5"]),
        (3.0, ["atempo=2", "atempo=1.5"]),
        (4.0, ["atempo=2", "atempo=2"]),
    ],
)
def test_atempo_is_chained_in_steps_of_at_most_two(speed: float, chain: list[str]) -> None:
    assert atempo_chain(speed) == chain


def test_an_export_frame_rate_is_applied_with_the_fps_filter() -> None:
    export = ExportSpec(fps=30000 / 1001)

    graph = video_graph(draft(WHOLE, export=export), export, FILES)

    assert "[joined]fps=30000/1001,scale=160:120,setsar=1,format=yuv420p[video]" in graph


# text


def test_text_is_drawn_from_its_file_never_from_the_graph() -> None:
    title = 'It\'s "100%" “real”: C:\\path; [城市之梦], ok'
    export = ExportSpec(resolution="2160p")
    titled = draft(WHOLE, title={"text": title, "size": 0.03}, export=export)

    graph = video_graph(titled, export, FILES)

    assert f"textfile={TEXT_FILE}:expansion=none:" in graph
    for fragment in ("It's", "100%", "“real”", "C:\\path", "城市之梦"):
        assert fragment not in graph
    assert text_file_contents(titled) == [title]


def test_a_title_is_centred_sized_by_the_frame_and_shown_in_output_time() -> None:
    item = TextItem("Urban Dreams", start=1.5, duration=3.0, position="center", size=0.07)

    assert drawtext_filter(item, text_file=TEXT_FILE, font=FONT, width=1920, height=1080) == (
        f"drawtext=fontfile={FONT}:textfile={TEXT_FILE}:expansion=none:fontsize=76"
        ":fontcolor=white:borderw=5:bordercolor=black@0.65"
        ":shadowx=3:shadowy=3:shadowcolor=black@0.45:line_spacing=11"
        ":text_align=C:x=(w-text_w)/2:y=(h-text_h)/2:enable='between(t,1.5,4.5)'"
    )


def test_without_text_align_each_line_is_drawn_on_its_own_and_centred() -> None:
    # FFmpeg before 6.1 (Debian 12 has 5.1): drawtext centres the block of lines as a
    # whole, so each line gets a drawtext of its own, placed where it falls in the block.
    export = ExportSpec(resolution="720p")
    title = {"text": "Urban Dreams of the city at night", "size": 0.09}
    titled = draft(WHOLE, title=title, aspect="9:16", export=export)
    lines = text_file_contents(titled, line_by_line=True)
    files = RenderFiles(
        font=FONT,
        text_files=tuple(Path(f"/work/job/render.text-{index}.txt") for index in range(len(lines))),
        line_by_line=True,
    )

    graph = video_graph(titled, export, files)

    assert len(lines) > 1
    assert lines == text_file_contents(titled)[0].split("\n")
    assert "text_align" not in graph
    assert graph.count("drawtext=") == len(lines)
    assert f"y=(h-({len(lines)}*(max_glyph_a-max_glyph_d)+" in graph  # the block, centred
    assert "+1*((max_glyph_a-max_glyph_d)+" in graph  # the second line, one line down


@pytest.mark.parametrize(
    ("index", "count", "position", "y"),
    [
        (0, 1, "center", "y=(h-(max_glyph_a-max_glyph_d))/2"),
        (
            1,
            2,
            "center",
            "y=(h-(2*(max_glyph_a-max_glyph_d)+11))/2+1*((max_glyph_a-max_glyph_d)+11)",
        ),
        (0, 2, "top", "y=54"),
        (1, 2, "top", "y=54+1*((max_glyph_a-max_glyph_d)+11)"),
        (0, 2, "bottom", "y=h-(2*(max_glyph_a-max_glyph_d)+11)-54"),
    ],
)
def test_a_line_drawn_on_its_own_is_placed_where_it_falls_in_its_text(
    index: int, count: int, position: str, y: str
) -> None:
    item = TextItem("Urban Dreams", start=1.5, duration=3.0, position=position, size=0.07)

    drawn = drawtext_filter(
        item, text_file=TEXT_FILE, font=FONT, width=1920, height=1080, line=(index, count)
    )

    assert f":{y}:" in drawn
    assert "text_align" not in drawn


@pytest.mark.parametrize(
    ("position", "width", "height", "y"),
    [
        ("top", 1080, 1920, "y=288"),  # 15 % from the top of vertical video
        ("bottom", 1080, 1920, "y=h-text_h-384"),  # 20 % from its bottom
        ("top", 1920, 1080, "y=54"),  # 5 % otherwise
        ("bottom", 1080, 1080, "y=h-text_h-54"),
    ],
)
def test_texts_stay_inside_the_safe_zones(position: str, width: int, height: int, y: str) -> None:
    item = TextItem("Hello", start=0.0, duration=1.0, position=position, size=0.05)

    assert f":{y}:" in drawtext_filter(
        item, text_file=TEXT_FILE, font=FONT, width=width, height=height
    )


def test_paths_in_the_graph_are_escaped_for_both_levels_of_parsing() -> None:
    assert filter_value("/work/it's: [a], b; c\\d") == (
        "/work/it\\\\\\'s\\\\: \\[a\\]\\, b\\; c\\\\\\\\d"
    )


@pytest.mark.parametrize(
    ("text", "max_width", "lines"),
    [
        # at 40 px a Latin letter is estimated 24 px wide, a space 10, a CJK character 40
        ("Urban Dreams in the big city tonight", 300, "Urban Dreams\nin the big\ncity tonight"),
        ("城市之梦城市之梦城市之梦", 200, "城市之梦城\n市之梦城市\n之梦"),
        ("Supercalifragilisticexpialidocious", 200, "Supercal\nifragili\nsticexpi\nalidocio\nus"),
        ("line one\nline two", 1000, "line one\nline two"),
    ],
)
def test_long_text_is_wrapped_to_the_frame(text: str, max_width: float, lines: str) -> None:
    assert wrap_text(text, max_width=max_width, font_size=40) == lines


# music and loudness


def test_music_is_looped_faded_ducked_under_speech_and_mixed() -> None:
    with_music = draft(WHOLE, music=LOFI, speech=[Segment(1.0, 3.0), Segment(6.0, 8.0)])

    arguments = audio_arguments(with_music, ExportSpec(), SOURCE, AUDIO_PART, FILES)
    graph = arguments[arguments.index("-filter_complex") + 1]

    assert arguments[6:16] == [*AUDIO_INPUT, "-stream_loop", "-1", "-vn", "-i", str(MUSIC)]
    assert graph.split(";")[1:] == [
        f"[cut]{TO_STEREO}[speech]",
        f"[1:a:0]{TO_STEREO},atrim=end=10,asetpts=PTS-STARTPTS,volume=0.35,"
        "volume=eval=frame:volume='1-0.822172*("
        "clip(min((t-0.75)/0.25,(3.5-t)/0.5),0,1)+clip(min((t-5.75)/0.25,(8.5-t)/0.5),0,1))',"
        "afade=t=in:st=0:d=1,afade=t=out:st=8:d=2[music]",
        "[speech][music]amix=inputs=2:duration=longest:dropout_transition=0:normalize=0,"
        "apad=whole_dur=10,atrim=end=10[audio]",
    ]


def test_ducking_is_15_db_down_between_its_ramps() -> None:
    expression = duck_expression([(2.0, 4.0)], -15.0)

    assert expression == "1-0.822172*(clip(min((t-1.75)/0.25,(4.5-t)/0.5),0,1))"
    assert 20 * math.log10(1 - 0.822172) == pytest.approx(-15.0, abs=0.01)


def test_music_alone_is_the_audio_of_a_muted_clip() -> None:
    muted = draft(WHOLE, music=LOFI, mute=True, fade_out=2.0)

    chains = audio_chains(muted, music_input="1:a:0", speech_label=None, normalization="")

    assert chains == [
        f"[1:a:0]{TO_STEREO},atrim=end=10,asetpts=PTS-STARTPTS,volume=0.35,"
        "afade=t=in:st=0:d=1,afade=t=out:st=8:d=2,"
        "afade=t=out:st=8:d=2,apad=whole_dur=10,atrim=end=10[audio]"
    ]


def test_volume_is_a_gain_on_the_source_audio_only() -> None:
    louder = draft(WHOLE, volume=2.0, speed=1.5)

    assert audio_chains(louder, music_input=None, speech_label="cut", normalization="") == [
        f"[cut]atempo=1.5,volume=2,{TO_STEREO},apad=whole_dur=6.667,atrim=end=6.667[audio]"
    ]


def test_the_first_pass_measures_the_audio_graph_without_decoding_video() -> None:
    with_music = draft(WHOLE, music=LOFI, fade_in=1.0)

    arguments = measure_arguments(with_music, ExportSpec(), SOURCE, FILES)

    assert arguments == [
        *["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-y"],
        *["-vn", "-sn", "-dn", "-i", str(SOURCE)],
        *["-stream_loop", "-1", "-vn", "-i", str(MUSIC)],
        "-filter_complex",
        "[0:a:0]atrim=start=0:end=10,asetpts=PTS-STARTPTS[cut];"
        f"[cut]{TO_STEREO}[speech];"
        f"[1:a:0]{TO_STEREO},atrim=end=10,asetpts=PTS-STARTPTS,volume=0.35,"
        "afade=t=in:st=0:d=1,afade=t=out:st=8:d=2[music];"
        "[speech][music]amix=inputs=2:duration=longest:dropout_transition=0:normalize=0,"
        f"afade=t=in:st=0:d=1,{MEASURE}[audio]",
        *["-map", "[audio]", "-f", "null", "-"],
    ]


def test_a_measuring_pass_ends_in_ebur128_with_true_peaks_and_a_quiet_frame_log() -> None:
    assert MEASURE_FILTER == MEASURE


def test_the_first_pass_of_a_muted_clip_reads_only_the_music() -> None:
    muted = draft(WHOLE, music=LOFI, mute=True)

    arguments = measure_arguments(muted, ExportSpec(), SOURCE, FILES)

    assert str(SOURCE) not in arguments
    graph = arguments[arguments.index("-filter_complex") + 1]
    assert graph.startswith("[0:a:0]aresample=48000,")


def test_an_encode_that_verifies_measures_a_copy_of_what_it_encodes() -> None:
    arguments = audio_arguments(
        draft(WHOLE), ExportSpec(), SOURCE, AUDIO_PART, FILES, normalization="GAIN", verify=True
    )

    assert arguments[:6] == [*START[:4], "info", "-y"]  # ebur128's summary is at info
    graph = arguments[arguments.index("-filter_complex") + 1]
    assert graph.endswith(
        f",GAIN,apad=whole_dur=10,atrim=end=10,asplit=2[audio][heard];[heard]{MEASURE},anullsink"
    )
    assert arguments[arguments.index("-map") + 1] == "[audio]"


# formats


@pytest.mark.parametrize(
    ("quality", "crf", "preset"),
    [
        (Quality.LOW, "28", "veryfast"),
        (Quality.MEDIUM, "23", "veryfast"),
        (Quality.HIGH, "20", "veryfast"),
    ],
)
def test_quality_chooses_x264_crf_and_preset(quality: Quality, crf: str, preset: str) -> None:
    arguments = encoder_arguments(ExportSpec(quality=quality), with_audio=True)

    assert arguments[arguments.index("-crf") + 1] == crf
    assert arguments[arguments.index("-preset") + 1] == preset


@pytest.mark.parametrize(
    ("quality", "coder"),
    [(Quality.LOW, "fast"), (Quality.MEDIUM, "twoloop"), (Quality.HIGH, "twoloop")],
)
def test_low_quality_sound_takes_the_aac_encoders_fast_search(quality: Quality, coder: str) -> None:
    arguments = encoder_arguments(ExportSpec(quality=quality), with_audio=True)

    assert arguments[arguments.index("-aac_coder") + 1] == coder
    assert arguments[arguments.index("-b:a") + 1] == "160k"


def test_mov_is_h264_and_aac_with_the_index_first() -> None:
    assert encoder_arguments(ExportSpec(format="mov"), with_audio=True) == [
        *VIDEO_ENCODING,
        *AUDIO_ENCODING,
        *["-movflags", "+faststart", "-f", "mov"],
    ]


@pytest.mark.parametrize(
    ("quality", "crf", "cpu_used"),
    [(Quality.LOW, "40", "8"), (Quality.MEDIUM, "35", "8"), (Quality.HIGH, "31", "7")],
)
def test_webm_is_constant_quality_vp9_in_realtime_mode_with_opus(
    quality: Quality, crf: str, cpu_used: str
) -> None:
    assert encoder_arguments(ExportSpec(format="webm", quality=quality), with_audio=True) == [
        *["-c:v", "libvpx-vp9", "-crf", crf, "-b:v", "0"],
        *["-deadline", "realtime", "-cpu-used", cpu_used],
        *["-row-mt", "1", "-tile-columns", "1", "-pix_fmt", "yuv420p"],
        *["-c:a", "libopus", "-b:a", "128k", "-ar", "48000", "-ac", "2"],
        *["-f", "webm"],
    ]


def test_a_gif_gets_a_palette_per_frame_and_no_sound() -> None:
    export = ExportSpec(format="gif")
    gif = draft(WHOLE, music=LOFI, export=export)

    arguments = video_arguments(gif, export, SOURCE, OUTPUT, FILES)

    graph = arguments[arguments.index("-filter_complex") + 1]
    assert graph == (
        "[0:V:0]trim=start=0:end=10,setpts=PTS-STARTPTS[joined];"
        "[joined]fps=100/7,scale=160:120,setsar=1,split[still][frames];"
        "[still]palettegen=max_colors=256:stats_mode=single[palette];"
        "[frames][palette]paletteuse=new=1:dither=bayer:bayer_scale=3[video]"
    )
    assert arguments[arguments.index(graph) + 1 :] == [
        *["-map", "[video]", "-map_chapters", "-1"],
        *["-c:v", "gif", "-loop", "0", "-f", "gif", str(OUTPUT)],
    ]


def test_a_long_filter_graph_is_read_from_a_file() -> None:
    script = Path("/work/job/render.filtergraph.txt")

    arguments = video_arguments(
        CUT,
        ExportSpec(),
        SOURCE,
        OUTPUT,
        FILES,
        filter_script=script,
        filter_script_option="-filter_complex_script",
    )

    assert arguments[11:15] == ["-filter_complex_script", str(script), "-map", "[video]"]


@pytest.mark.parametrize(
    ("value", "text"), [(-28.0, "-28"), (0.6000000001, "0.6"), (2.04, "2.04"), (1e-9, "0")]
)
def test_numbers_are_written_without_exponents_or_trailing_zeros(value: float, text: str) -> None:
    assert format_number(value) == text


# reading FFmpeg's own output


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
