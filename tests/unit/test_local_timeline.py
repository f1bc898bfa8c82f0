"""The local engine's timeline: kept segments and an edit become the whole Draft (pure)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from nemowatch.engines.base import Draft, Frame
from nemowatch.engines.local.analysis import Segment
from nemowatch.engines.local.effects import Effects, WatermarkItem
from nemowatch.engines.local.engine import caption_frame
from nemowatch.engines.local.music import (
    MOOD_RECIPES,
    MusicChoice,
    choose_track,
    frequency,
    mood_arguments,
    mood_expression,
    mood_file_name,
    resolve_music,
)
from nemowatch.engines.local.timeline import (
    Cut,
    SourceAudio,
    SourceFacts,
    TimelineFacts,
    build_draft,
    cuts_of,
    fps_value,
    music_of,
    output_fps,
    output_size,
    retarget,
    source_audio_of,
    speech_windows,
    texts_of,
)
from nemowatch.errors import MediaError
from nemowatch.rules import EditSpec, ExportSpec, TextOverlay

TALK = SourceFacts(
    name="talk.mp4",
    duration=10.0,
    width=1920,
    height=1080,
    fps=25.0,
    has_audio=True,
    format="mov,mp4,m4a,3gp,3g2,mj2",
)
MUTE_CLIP = SourceFacts(
    name="mute.mp4", duration=10.0, width=1920, height=1080, fps=25.0, has_audio=False
)
WHOLE = [Segment(0.0, 10.0)]
LOFI = MusicChoice(source="lofi", generated=True)


def draft(
    segments: list[Segment] = WHOLE,
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


def test_a_full_edit_is_one_draft_in_nemovideos_shape() -> None:
    result = draft(
        [Segment(0.0, 2.0), Segment(4.0, 10.0)],
        speech=[Segment(0.5, 1.5), Segment(5.0, 9.0)],
        music=LOFI,
        export=ExportSpec(resolution="1080p"),
        speed=2.0,
        aspect="9:16",
        title={"text": "Urban Dreams", "duration": 2, "position": "top"},
        fade_out=1.0,
        volume=1.5,
    )

    assert result.to_json() == {
        "t": [
            {
                "tt": 0,
                "sg": [
                    {"s": 0, "e": 2000, "at": 0, "d": 1000},
                    {"s": 4000, "e": 10000, "at": 1000, "d": 3000},
                ],
                "m": {"kind": "video"},
            },
            {
                "tt": 1,
                "sg": [
                    {"s": 0, "e": 2000, "at": 0, "d": 1000},
                    {"s": 4000, "e": 10000, "at": 1000, "d": 3000},
                ],
                "m": {"kind": "source", "volume": 1.5},
            },
            {
                "tt": 1,
                "sg": [{"at": 0, "d": 4000}],
                "m": {
                    "kind": "music",
                    "source": "lofi",
                    "generated": True,
                    "volume": 0.35,
                    "fade_in": 1.0,
                    "fade_out": 1.0,
                    # speech at 0.5-1.5 s and 5-9 s of the source: 0.25-0.75 s and
                    # 1.5-3.5 s of the output, less than DUCK_BRIDGE apart, so one window
                    "duck": {"db": -15.0, "under": [[250, 3500]]},
                },
            },
            {
                "tt": 7,
                "sg": [
                    {"text": "Urban Dreams", "at": 0, "d": 2000, "position": "top", "size": 0.07}
                ],
            },
        ],
        "d": 4000,
        "m": {
            "source": "talk.mp4",
            "source_duration_ms": 10000,
            "source_width": 1920,
            "source_height": 1080,
            "source_fps": 25.0,
            "has_audio": True,
            "source_format": "mov,mp4,m4a,3gp,3g2,mj2",
            "width": 1080,
            "height": 1920,
            "fps": 25.0,
            "aspect": "9:16",
            "fit": "blur",
            "speed": 2.0,
            "fade_in": None,
            "fade_out": 1.0,
            "normalize": True,
            "format": "mp4",
            "quality": "high",
            "resolution": "1080p",
        },
    }


def test_the_duration_is_the_outputs_after_the_speed_change() -> None:
    assert draft([Segment(1.0, 4.0)], speed=1.5).duration_ms == 2000
    assert draft([Segment(1.0, 4.0)], speed=0.5).duration_ms == 6000


def test_segment_places_add_up_without_rounding_drift() -> None:
    thirds = [Segment(index / 3, index / 3 + 0.2) for index in range(0, 30, 2)]

    result = draft(thirds, speed=3.0)

    video = result.tracks[0]["sg"]
    for previous, following in itertools.pairwise(video):
        assert following["at"] == previous["at"] + previous["d"]
    assert video[-1]["at"] + video[-1]["d"] == result.duration_ms == round(15 * 0.2 / 3 * 1000)


def test_a_draft_reads_back_its_cuts_on_the_frame_grid() -> None:
    result = draft([Segment(0.04, 1.32), Segment(2.0, 10.0)])

    assert cuts_of(Draft.from_json(result.to_json())) == [Cut(0.04, 1.32), Cut(2.0, 10.0)]


def test_mute_drops_the_source_audio_but_keeps_the_music() -> None:
    result = draft(mute=True, music=LOFI)

    kinds = [(track["tt"], track.get("m", {}).get("kind")) for track in result.tracks]
    assert kinds == [(0, "video"), (1, "music")]
    bed = music_of(result)
    assert bed is not None and bed.duck_db is None  # nothing heard to duck under


def test_muted_without_music_has_no_audio_track() -> None:
    assert [track["tt"] for track in draft(mute=True).tracks] == [0]


def test_a_source_without_audio_gets_music_only() -> None:
    result = draft(source=MUTE_CLIP, music=LOFI)

    assert [(track["tt"], track["m"]["kind"]) for track in result.tracks] == [
        (0, "video"),
        (1, "music"),
    ]


def test_music_without_ducking_has_no_duck_windows() -> None:
    result = draft(music=LOFI, duck=False, speech=[Segment(1.0, 2.0)])

    bed = music_of(result)
    assert bed is not None
    assert (bed.duck_db, bed.duck_under) == (None, ())


def test_a_gif_has_no_sound_and_a_small_frame() -> None:
    result = draft(music=LOFI, export=ExportSpec(format="gif", resolution="1080p"), aspect="9:16")

    assert [track["tt"] for track in result.tracks] == [0]
    assert (result.metadata["width"], result.metadata["height"]) == (270, 480)
    assert result.metadata["fps"] == pytest.approx(100 / 7)  # 7 hundredths a frame


def test_a_gif_longer_than_a_minute_is_refused_with_a_hint() -> None:
    long_source = SourceFacts("long.mp4", 90.0, 320, 240, 25.0, True)

    with pytest.raises(MediaError, match=r"GIF of 90\.0 s is too long") as raised:
        draft([Segment(0.0, 90.0)], source=long_source, export=ExportSpec(format="gif"))

    assert raised.value.hint is not None and "max_duration" in raised.value.hint
    # the same minute and a half, at double speed, fits
    assert draft(
        [Segment(0.0, 90.0)], source=long_source, export=ExportSpec(format="gif"), speed=2.0
    ).duration == pytest.approx(45.0)


def test_keeping_nothing_is_refused() -> None:
    with pytest.raises(MediaError, match=r"keeps nothing of talk\.mp4"):
        draft([])


@pytest.mark.parametrize(
    ("source", "aspect", "resolution", "size"),
    [
        ((1920, 1080), "9:16", "1080p", (1080, 1920)),
        ((1920, 1080), "16:9", "720p", (1280, 720)),
        ((1920, 1080), "1:1", "source", (1080, 1080)),
        ((1920, 1080), "4:5", "1080p", (1080, 1350)),
        ((1280, 720), "16:9", "480p", (854, 480)),
        ((1280, 720), "9:16", "240p", (240, 426)),
        ((720, 1280), "9:16", "source", (720, 1280)),
        ((1920, 1080), None, "720p", (1280, 720)),
        ((1080, 1920), None, "720p", (720, 1280)),
        ((321, 241), None, "source", (320, 240)),
        ((640, 480), None, "2160p", (2880, 2160)),
    ],
)
def test_the_output_size_comes_from_the_aspect_and_the_short_side(
    source: tuple[int, int], aspect: str | None, resolution: str, size: tuple[int, int]
) -> None:
    export = ExportSpec.model_validate({"resolution": resolution})

    assert output_size(*source, aspect, export) == size


def test_without_a_known_source_size_only_an_aspect_and_resolution_fix_the_size() -> None:
    assert output_size(None, None, "9:16", ExportSpec(resolution="720p")) == (720, 1280)
    assert output_size(None, None, None, ExportSpec(resolution="720p")) == (None, None)
    assert output_size(None, None, "9:16", ExportSpec()) == (None, None)


@pytest.mark.parametrize(
    ("source_fps", "speed", "export", "fps"),
    [
        (25.0, 1.0, ExportSpec(), 25.0),
        (25.0, 2.0, ExportSpec(), 25.0),
        (29.97, 1.0, ExportSpec(fps=60), 60.0),
        (30.0, 1.0, ExportSpec(format="gif"), 100 / 7),
        (30.0, 1.0, ExportSpec(format="gif", fps=10), 10.0),
        (12.5, 1.0, ExportSpec(format="gif"), 12.5),
    ],
)
def test_the_output_frame_rate(
    source_fps: float, speed: float, export: ExportSpec, fps: float
) -> None:
    assert output_fps(source_fps, speed, export) == pytest.approx(fps)


@pytest.mark.parametrize(
    ("fps", "text"),
    [(25.0, "25"), (30000 / 1001, "30000/1001"), (100 / 7, "100/7"), (12.5, "25/2")],
)
def test_frame_rates_are_written_as_exact_fractions(fps: float, text: str) -> None:
    assert fps_value(fps) == text


def test_speech_is_mapped_through_the_cuts_and_the_speed() -> None:
    cuts = [Segment(0.0, 2.0), Segment(6.0, 10.0)]
    speech = [Segment(1.0, 3.0), Segment(5.0, 6.5), Segment(9.0, 12.0)]

    # kept: 0-2 s (speech 1-2 s) and 6-10 s (speech 6-6.5 s, 9-10 s), at double speed:
    # output 0.5-1 s, 1-1.25 s (joined: closer than DUCK_BRIDGE), 2.5-3 s
    assert speech_windows(speech, cuts, 2.0, 3.0) == ((0.5, 1.25), (2.5, 3.0))


def test_speech_windows_far_apart_stay_apart() -> None:
    windows = speech_windows([Segment(0.0, 1.0), Segment(3.0, 4.0)], [Segment(0.0, 5.0)], 1.0, 5.0)

    assert windows == ((0.0, 1.0), (3.0, 4.0))


def test_texts_are_placed_in_output_time_and_clipped_to_it() -> None:
    result = draft(
        title="Hello",
        texts=[
            TextOverlay(text="late", start=9.0, duration=3.0, position="bottom", size=0.05),
            TextOverlay(text="too late", start=10.5),
        ],
    )

    assert [(item.text, item.start, item.duration) for item in texts_of(result)] == [
        ("Hello", 0.0, 3.0),
        ("late", 9.0, 1.0),
    ]


def test_fades_longer_than_half_the_output_are_shortened() -> None:
    result = draft([Segment(0.0, 3.0)], fade_in=2.0, fade_out=True)

    assert (result.metadata["fade_in"], result.metadata["fade_out"]) == (1.5, 1.0)


def test_retargeting_a_draft_follows_the_export() -> None:
    planned = draft(aspect="9:16", music=LOFI, export=ExportSpec(resolution="1080p"))

    gif = retarget(planned, ExportSpec(format="gif", resolution="1080p"))
    smaller = retarget(planned, ExportSpec(resolution="720p"))

    assert retarget(planned, ExportSpec(resolution="1080p")) is planned
    assert [track["tt"] for track in gif.tracks] == [0]
    assert (gif.metadata["format"], gif.metadata["width"], gif.metadata["height"]) == (
        "gif",
        270,
        480,
    )
    assert (smaller.metadata["width"], smaller.metadata["height"]) == (720, 1280)
    assert smaller.tracks == planned.tracks


def test_retargeting_for_one_of_several_outputs_gives_it_its_own_aspect_and_fit() -> None:
    planned = draft(aspect="16:9", export=ExportSpec(resolution="1080p"))

    tall = retarget(planned, ExportSpec(resolution="1080p"), Frame("shorts", "9:16", "crop"))
    same = retarget(planned, ExportSpec(resolution="1080p"), Frame("youtube", "16:9"))
    square = retarget(planned, ExportSpec(resolution="240p"), Frame("square", "1:1"))

    assert same is planned  # the edit's own frame: nothing to change
    facts = TimelineFacts.of(tall)
    assert (facts.width, facts.height, facts.aspect, facts.fit) == (1080, 1920, "9:16", "crop")
    assert tall.tracks == planned.tracks and tall.duration_ms == planned.duration_ms
    assert TimelineFacts.of(square).output_size == (240, 240)
    assert TimelineFacts.of(square).fit == "blur"  # the edit's fit, where the output sets none


def test_captions_are_laid_out_for_the_narrowest_of_a_jobs_outputs() -> None:
    export = ExportSpec(resolution="1080p")

    assert caption_frame(1920, 1080, ("16:9", "9:16", "1:1"), export) == (1080, 1920)
    assert caption_frame(1920, 1080, (None, "1:1"), export) == (1080, 1080)
    assert caption_frame(1920, 1080, (None,), export) == (1920, 1080)  # one output: its own
    assert caption_frame(None, None, (None,), export) == (None, None)


def test_the_timeline_facts_read_back_are_the_ones_written() -> None:
    planned = draft(aspect="9:16", fit="pad", speed=1.5, fade_in=1.0, volume=0.5)

    facts = TimelineFacts.of(Draft.from_json(planned.to_json()))

    assert Draft(planned.tracks, planned.duration_ms, facts.to_json()) == planned
    assert (facts.aspect, facts.fit, facts.speed, facts.fade_in, facts.fade_out) == (
        "9:16",
        "pad",
        1.5,
        1.0,
        None,
    )
    assert (facts.output_size, facts.source_size, facts.source_end) == (
        (1080, 1920),
        (1920, 1080),
        10.0,
    )
    assert source_audio_of(planned) == SourceAudio(volume=0.5)


def test_a_draft_of_an_earlier_version_has_no_output_size_and_one_frame_rate() -> None:
    legacy = Draft.from_json(
        {
            "t": [{"tt": 0, "sg": [{"s": 0, "e": 2000, "at": 0}]}, {"tt": 1, "sg": []}],
            "d": 2000,
            "m": {"width": 160, "height": 120, "fps": 25.0, "source_duration_ms": 2000},
        }
    )

    facts = TimelineFacts.of(legacy)

    assert (facts.sized, facts.output_size, facts.source_fps, facts.speed) == (
        False,
        (None, None),
        25.0,
        1.0,
    )
    assert source_audio_of(legacy) == SourceAudio(volume=1.0)
    assert cuts_of(legacy) == [Cut(0.0, 2.0)]


# music


def test_notes_have_their_equal_tempered_frequencies() -> None:
    assert frequency("A4") == pytest.approx(440.0)
    assert frequency("C4") == pytest.approx(261.626, abs=0.001)
    assert frequency("Bb2") == pytest.approx(frequency("A#2"))


def test_each_mood_is_its_own_loop_and_its_expression_is_complete() -> None:
    expressions = {name: mood_expression(mood) for name, mood in MOOD_RECIPES.items()}

    assert len(set(expressions.values())) == 3
    for expression in expressions.values():
        # every placeholder was substituted: only FFmpeg's own names remain
        leftovers = {word for word in _capital_words(expression) if word not in ("PI",)}
        assert leftovers == set()
        assert expression.count("(") == expression.count(")")


def test_a_mood_is_generated_to_a_stereo_wav_of_its_loop_length() -> None:
    output = Path("/cache/lofi.wav")

    arguments = mood_arguments("lofi", output)

    assert arguments[:9] == [
        *["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"],
        *["-f", "lavfi", "-i"],
    ]
    assert arguments[9].startswith("aevalsrc=exprs='st(0,")
    assert arguments[9].endswith(":s=48000:d=12.307692")  # four bars of 4/4 at 78 BPM
    assert arguments[-9:] == [
        *["-c:a", "pcm_s16le", "-ar", "48000", "-ac", "2", "-f", "wav"],
        str(output),
    ]


def test_the_cache_name_of_a_mood_changes_with_its_recipe() -> None:
    assert mood_file_name("lofi").startswith("mood-lofi-")
    assert mood_file_name("lofi") != mood_file_name("calm")
    assert mood_file_name("lofi") == mood_file_name("lofi")


def test_a_folder_gives_each_job_the_same_track_every_time() -> None:
    tracks = ["b.mp3", "a.mp3", "c.m4a"]

    chosen = {job: choose_track(tracks, job) for job in ("job-1", "job-2", "job-3", "job-4")}

    assert chosen == {job: choose_track(list(reversed(tracks)), job) for job in chosen}
    assert set(chosen.values()) <= set(tracks)
    assert len(set(chosen.values())) > 1  # jobs spread over the folder


def test_music_can_be_a_mood_a_file_or_a_folder(tmp_path: Path) -> None:
    track = tmp_path / "song.mp3"
    track.write_bytes(b"")
    folder = tmp_path / "tracks"
    folder.mkdir()
    for name in ("one.mp3", "two.flac", "notes.txt", ".hidden.mp3"):
        (folder / name).write_bytes(b"")

    assert resolve_music("Lofi", job_id="j") == MusicChoice("lofi", generated=True)
    assert resolve_music(str(track), job_id="j") == MusicChoice(str(track), generated=False)
    chosen = resolve_music(str(folder), job_id="j")
    assert not chosen.generated
    assert Path(chosen.source).name in ("one.mp3", "two.flac")


def test_music_that_does_not_exist_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "song.mp3"

    with pytest.raises(MediaError, match=r"the music '.*nowhere/song\.mp3' does not exist"):
        resolve_music(str(missing), job_id="j")


def test_a_music_folder_without_audio_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no music here")

    with pytest.raises(MediaError, match="holds no audio files") as raised:
        resolve_music(str(tmp_path), job_id="j")

    assert raised.value.hint is not None and "lofi" in raised.value.hint


def _capital_words(expression: str) -> set[str]:
    words: set[str] = set()
    current = ""
    for character in expression + " ":
        if character.isalpha():
            current += character
        else:
            if current and current[0].isupper():
                words.add(current)
            current = ""
    return words


def test_the_plans_warnings_travel_in_the_drafts_metadata_and_survive_a_retarget() -> None:
    warning = "the reel lasts 42.0 s: 42.0 s of speech left after cutting silences; asked 60 s"
    planned = build_draft(
        WHOLE, source=TALK, edit=EditSpec(), export=ExportSpec(), warnings=[warning]
    )

    stored = Draft.from_json(planned.to_json())

    assert stored.warnings == (warning,)
    assert TimelineFacts.of(stored).warnings == (warning,)
    assert retarget(stored, ExportSpec(format="webm")).warnings == (warning,)


def test_a_draft_without_warnings_keeps_the_keys_of_earlier_versions() -> None:
    plain = draft()

    assert "warnings" not in plain.metadata
    assert plain.warnings == ()
    assert Draft(tracks=(), duration_ms=0, metadata={"warnings": "odd"}).warnings == ()


# effects: recorded in m.effects, a loop multiplies the duration, big passes are refused


def test_a_draft_without_effects_has_no_effects_key() -> None:
    assert "effects" not in draft().metadata
    assert Effects.of(draft()) == Effects()


def test_effects_are_recorded_and_read_back() -> None:
    result = draft(
        color={"brightness": 0.1, "warmth": 0.5},
        denoise="strong",
        watermark={"file": "/art/logo.png", "corner": "top-left", "opacity": 0.5},
        reverse=True,
    )

    effects = Effects.of(Draft.from_json(result.to_json()))
    assert effects.brightness == 0.1
    assert effects.temperature == 5000  # 6500 K less 3000 K per unit of warmth
    assert effects.denoise_db == 24.0
    assert effects.watermark == WatermarkItem("/art/logo.png", "top-left", 0.5, 0.15)
    assert effects.reverse and effects.loop == 1


def test_the_enhance_preset_gives_way_to_the_edits_own_colour_and_denoise() -> None:
    preset = Effects.of(draft(enhance=True, normalize=False))
    own = Effects.of(draft(enhance=True, denoise=24, color={"contrast": 1.2}))

    assert (preset.contrast, preset.saturation, preset.denoise_db) == (1.05, 1.1, 6.0)
    assert preset.video_denoise
    assert TimelineFacts.of(draft(enhance=True, normalize=False)).normalize  # always
    assert (own.saturation, own.contrast, own.denoise_db) == (None, 1.2, 24.0)


def test_a_loop_plays_the_pass_n_times_and_ducks_under_each_passs_speech() -> None:
    result = draft([Segment(0.0, 4.0)], speech=[Segment(1.0, 2.0)], music=LOFI, loop=3)

    assert result.duration == pytest.approx(12.0)
    music = music_of(result)
    assert music is not None
    assert music.duck_under == ((1.0, 2.0), (5.0, 6.0), (9.0, 10.0))


def test_a_reversed_edit_ducks_where_the_speech_plays_backwards() -> None:
    result = draft([Segment(0.0, 4.0)], speech=[Segment(0.5, 1.5)], music=LOFI, reverse=True)

    music = music_of(result)
    assert music is not None and music.duck_under == ((2.5, 3.5),)


def test_a_reverse_too_long_to_hold_in_memory_is_refused_with_what_to_change() -> None:
    long_source = SourceFacts("long.mp4", 120.0, 1920, 1080, 30.0, True)

    with pytest.raises(MediaError) as raised:
        draft([Segment(0.0, 120.0)], source=long_source, reverse=True)

    assert "reverse of long.mp4 would hold 120.0 s of frames" in str(raised.value)
    assert "lower resolution" in (raised.value.hint or "")
    # at 240p the same two minutes fit
    assert draft(
        [Segment(0.0, 120.0)], source=long_source, reverse=True,
        export=ExportSpec(resolution="240p"),
    ).duration == pytest.approx(120.0)  # fmt: skip


def test_denoise_with_no_source_sound_played_is_a_warning() -> None:
    assert draft(denoise=True).warnings == ()
    assert draft(source=MUTE_CLIP, denoise=True).warnings == (
        "denoise was asked for, but mute.mp4 has no sound",
    )
    assert draft(mute=True, denoise=True).warnings == (
        "denoise was asked for, but the output plays none of the source's sound",
    )


def test_the_effects_are_said_in_words_for_explain() -> None:
    effects = Effects.of(draft(enhance=True, loop=2, watermark="/logo.png"))

    assert effects.describe() == [
        "contrast 1.05",
        "saturation 1.1",
        "light video denoise",
        "hiss reduced by 6 dB",
        "watermark /logo.png bottom-right, 15% wide, 80% opaque",
        "played 2 times",
    ]


def test_a_reverse_retargeted_to_a_larger_frame_is_checked_again() -> None:
    long_source = SourceFacts("long.mp4", 120.0, 1920, 1080, 30.0, True)
    small = draft(
        [Segment(0.0, 120.0)], source=long_source, reverse=True,
        export=ExportSpec(resolution="240p"),
    )  # fmt: skip

    with pytest.raises(MediaError, match=r"reverse of long\.mp4"):
        retarget(small, ExportSpec(resolution="1080p"))
