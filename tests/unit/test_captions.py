"""Captions and filler cuts, the pure parts: cues, SubRip, words on the output timeline,
where fillers are cut; and what `check` and `doctor` say without speech to text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nemowatch.config.loading import load_config
from nemowatch.doctor import speech_finding
from nemowatch.doctor.findings import Status
from nemowatch.engines.local.analysis import Segment, Silence
from nemowatch.engines.local.captions import Cue, cues_of, srt
from nemowatch.engines.local.speech import MODEL_ENV, Transcript, Word, availability
from nemowatch.engines.local.words import filler_cuts, on_output, without
from nemowatch.errors import ConfigError
from nemowatch.rules import FILLERS, Captions


def spoken(text: str, start: float = 0.0, each: float = 0.3) -> list[Word]:
    return [
        Word(round(start + index * each, 3), round(start + (index + 1) * each, 3), f" {word}")
        for index, word in enumerate(text.split())
    ]


def test_a_cue_holds_at_most_two_lines_of_at_most_42_characters() -> None:
    words = spoken(
        "this is a rather long sentence that keeps on going without any pause at all "
        "for quite a while longer than one caption can hold on screen"
    )
    cues = cues_of(words, Captions(), width=1920, height=1080, duration=60)

    assert len(cues) > 1
    assert all(len(cue.lines) <= 2 and all(len(line) <= 42 for line in cue.lines) for cue in cues)
    assert " ".join(" ".join(cue.lines) for cue in cues) == " ".join(w.text.strip() for w in words)


def test_a_vertical_frame_takes_fewer_characters_a_line() -> None:
    words = spoken("one two three four five six seven eight nine ten eleven twelve")
    wide = cues_of(words, Captions(), width=1920, height=1080, duration=60)
    tall = cues_of(words, Captions(), width=1080, height=1920, duration=60)

    assert max(len(line) for cue in tall for line in cue.lines) < 30
    assert max(len(line) for cue in tall for line in cue.lines) < max(
        len(line) for cue in wide for line in cue.lines
    )


def test_a_cue_ends_at_a_sentence_end_or_a_pause() -> None:
    words = [*spoken("Hello there."), *spoken("Next one", start=0.6), *spoken("after", start=3)]
    cues = cues_of(words, Captions(), width=1920, height=1080, duration=10)

    assert [cue.text for cue in cues] == ["Hello there.", "Next one", "after"]
    assert cues[0].end <= cues[1].start  # never over the next one
    assert cues[1].end == pytest.approx(1.2 + 0.4)  # lingers a little after its last word
    assert cues[2].end == pytest.approx(3.0 + 1.0)  # and stays up a second at least


def test_srt_numbers_cues_and_writes_hours_minutes_seconds_milliseconds() -> None:
    text = srt([Cue(0.0, 1.5, ("Hello",)), Cue(3661.25, 3662.0, ("two", "lines"))])

    assert text == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello\n\n2\n01:01:01,250 --> 01:01:02,000\ntwo\nlines\n"
    )


def test_words_follow_the_edit_onto_the_output_and_cut_words_are_gone() -> None:
    words = [Word(1.0, 1.5, " kept"), Word(3.0, 3.4, " cut"), Word(6.0, 6.5, " later")]
    kept = [Segment(0.0, 2.0), Segment(5.0, 7.0)]

    placed = on_output(words, kept, speed=2.0)

    assert [(w.text, w.start, w.end) for w in placed] == [
        (" kept", 0.5, 0.75),
        (" later", 1.5, 1.75),
    ]


def test_fillers_said_alone_are_cut_between_the_middles_of_the_pauses_around_them() -> None:
    # the model's times lag the sound by 0.4 s; the pauses say where the filler is
    words = [Word(0.0, 1.4, " Hello."), Word(1.9, 2.4, " Um,"), Word(2.9, 3.8, " today")]
    pauses = [Silence(1.0, 1.5), Silence(1.8, 2.5)]

    assert filler_cuts(words, FILLERS, pauses=pauses, duration=4.0) == [Segment(1.25, 2.15)]


def test_a_filler_run_into_other_words_is_cut_by_its_times_and_never_into_them() -> None:
    words = [Word(0.0, 1.0, " so"), Word(1.05, 1.3, " uh"), Word(1.35, 2.0, " yes")]

    assert filler_cuts(words, FILLERS) == [Segment(1.0, 1.35)]
    assert filler_cuts(words, ("hmm",)) == []


def test_cuts_come_out_of_kept_segments_on_the_frame_grid() -> None:
    kept = without([Segment(0.0, 10.0)], [Segment(2.01, 3.02)], fps=10, duration=10.0)

    assert kept == [Segment(0.0, 2.0), Segment(3.0, 10.0)]


def test_a_transcript_survives_its_json() -> None:
    heard = Transcript("en", (Word(0.0, 0.5, " hi", 0.9),), "tiny.en")

    assert Transcript.from_json(heard.to_json()) == heard


def captions_config(tmp_path: Path, rule_lines: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"engine: local\nstate_dir: {tmp_path / 'state'}\nrules:\n"
        f"  - name: talks\n    inbox: {tmp_path / 'in'}\n    outbox: {tmp_path / 'out'}\n"
        + rule_lines,
        encoding="utf-8",
    )
    return config


def test_check_says_how_to_install_speech_to_text_where_it_is_missing(tmp_path: Path) -> None:
    config = captions_config(tmp_path, "    instructions: [add subtitles in english]\n")
    # a Python without faster-whisper: the module cannot be imported there
    hide = (
        "import sys; sys.modules['faster_whisper'] = None; from nemowatch.cli import main;"
        f" sys.exit(main(['check', '--config', {str(config)!r}]))"
    )
    without = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, timeout=60
    )
    with_it = subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert without.returncode == 78, without.stderr
    assert "captions need speech to text" in without.stderr
    assert "pip install 'nemowatch[captions]'" in without.stderr
    assert f"{config}:" in without.stderr
    assert with_it.returncode == 0, with_it.stderr


def test_a_model_folder_that_is_not_one_is_named_with_what_to_do(tmp_path: Path) -> None:
    status = availability({MODEL_ENV: str(tmp_path)})
    finding = speech_finding({MODEL_ENV: str(tmp_path)}, needed=True)

    assert not status.ready and MODEL_ENV in status.detail
    assert finding.status is Status.PROBLEM and finding.fix and MODEL_ENV in finding.fix


def test_loading_a_config_with_captions_and_a_broken_model_setting_fails(tmp_path: Path) -> None:
    config = captions_config(tmp_path, "    edit: {captions: true, remove_fillers: true}\n")

    with pytest.raises(ConfigError) as raised:
        load_config(config, environ={MODEL_ENV: str(tmp_path / "nowhere")})

    message = str(raised.value)
    assert "edit.captions" in message and "edit.remove_fillers" in message
    assert MODEL_ENV in message


def test_captions_in_chinese_with_the_english_only_model_are_refused_with_what_to_do(
    tmp_path: Path,
) -> None:
    config = captions_config(tmp_path, "    instructions: [添加中文字幕]\n")

    with pytest.raises(ConfigError) as raised:
        load_config(config, environ={})

    message = str(raised.value)
    assert "hears English only" in message and MODEL_ENV in message
    assert f"{config}:" in message


def test_soft_captions_in_a_gif_are_only_in_the_srt_and_the_job_says_so() -> None:
    from nemowatch.engines.local.captions import plan_captions
    from nemowatch.rules import EditSpec

    heard = Transcript("en", tuple(spoken("hello there")), "tiny.en")
    edit = EditSpec(captions=Captions(burn=False))

    track, warnings = plan_captions(
        heard, [Segment(0.0, 5.0)], edit, size=(320, 180), source_name="a.mp4", export_format="gif"
    )
    assert track is not None and track["m"]["burn"] is False
    assert warnings == [
        "a GIF holds no subtitle track: the captions are only in the .srt beside it"
        " (burn: true draws them in the picture)"
    ]
    assert (
        plan_captions(heard, [Segment(0.0, 5.0)], edit, size=(320, 180), source_name="a")[1] == []
    )


def test_a_saved_transcript_is_read_back_only_when_it_suits(tmp_path: Path) -> None:
    from nemowatch.engines.local.speech import read_cached, save

    heard = Transcript("en", (Word(0.0, 0.4, " hi"),), "tiny.en")
    save(tmp_path, heard, fillers=True)

    assert read_cached(tmp_path, fillers=True) == heard
    assert read_cached(tmp_path, fillers=False) is None  # heard without the filler prompt
    assert read_cached(tmp_path / "elsewhere", fillers=True) is None


def test_captions_repeat_with_a_loop_and_a_reversed_video_gets_none_and_says_why() -> None:
    from nemowatch.engines.base import Draft
    from nemowatch.engines.local.captions import captions_of, plan_captions
    from nemowatch.rules import EditSpec

    heard = Transcript("en", tuple(spoken("hello there")), "tiny.en")
    pass_ = [Segment(0.0, 2.0)]

    looped, _ = plan_captions(
        heard, pass_, EditSpec(captions=Captions(), loop=3), size=(320, 180), source_name="a"
    )
    assert looped is not None
    cues = captions_of(Draft(tracks=(looped,), duration_ms=6000)).cues  # type: ignore[union-attr]
    assert [cue.start for cue in cues] == [0.0, 2.0, 4.0]
    backwards, said = plan_captions(
        heard, pass_, EditSpec(captions=Captions(), reverse=True), size=(320, 180), source_name="a"
    )
    assert backwards is None and said == [
        "no captions: the video plays backwards (reverse), and so does its speech"
    ]
