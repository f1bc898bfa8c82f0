"""Loudness, in two passes. The first runs the audio graph through loudnorm, which prints
what it measured (`loudnorm_measure_filter`); the second applies the measurement with
`linear=true`.

loudnorm would silently switch to its dynamic mode (a compressor) when a linear gain
cannot reach the target without peaks above the limit, or the loudness range is too
wide; `normalization_plan` sees that coming from the measurement and applies a plain
gain and a true-peak-safe limiter instead (and should loudnorm still go dynamic, only the
audio is rendered again).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Literal

from nemowatch.engines.local.analysis import format_number

LOUDNESS_TARGET = -14.0  # LUFS, integrated


TRUE_PEAK_LIMIT = -1.0  # dBTP: what the output promises


# loudnorm aims this far below the limit: AAC and Opus decode with peaks a few tenths of
# a dB above the signal they were given.
TRUE_PEAK_TARGET = TRUE_PEAK_LIMIT - 0.5


LOUDNESS_RANGE_TARGET = 11.0  # LU


TRUE_PEAK_SAMPLE_RATE = 192000  # Hz: loudnorm measures true peaks as the peaks at this rate


# The limiter of the fallback sees sample peaks, not true peaks: it stops another 0.5 dB
# lower, which covers the overshoot between samples of ordinary material.
LIMITER_CEILING = TRUE_PEAK_TARGET - 0.5


SILENT_LOUDNESS = -70.0  # LUFS: loudnorm's floor; quieter audio is left alone


LIMITER_CORRECTION = 6.0  # dB: the most a check may add to the limiter's gain


NormalizationMode = Literal["linear", "limiter", "none"]


@dataclass(frozen=True)
class LoudnessMeasurement:
    """What loudnorm measured in the first pass."""

    input_i: float  # integrated loudness, LUFS
    input_tp: float  # true peak, dBTP
    input_lra: float  # loudness range, LU
    input_thresh: float  # gating threshold, LUFS
    target_offset: float  # dB


@dataclass(frozen=True)
class Normalization:
    """How the second pass reaches the loudness target, decided from the measurement."""

    mode: NormalizationMode
    filter: str  # filters to append to the audio graph ("" for none)
    reason: str  # in words, for logs and the render's record
    gain_db: float = 0.0


def loudnorm_measure_filter() -> str:
    """The first pass's loudnorm: measure, print JSON.

    loudnorm measures its input alike in every mode. Without a measurement it would run
    its dynamic mode, compressing (for nothing: the output is thrown away) and counting
    its last 3 s twice; given a neutral one with `linear=true` it passes the sound through
    at 0 dB and measures each sample once, at a quarter of the cost. The sound is taken to
    192 kHz first, as the dynamic mode would: its peaks there are the true peaks.
    """
    target = format_number(LOUDNESS_TARGET)
    neutral = f"measured_I={target}:measured_TP={target}:measured_LRA=1"
    neutral += f":measured_thresh={format_number(LOUDNESS_TARGET - 10)}"
    return (
        f"aresample={TRUE_PEAK_SAMPLE_RATE},"
        f"loudnorm=I={target}:TP={format_number(TRUE_PEAK_TARGET)}"
        f":LRA={format_number(LOUDNESS_RANGE_TARGET)}:{neutral}:linear=true:print_format=json"
    )


_LOUDNORM_JSON = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", flags=re.DOTALL)


def parse_loudnorm(stderr: str) -> dict[str, str] | None:
    """The last JSON block loudnorm printed in `stderr` (values as written), or None."""
    blocks = _LOUDNORM_JSON.findall(stderr)
    if not blocks:
        return None
    try:
        parsed = json.loads(blocks[-1])
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {str(key): str(value) for key, value in parsed.items()}


def parse_measurement(stderr: str) -> LoudnessMeasurement | None:
    """The first pass's measurement, or None when loudnorm printed none."""
    values = parse_loudnorm(stderr)
    if values is None:
        return None
    try:
        return LoudnessMeasurement(
            input_i=float(values["input_i"]),
            input_tp=float(values["input_tp"]),
            input_lra=float(values["input_lra"]),
            input_thresh=float(values["input_thresh"]),
            target_offset=float(values["target_offset"]),
        )
    except (KeyError, ValueError):
        return None


def normalization_plan(measurement: LoudnessMeasurement | None) -> Normalization:
    """How to reach LOUDNESS_TARGET from what the first pass measured.

    loudnorm keeps its linear mode (one gain for the whole file) only when the gain would
    leave the true peak at or under its target and the loudness range fits the range
    target (and the measurement is complete: a range of exactly 0, as of a steady tone,
    counts as missing). Otherwise it would compress dynamically, changing the sound; we
    apply the gain ourselves and let a limiter hold the peaks instead.
    """
    if measurement is None:
        return Normalization("none", "", "loudness could not be measured; left as it is")
    if not math.isfinite(measurement.input_i) or measurement.input_i <= SILENT_LOUDNESS:
        return Normalization("none", "", "the audio is silent; left as it is")
    gain = LOUDNESS_TARGET - measurement.input_i
    peak_after = measurement.input_tp + gain
    if measurement.input_lra == 0 or measurement.input_thresh <= SILENT_LOUDNESS:
        return limiter_normalization(gain, "its loudness range of 0 LU reads as unmeasured")
    if not math.isfinite(peak_after) or peak_after > TRUE_PEAK_TARGET:
        return limiter_normalization(gain, f"peaks would reach {peak_after:.1f} dBTP")
    if measurement.input_lra > LOUDNESS_RANGE_TARGET:
        return limiter_normalization(
            gain, f"the loudness range of {measurement.input_lra:g} LU is over the target"
        )
    return Normalization(
        "linear",
        (
            f"loudnorm=I={format_number(LOUDNESS_TARGET)}"
            f":TP={format_number(TRUE_PEAK_TARGET)}"
            f":LRA={format_number(LOUDNESS_RANGE_TARGET)}"
            f":measured_I={format_number(measurement.input_i)}"
            f":measured_TP={format_number(measurement.input_tp)}"
            f":measured_LRA={format_number(measurement.input_lra)}"
            f":measured_thresh={format_number(measurement.input_thresh)}"
            f":offset={format_number(measurement.target_offset)}"
            ":linear=true:print_format=json"
        ),
        f"loudnorm, linear: {gain:+.2f} dB",
        gain_db=gain,
    )


def limiter_normalization(gain: float, why: str) -> Normalization:
    """A plain gain of `gain` dB with a limiter holding the peaks (loudnorm would have gone
    dynamic, `why`)."""
    return Normalization(
        "limiter",
        limiter_filter(gain),
        f"gain {gain:+.2f} dB and a limiter: loudnorm would compress dynamically ({why})",
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


def corrected_limiter(plan: Normalization, after: LoudnessMeasurement | None) -> Normalization:
    """`plan` (a gain and a limiter) with its gain corrected by what a check measured
    after it: where the limiter held many peaks it also lowered the loudness. At most
    LIMITER_CORRECTION dB either way; nothing when the result is within 0.2 LU."""
    if after is None or not math.isfinite(after.input_i):
        return plan
    error = LOUDNESS_TARGET - after.input_i
    if abs(error) < 0.2:
        return plan
    correction = max(-LIMITER_CORRECTION, min(LIMITER_CORRECTION, error))
    gain = plan.gain_db + correction
    return Normalization(
        "limiter",
        limiter_filter(gain),
        f"{plan.reason}; {correction:+.2f} dB more, for what the limiter took",
        gain_db=gain,
    )
