"""Choosing FFmpeg by what it can do: the probe's verdicts on fake binaries, and that the
probe's table covers every filter and option the builders emit."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from nemowatch import conform
from nemowatch.engines.local import analysis, batch, inputs, music
from nemowatch.engines.local.analysis import Segment
from nemowatch.engines.local.ffmpeg import (
    OPTIONAL_FILTER_OPTIONS,
    REQUIRED_FILTER_OPTIONS,
    choose_ffmpeg,
    detected_candidates,
    parse_filter_options,
    parse_version,
    probe_ffmpeg,
)
from nemowatch.engines.local.graph import RenderFiles
from nemowatch.engines.local.loudness import limiter_normalization, linear_normalization
from nemowatch.engines.local.music import MusicChoice
from nemowatch.engines.local.picture import video_graph
from nemowatch.engines.local.sound import audio_graph, measure_graph
from nemowatch.engines.local.timeline import SourceFacts, build_draft
from nemowatch.errors import EngineError
from nemowatch.rules import Audiogram, EditSpec, ExportSpec, SilenceCut, Still
from tests.fakes.ffmpeg import DRAWTEXT_5_1, TEXT_ALIGN, fake_ffmpeg


def test_the_option_names_are_read_from_the_filter_help() -> None:
    options = parse_filter_options(DRAWTEXT_5_1)

    assert {"fontfile", "textfile", "expansion", "line_spacing"} <= options
    assert "text_align" not in options
    assert "none" not in options  # a value of `expansion`, not an option
    assert "text_align" in parse_filter_options(DRAWTEXT_5_1 + TEXT_ALIGN)


@pytest.mark.parametrize(
    ("banner", "version"),
    [
        ("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026", "5.1.9-0+deb12u1"),
        (
            "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright",
            "n9.0.2-17-g2a571b6068-20260930",
        ),
        ("something else", ""),
    ],
)
def test_the_version_is_read_from_the_banner(banner: str, version: str) -> None:
    assert parse_version(banner) == version


def test_ffmpeg_5_1_is_usable_with_older_forms(tmp_path: Path) -> None:
    capabilities = probe_ffmpeg(
        fake_ffmpeg(tmp_path, version="5.1.9-0+deb12u1", drawtext_help=DRAWTEXT_5_1)
    )

    assert capabilities.version == "5.1.9-0+deb12u1"
    assert capabilities.major == 5
    assert capabilities.missing() == []
    assert capabilities.older_forms() == ["drawtext:text_align"]
    assert not capabilities.text_align  # each line of a title gets a drawtext of its own
    assert not capabilities.option_files  # -filter_complex_script, not -/filter_complex


def test_a_recent_ffmpeg_needs_no_older_forms(tmp_path: Path) -> None:
    capabilities = probe_ffmpeg(
        fake_ffmpeg(tmp_path, version="7.1.1", drawtext_help=DRAWTEXT_5_1 + TEXT_ALIGN)
    )

    assert capabilities.missing() == []
    assert capabilities.older_forms() == []
    assert capabilities.text_align
    assert capabilities.option_files


def test_a_git_build_without_a_version_number_is_taken_as_recent(tmp_path: Path) -> None:
    capabilities = probe_ffmpeg(
        fake_ffmpeg(tmp_path, version="N-113000-g1234abcd", drawtext_help=DRAWTEXT_5_1)
    )

    assert capabilities.major is None
    assert capabilities.option_files


def test_a_missing_filter_option_and_encoder_are_named(tmp_path: Path) -> None:
    without_textfile = DRAWTEXT_5_1.replace("   textfile ", "   textfilx ")
    capabilities = probe_ffmpeg(
        fake_ffmpeg(
            tmp_path,
            version="4.4.2",
            drawtext_help=without_textfile,
            without_encoders=("libopus",),
        )
    )

    assert capabilities.missing() == ["libopus", "drawtext:textfile"]


def test_a_system_ffmpeg_lacking_an_option_is_passed_over_with_the_reason(tmp_path: Path) -> None:
    lacking = DRAWTEXT_5_1.replace("   expansion ", "   expanzion ")
    system = fake_ffmpeg(tmp_path / "bin", version="5.0.3", drawtext_help=lacking)

    choice = choose_ffmpeg(environ={"PATH": str(system.parent)})

    assert choice.origin == "bundled"
    assert [candidate.path for candidate in choice.skipped] == [system]
    assert choice.skipped[0].problem == "version 5.0.3 lacks drawtext:expansion"
    assert choice.ffmpeg.missing() == []


def test_a_capable_system_ffmpeg_is_chosen(tmp_path: Path) -> None:
    system = fake_ffmpeg(tmp_path / "bin", version="5.1.9", drawtext_help=DRAWTEXT_5_1)

    choice = choose_ffmpeg(environ={"PATH": str(system.parent)})

    assert (choice.origin, choice.ffmpeg.path, choice.skipped) == ("system", system, ())
    assert "system" in choice.reason


def test_an_ffmpeg_named_by_the_environment_must_have_everything(tmp_path: Path) -> None:
    lacking = DRAWTEXT_5_1.replace("   textfile ", "   textfilx ")
    pinned = fake_ffmpeg(tmp_path, version="5.1.9", drawtext_help=lacking)

    with pytest.raises(EngineError) as raised:
        choose_ffmpeg(environ={"NEMOWATCH_FFMPEG": str(pinned), "PATH": ""})

    message = str(raised.value)
    assert "$NEMOWATCH_FFMPEG" in message and str(pinned) in message
    assert "lacks drawtext:textfile" in message
    assert "nemowatch doctor" in (raised.value.hint or "")


def test_a_replaced_binary_is_probed_again(tmp_path: Path) -> None:
    path = fake_ffmpeg(tmp_path, version="5.1.9", drawtext_help=DRAWTEXT_5_1)
    assert probe_ffmpeg(path).version == "5.1.9"

    (tmp_path / "ffmpeg.version.txt").write_text("ffmpeg version 7.1.1 Copyright\n")
    path.write_text(path.read_text() + "# upgraded\n")  # a new size and mtime

    assert probe_ffmpeg(path).version == "7.1.1"


# The table covers the builders: every filter and option in graphs they build is listed.

TALK = SourceFacts("talk.mp4", 10.0, 160, 120, 25.0, has_audio=True, format="mov,mp4")
FILES = RenderFiles(font=Path("/font.otf"), text_files=(Path("/t0.txt"),), music=Path("/music.wav"))


def _draft(
    export: ExportSpec | None = None, music_choice: MusicChoice | None = None, **edit: object
):  # type: ignore[no-untyped-def]
    return build_draft(
        [Segment(0.0, 2.2), Segment(3.8, 10.0)],
        source=TALK,
        edit=EditSpec.model_validate(edit),
        export=export or ExportSpec(),
        speech=[Segment(0.5, 2.0)],
        music=music_choice,
    )


def _graphs() -> list[str]:
    lofi = MusicChoice("lofi", generated=True)
    every_edit = _draft(
        music_choice=lofi,
        music="lofi",
        speed=1.5,
        aspect="9:16",
        fade_in=0.5,
        fade_out=0.5,
        normalize=True,
        title={"text": "Urban Dreams", "duration": 3},
    )
    graphs = []
    for export_format, fit in (("mp4", "blur"), ("webm", "pad"), ("gif", "crop")):
        spec = ExportSpec(format=export_format)
        draft = _draft(
            export=spec,
            music_choice=lofi,
            music="lofi",
            aspect="1:1",
            fit=fit,
            title={"text": "x", "duration": 2},
        )
        graphs.append(video_graph(draft, spec, FILES))
    every_effect = _draft(
        enhance=True,
        color={"brightness": 0.1, "contrast": 1.2, "saturation": 1.3, "warmth": 0.3},
        watermark={"file": "/logo.png", "corner": "top-left"},
        reverse=True,
        loop=2,
        denoise=12,
    )
    graphs.append(video_graph(every_effect, ExportSpec(), FILES))
    graphs.append(audio_graph(every_effect, ExportSpec()))
    graphs.append(video_graph(every_edit, ExportSpec(), FILES))
    graphs.append(audio_graph(every_edit, ExportSpec()))
    graphs.append(measure_graph(every_edit, ExportSpec()))
    graphs.append(
        audio_graph(
            every_edit,
            ExportSpec(),
            normalization=linear_normalization(3.0, "test").filter,
            verify=True,
        )
    )
    graphs.append(
        audio_graph(
            every_edit, ExportSpec(), normalization=limiter_normalization(3.0, "test").filter
        )
    )
    for arguments in (
        analysis.audio_arguments(Path("/a.mp4"), SilenceCut(), loudness=True),
        analysis.audio_arguments(Path("/a.mp4"), SilenceCut(), loudness=True, levels=True),
        analysis.audio_arguments(Path("/a.mp4"), None, loudness=False, levels=True),
        analysis.scene_arguments(Path("/a.mp4")),
        music.mood_arguments("lofi", Path("/lofi.wav")),
        *_input_arguments(),
    ):
        graphs += [
            value
            for option, value in pairwise(arguments)
            if option in ("-af", "-vf", "-filter_complex", "-lavfi")
            or (option == "-i" and "=" in value)
        ]
    return [graph for graph in graphs if graph]


def _input_arguments() -> list[list[str]]:
    """The footage builders' arguments: a photo turned each way, both audiogram styles."""
    source, target = Path("/in"), Path("/out.mkv")
    photos = [
        inputs.photo_arguments(
            source, target, size=(64, 48), orientation=orientation, still=Still(),
            motion=inputs.motion_for(b"x"),
        )
        for orientation in range(1, 9)
    ]  # fmt: skip
    grams = [
        inputs.audiogram_arguments(
            source, target, size=(64, 48), seconds=2.0, settings=Audiogram(style=style),
            cover=cover,
        )
        for style in ("waveform", "spectrum")
        for cover in (None, Path("/cover.png"))
    ]  # fmt: skip
    pieces = [batch.Piece(Path("/a.mp4"), 2.0, True), batch.Piece(Path("/b.mkv"), 1.5, False)]
    combined = [  # a batch's files joined (`batch: combine`), with and without a soundtrack
        batch.combine_arguments(pieces, target, size=(64, 48), soundtrack=soundtrack)
        for soundtrack in (None, Path("/song.mp3"))
    ]
    conformed = conform.arguments(  # a cloud render made the rule's size and rate
        source, target, conform.Change((64, 48), 30.0, had="x"), ExportSpec()
    )
    return [*photos, *grams, inputs.animation_arguments(source, target), *combined, conformed]


def _split(text: str, separators: str) -> list[str]:
    """`text` split at `separators` outside quotes, brackets and backslash escapes."""
    parts, current, quoted, depth, escaped = [], "", False, 0, False
    for character in text:
        if escaped:
            current += character
            escaped = False
        elif character == "\\":
            current += character
            escaped = True
        elif character == "'":
            quoted = not quoted
            current += character
        elif not quoted and character in "([":
            depth += 1
            current += character
        elif not quoted and character in ")]":
            depth -= 1
            current += character
        elif not quoted and depth == 0 and character in separators:
            parts.append(current)
            current = ""
        else:
            current += character
    return [*parts, current]


def used_options(graph: str) -> set[str]:
    """`filter` and `filter:option` for each filter and named option in `graph`."""
    used = set()
    for chain in _split(graph, ";"):
        for element in _split(chain, ","):
            element = re.sub(r"^(\[[^\]]*\])+|(\[[^\]]*\])+$", "", element.strip())
            name, _, arguments = element.partition("=")
            used.add(name)
            for argument in _split(arguments, ":") if arguments else []:
                key, equals, _ = argument.partition("=")
                if equals and re.fullmatch(r"[A-Za-z_]+", key):
                    used.add(f"{name}:{key}")
    return used


def test_the_probe_looks_for_every_filter_and_option_the_builders_use() -> None:
    known = {*REQUIRED_FILTER_OPTIONS}
    for table in (REQUIRED_FILTER_OPTIONS, OPTIONAL_FILTER_OPTIONS):
        known |= {f"{name}:{option}" for name, options in table.items() for option in options}
    used = set().union(*(used_options(graph) for graph in _graphs()))

    # `enable` is the timeline option of every filter with timeline support
    used -= {option for option in used if option.endswith(":enable")}
    assert sorted(used - known) == []
    assert "drawtext:text_align" in used and "drawtext:textfile" in used
    assert {"afftdn:nf", "colortemperature:temperature", "overlay:x", "aloop:size"} <= used


def test_every_filters_options_come_from_one_full_help_with_a_few_asked_alone(
    tmp_path: Path,
) -> None:
    path = fake_ffmpeg(tmp_path, version="5.1.9", drawtext_help=DRAWTEXT_5_1)
    log = tmp_path / "asked.txt"
    path.write_text(path.read_text().replace("#!/bin/sh\n", f'#!/bin/sh\necho "$@" >> {log}\n'))

    capabilities = probe_ffmpeg(path)

    assert capabilities.missing() == []
    asked = log.read_text().splitlines()
    assert "-hide_banner -h full" in asked
    assert sorted(line for line in asked if "filter=" in line) == [
        "-hide_banner -h filter=scale",
        "-hide_banner -h filter=vstack",
    ]
    assert len(asked) == 6  # -filters, -h full, the two above, -version, -encoders


def test_an_ffmpeg_before_4_4_lacks_stats_period_and_is_passed_over(tmp_path: Path) -> None:
    capabilities = probe_ffmpeg(
        fake_ffmpeg(
            tmp_path,
            version="4.3.6",
            drawtext_help=DRAWTEXT_5_1,
            global_options=("progress", "autorotate"),
        )
    )

    assert capabilities.missing() == ["-stats_period"]


def test_the_real_binaries_have_the_global_options_progress_needs() -> None:
    for candidate in detected_candidates(None):
        assert candidate.capabilities is not None
        assert {"progress", "stats_period"} <= candidate.capabilities.global_options


def test_what_a_binary_can_do_is_kept_between_runs_until_it_changes(tmp_path: Path) -> None:
    from nemowatch.engines.local.ffmpeg import _probe, capability_cache

    cache = capability_cache({"HOME": str(tmp_path / "home")})
    assert cache == tmp_path / "home" / ".cache" / "nemowatch" / "ffmpeg"
    path = fake_ffmpeg(tmp_path, version="5.1.9", drawtext_help=DRAWTEXT_5_1)
    first = probe_ffmpeg(path, cache=cache)
    assert len(list(cache.glob("*.json"))) == 1

    # another process (no memory of it): read back, the binary is not run again
    _probe.cache_clear()
    (tmp_path / "ffmpeg.version.txt").write_text("ffmpeg version 9.9 Copyright\n")
    assert probe_ffmpeg(path, cache=cache) == first

    # a replaced binary is probed again
    _probe.cache_clear()
    path.write_text(path.read_text() + "# upgraded\n")
    assert probe_ffmpeg(path, cache=cache).version == "9.9"
    assert capability_cache({"XDG_CACHE_HOME": "/x"}) == Path("/x/nemowatch/ffmpeg")
    assert capability_cache({}) is None
