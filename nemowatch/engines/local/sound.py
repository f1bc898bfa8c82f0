"""The audio run's filter graph (pure): the same segments as the picture's, trimmed from the
source's audio (fading over 10 ms at each cut: a hard cut in a waveform clicks) and
joined; a chain of `atempo` (each within 0.5–2) for the speed, so the pitch stays; volume;
denoise, reverse and loop (see `effects`);
music looped, trimmed to the output, faded, at its volume, ducked under speech by a volume
envelope, mixed with the source's audio; fades; then loudness (see `loudness`), and a copy
of what is encoded measured on the way (`verify`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.effects import Effects, sound_filters
from nemowatch.engines.local.graph import (
    AUDIO_SAMPLE_RATE,
    END_TOLERANCE,
    chain,
    fade_filters,
    trim_range,
    uses_source_audio,
)
from nemowatch.engines.local.loudness import MEASURE_FILTER
from nemowatch.engines.local.timeline import (
    DUCK_ATTACK,
    DUCK_RELEASE,
    Cut,
    MusicBed,
    TimelineFacts,
    cuts_of,
    music_of,
    source_audio_of,
)
from nemowatch.errors import EngineError
from nemowatch.rules import ExportSpec

CUT_FADE = 0.01  # seconds of audio fade on each side of a cut


def atempo_chain(speed: float) -> list[str]:
    """`atempo` filters whose product is `speed`, each within 0.5–2 (where it sounds best)."""
    if math.isclose(speed, 1.0):
        return []
    factors: list[float] = []
    remaining = speed
    while remaining > 2.0 + 1e-9:
        factors.append(2.0)
        remaining /= 2.0
    while remaining < 0.5 - 1e-9:
        factors.append(0.5)
        remaining /= 0.5
    factors.append(remaining)
    return [f"atempo={format_number(factor)}" for factor in factors]


def duck_expression(under: Sequence[tuple[float, float]], duck_db: float) -> str:
    """A `volume` expression (of t, in seconds) for music ducked by `duck_db` under the
    `under` windows: down by the start of each window, back up DUCK_RELEASE after its end."""
    depth = 1 - 10 ** (duck_db / 20)
    terms = [
        f"clip(min((t-{format_number(start - DUCK_ATTACK)})/{format_number(DUCK_ATTACK)},"
        f"({format_number(end + DUCK_RELEASE)}-t)/{format_number(DUCK_RELEASE)}),0,1)"
        for start, end in under
    ]
    return f"1-{format_number(depth)}*({'+'.join(terms)})"


def music_filters(music: MusicBed, duration: float) -> list[str]:
    """The music (looped by its input): trimmed to the output, at its volume, ducked under
    speech, faded in and out."""
    filters = [
        f"aresample={AUDIO_SAMPLE_RATE}",
        "aformat=sample_fmts=fltp:channel_layouts=stereo",
        f"atrim=end={format_number(duration)}",
        "asetpts=PTS-STARTPTS",
        f"volume={format_number(music.volume)}",
    ]
    if music.duck_db is not None and music.duck_under:
        expression = duck_expression(music.duck_under, music.duck_db)
        filters.append(f"volume=eval=frame:volume='{expression}'")
    if music.fade_in > 0:
        filters.append(f"afade=t=in:st=0:d={format_number(music.fade_in)}")
    if music.fade_out > 0:
        start = format_number(max(0.0, duration - music.fade_out))
        filters.append(f"afade=t=out:st={start}:d={format_number(music.fade_out)}")
    return filters


def audio_chains(
    draft: Draft,
    *,
    music_input: str | None,
    speech_label: str | None,
    normalization: str,
    measuring: bool = False,
    verify: bool = False,
) -> list[str]:
    """The audio after the cuts: speed, volume, music, fades, loudness; to `[audio]`.

    `speech_label` names the joined source audio (None: the source's audio is not used);
    `music_input` is the music's input stream, such as "1:a:0" (None: no music).
    `measuring`: `normalization` measures (a pass of its own), and is the graph's last
    filter. `verify`: a copy of `[audio]` goes through MEASURE_FILTER, which prints its
    loudness when the run ends.
    """
    duration = draft.duration
    end = format_number(duration)
    facts = TimelineFacts.of(draft)
    final: list[str] = fade_filters("afade", draft)
    if measuring:
        # nothing after the measurement is heard
        final.append(normalization)
    else:
        if normalization:
            final.append(normalization)
        # Exactly as long as the video: atempo may leave a few samples more or less.
        final += [f"apad=whole_dur={end}", f"atrim=end={end}"]
    tail = "[audio]"
    checks: list[str] = []
    if verify and not measuring:
        final.append("asplit=2")
        tail = "[audio][heard]"
        checks = [chain("[heard]", [MEASURE_FILTER, "anullsink"], "")]
    speech: list[str] = []
    if speech_label is not None:
        source = source_audio_of(draft)
        gain = source.volume if source is not None else 1.0
        speech = atempo_chain(facts.speed)
        if not math.isclose(gain, 1.0):
            speech.append(f"volume={format_number(gain)}")
        speech += [
            f"aresample={AUDIO_SAMPLE_RATE}",
            "aformat=sample_fmts=fltp:channel_layouts=stereo",
            *sound_filters(Effects.of(draft)),  # denoise, reverse, loop
        ]
    music = music_of(draft) if music_input is not None else None
    if speech_label is not None and music is not None:
        return [
            chain(f"[{speech_label}]", speech, "[speech]"),
            chain(f"[{music_input}]", music_filters(music, duration), "[music]"),
            chain(
                "[speech][music]",
                ["amix=inputs=2:duration=longest:dropout_transition=0:normalize=0", *final],
                tail,
            ),
            *checks,
        ]
    if speech_label is not None:
        return [chain(f"[{speech_label}]", [*speech, *final], tail), *checks]
    if music is not None:
        return [
            chain(f"[{music_input}]", [*music_filters(music, duration), *final], tail),
            *checks,
        ]
    return []


def audio_cut_chains(draft: Draft, *, audio: str, out: str) -> list[str]:
    """Trim the kept segments from the audio stream `audio` (an input label such as
    "0:a:0"), each faded in and out where it was cut, and join them to `[out]`."""
    cuts = cuts_of(draft)
    if not cuts:
        raise EngineError("the draft keeps nothing of the source: there is nothing to render")
    source_end = TimelineFacts.of(draft).source_end
    if len(cuts) == 1:  # nothing to join
        (cut,) = cuts
        return [
            f"[{audio}]atrim={trim_range(cut)},asetpts=PTS-STARTPTS{_fades(cut, source_end)}[{out}]"
        ]
    labels = range(len(cuts))
    chains = [f"[{audio}]asplit={len(cuts)}" + "".join(f"[a{index}]" for index in labels)]
    chains += [
        f"[a{index}]atrim={trim_range(cut)},asetpts=PTS-STARTPTS"
        f"{_fades(cut, source_end)}[a{index}c]"
        for index, cut in zip(labels, cuts, strict=True)
    ]
    joined = "".join(f"[a{index}c]" for index in labels)
    chains.append(f"{joined}concat=n={len(cuts)}:v=0:a=1[{out}]")
    return chains


def audio_graph(
    draft: Draft,
    spec: ExportSpec,
    *,
    normalization: str = "",
    measuring: bool = False,
    verify: bool = False,
) -> str:
    """The audio run's filter graph: outputs `[audio]` (see `audio_chains`).

    Inputs: 0 is the source (when its sound is used), then the music (when there is music).
    """
    speech = uses_source_audio(draft, spec)
    chains = audio_cut_chains(draft, audio="0:a:0", out="cut") if speech else []
    music_input = f"{1 if speech else 0}:a:0" if music_of(draft) is not None else None
    chains += audio_chains(
        draft,
        music_input=music_input,
        speech_label="cut" if speech else None,
        normalization=normalization,
        measuring=measuring,
        verify=verify,
    )
    return ";".join(chains)


def measure_graph(draft: Draft, spec: ExportSpec) -> str:
    """The graph of a measuring pass: the audio, ending in MEASURE_FILTER (which prints
    its integrated loudness and true peak when the run ends)."""
    return audio_graph(draft, spec, normalization=MEASURE_FILTER, measuring=True)


def _fades(cut: Cut, source_end: float | None) -> str:
    fade = min(CUT_FADE, cut.duration / 2)
    fades: list[str] = []
    if cut.start > 0:
        fades.append(f"afade=t=in:st=0:d={format_number(fade)}")
    if source_end is None or cut.end < source_end - END_TOLERANCE:
        start = format_number(cut.duration - fade)
        fades.append(f"afade=t=out:st={start}:d={format_number(fade)}")
    return "".join(f",{item}" for item in fades)
