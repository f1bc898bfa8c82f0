"""Loudness, measured once where it can be: ITU-R BS.1770 (EBU R 128) integrated loudness
and true peak, then one gain for the whole sound (and a limiter where the peaks need one).

The analysis pass already decodes the source's sound (for its silences): it also measures
it as the output will hear it (48 kHz stereo, see `analysis.level_chains`), every 100 ms:
the K-weighted energy of those 100 ms and their true peak. The edited sound is the kept
stretches joined, so its steps are theirs, in the order they play: its 400 ms blocks
(overlapping by 75 %, as BS.1770 has them) are each four steps in a row, across the
joins too, and its integrated loudness is the gated mean of those blocks
(`edited_loudness`); its true peak, the highest of its steps'. No pass of its own. The
plan keeps that prediction in the draft, beside the cuts it is for (`with_prediction`).

The prediction is used where the sound of the output is the source's, cut and joined, at
a known gain (`predicted`). It is not where the edit mixes in music or changes the sound
in ways a gain does not describe (speed, denoise, reverse, loop, long fades), where the
cuts are not those the prediction is for, or where no analysis predicted it: the render
then measures its audio graph in a pass of its own (`MEASURE_FILTER`), once.

The encode measures what it encodes on the way (`MEASURE_FILTER` on a copy of the sound),
unless it applies one gain to a graph its own pass measured (the gain is then exact):
where that misses the target by LOUDNESS_TOLERANCE or more (a limiter that took more
than the peaks, a prediction off at the joins), the sound alone is encoded again with
the gain corrected (`corrected`).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from nemowatch.engines.base import Draft, JSONObject
from nemowatch.engines.local.analysis import Level, format_number
from nemowatch.engines.local.effects import Effects, sound_filters
from nemowatch.engines.local.timeline import TimelineFacts, cuts_of, music_of, source_audio_of
from nemowatch.rules import ExportSpec

LOUDNESS_TARGET = -14.0  # LUFS, integrated


TRUE_PEAK_LIMIT = -1.0  # dBTP: what the output promises


# One gain aims this far below the limit: AAC and Opus decode with peaks a few tenths of
# a dB above the signal they were given.
TRUE_PEAK_TARGET = TRUE_PEAK_LIMIT - 0.5


# The limiter sees sample peaks, not true peaks: it stops another 0.5 dB lower, which
# covers the overshoot between samples of ordinary material.
LIMITER_CEILING = TRUE_PEAK_TARGET - 0.5


SILENT_LOUDNESS = -70.0  # LUFS: BS.1770's absolute gate; quieter audio is left alone


RELATIVE_GATE = 10.0  # LU below the ungated mean: BS.1770's relative gate


LOUDNESS_TOLERANCE = 0.5  # LU: an encode this far off the target is encoded again


CORRECTION_LIMIT = 6.0  # dB: the most a second encode adds to or takes from the gain


# Fades change the loudness the source's measure predicts: up to this share of the
# output faded, the change is under 0.2 LU; longer fades are measured.
FADED_SHARE = 0.05


# The measure of a whole graph's sound: ebur128 prints its summary (integrated loudness,
# true peak) when the run ends; `framelog=verbose` keeps its 10 lines a second out of the
# log at the level the summary is printed at.
MEASURE_FILTER = "ebur128=peak=true:framelog=verbose"


PREDICTION_KEY = "loudness"  # the draft's `m` key of the analysis's prediction


NormalizationMode = Literal["linear", "limiter", "none"]


@dataclass(frozen=True)
class Loudness:
    """A sound's integrated loudness and true peak (-inf: silent)."""

    integrated: float  # LUFS
    true_peak: float  # dBTP


@dataclass(frozen=True)
class Normalization:
    """How the encode reaches the loudness target."""

    mode: NormalizationMode  # linear: one gain; limiter: one gain and a limiter
    filter: str  # filters to append to the audio graph ("" for none)
    reason: str  # in words, for logs and the render's record
    gain_db: float = 0.0


BLOCK_STEPS = 4  # 100 ms steps in a 400 ms block


def gated_loudness(blocks: Iterable[float]) -> float:
    """BS.1770 integrated loudness of 400 ms blocks of these loudnesses (LUFS): the mean
    energy of the blocks above the absolute gate (-70 LUFS), then of those less than
    RELATIVE_GATE LU under that mean. -inf when no block is above the absolute gate."""
    audible = [value for value in blocks if value > SILENT_LOUDNESS]
    if not audible:
        return -math.inf
    ungated = _mean_loudness(audible)
    gated = [value for value in audible if value > ungated - RELATIVE_GATE]
    return _mean_loudness(gated)


def edited_loudness(levels: Sequence[Level], stretches: Iterable[tuple[float, float]]) -> Loudness:
    """The loudness of the stretches of the source (start, end, in seconds) joined in this
    order, from the analysis's `levels`: the 100 ms steps whose middle is inside each
    stretch, joined, their 400 ms blocks gated (see the module's docstring)."""
    ordered = sorted(levels, key=lambda level: level.time)
    times = [level.time + Level.STEP / 2 for level in ordered]
    joined: list[Level] = []
    for start, end in stretches:
        joined += ordered[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
    energies = [_energy(level.loudness) for level in joined]
    blocks = [
        _loudness(sum(energies[index - BLOCK_STEPS : index]) / BLOCK_STEPS)
        for index in range(BLOCK_STEPS, len(energies) + 1)
    ]
    peak = max((level.peak for level in joined), default=-math.inf)
    return Loudness(gated_loudness(blocks), peak)


def with_prediction(draft: Draft, levels: Sequence[Level]) -> Draft:
    """`draft` with the loudness its cuts of the source will have, from the analysis's
    `levels` (none: the draft as it is)."""
    if not levels:
        return draft
    cuts = [(cut.start, cut.end) for cut in cuts_of(draft)]
    loudness = edited_loudness(levels, cuts)
    prediction: JSONObject = {
        "integrated": _finite_or_none(loudness.integrated),
        "true_peak": _finite_or_none(loudness.true_peak),
        "cuts": _fingerprint(cuts),
    }
    return replace(draft, metadata={**draft.metadata, PREDICTION_KEY: prediction})


def predicted(draft: Draft, spec: ExportSpec) -> Loudness | None:
    """The loudness of `draft`'s sound as the analysis predicted it (at the source's
    volume), or None where the source's measure does not tell it: see the module's
    docstring for the rule."""
    prediction = draft.metadata.get(PREDICTION_KEY)
    if not isinstance(prediction, dict):
        return None
    if prediction.get("cuts") != _fingerprint([(cut.start, cut.end) for cut in cuts_of(draft)]):
        return None
    facts = TimelineFacts.of(draft)
    source = source_audio_of(draft)
    if source is None or spec.format == "gif" or music_of(draft) is not None:
        return None
    if not math.isclose(facts.speed, 1.0) or sound_filters(Effects.of(draft)):
        return None
    faded = (facts.fade_in or 0.0) + (facts.fade_out or 0.0)
    if faded > FADED_SHARE * draft.duration:
        return None
    integrated, peak = prediction.get("integrated"), prediction.get("true_peak")
    gain = 20 * math.log10(source.volume) if source.volume > 0 else -math.inf
    return Loudness(_number(integrated) + gain, _number(peak) + gain)


def normalization_plan(loudness: Loudness | None) -> Normalization:
    """How to reach LOUDNESS_TARGET from the sound's `loudness`: one gain, where it leaves
    the true peak at or under TRUE_PEAK_TARGET; otherwise the gain and a limiter holding
    the peaks. Nothing for a silent sound, or one that could not be measured."""
    if loudness is None:
        return Normalization("none", "", "loudness could not be measured; left as it is")
    if not math.isfinite(loudness.integrated) or loudness.integrated <= SILENT_LOUDNESS:
        return Normalization("none", "", "the audio is silent; left as it is")
    gain = LOUDNESS_TARGET - loudness.integrated
    peak_after = loudness.true_peak + gain
    if not math.isfinite(peak_after) or peak_after > TRUE_PEAK_TARGET:
        return limiter_normalization(gain, f"peaks would reach {peak_after:.1f} dBTP")
    return linear_normalization(gain, f"peaks reach {peak_after:.1f} dBTP")


def linear_normalization(gain: float, why: str) -> Normalization:
    """One gain of `gain` dB for the whole sound (`why`: in words, where its peaks go)."""
    return Normalization(
        "linear",
        f"volume={format_number(round(gain, 2))}dB",
        f"gain {gain:+.2f} dB ({why})",
        gain_db=gain,
    )


def limiter_normalization(gain: float, why: str) -> Normalization:
    """A gain of `gain` dB with a limiter holding the peaks (a gain alone would not,
    `why`)."""
    return Normalization(
        "limiter",
        limiter_filter(gain),
        f"gain {gain:+.2f} dB and a limiter ({why})",
        gain_db=gain,
    )


def limiter_filter(gain: float) -> str:
    """`gain` dB, then a limiter at LIMITER_CEILING; its own level correction is off: it
    only catches peaks."""
    ceiling = 10 ** (LIMITER_CEILING / 20)
    return (
        f"volume={format_number(round(gain, 2))}dB,"
        f"alimiter=limit={format_number(round(ceiling, 4))}:attack=5:release=50"
        ":level=0:latency=1"
    )


def corrected(plan: Normalization, after: Loudness | None) -> Normalization:
    """`plan` with its gain corrected by what the encode measured after it, or `plan`
    itself where that is within LOUDNESS_TOLERANCE of the target (and, for one gain,
    its peaks under the limit). At most CORRECTION_LIMIT dB either way."""
    if plan.mode == "none" or after is None or not math.isfinite(after.integrated):
        return plan
    error = LOUDNESS_TARGET - after.integrated
    loud_peaks = plan.mode == "linear" and after.true_peak > TRUE_PEAK_LIMIT - 0.25
    if abs(error) < LOUDNESS_TOLERANCE and not loud_peaks:
        return plan
    correction = max(-CORRECTION_LIMIT, min(CORRECTION_LIMIT, error))
    gain = plan.gain_db + correction
    why = f"{correction:+.2f} dB more: the encode measured {after.integrated:.1f} LUFS"
    if plan.mode == "linear" and after.true_peak + correction <= TRUE_PEAK_TARGET:
        return replace(linear_normalization(gain, why), reason=f"{plan.reason}; {why}")
    return replace(limiter_normalization(gain, why), reason=f"{plan.reason}; {why}")


_INTEGRATED = re.compile(r"\bI:\s+(-?[\d.]+|-inf|nan) LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf|nan) dBFS")


def parse_summary(stderr: str) -> Loudness | None:
    """The loudness `ebur128` printed in its summary at the end of `stderr` (None: no
    summary)."""
    position = stderr.rfind("Summary:")
    if position < 0:
        return None
    summary = stderr[position:]
    integrated, peak = _INTEGRATED.search(summary), _TRUE_PEAK.search(summary)
    if integrated is None:
        return None
    return Loudness(_dB(integrated.group(1)), _dB(peak.group(1)) if peak is not None else -math.inf)


def _mean_loudness(blocks: Sequence[float]) -> float:
    return _loudness(sum(_energy(value) for value in blocks) / len(blocks))


def _energy(loudness: float) -> float:
    """The K-weighted mean square (channels summed) of a loudness (BS.1770:
    L = -0.691 + 10 log10(energy))."""
    return 10 ** ((loudness + 0.691) / 10) if math.isfinite(loudness) else 0.0


def _loudness(energy: float) -> float:
    return -0.691 + 10 * math.log10(energy) if energy > 0 else -math.inf


def _fingerprint(stretches: Sequence[tuple[float, float]]) -> str:
    """A short name of the cuts a prediction is for (times to the millisecond)."""
    text = ";".join(f"{start:.3f}-{end:.3f}" for start, end in stretches)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite_or_none(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None  # JSON has no infinities


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else -math.inf


def _dB(text: str) -> float:
    value = float(text)
    return -math.inf if math.isnan(value) else value
