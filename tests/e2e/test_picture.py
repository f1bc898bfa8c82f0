"""`nemowatch explain FILE --picture timeline.svg`: the timeline drawn to scale."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.e2e.harness import rule, write_config

pytestmark = pytest.mark.e2e

SVG = "{http://www.w3.org/2000/svg}"
MARGIN = 0.2  # seconds the silence cut keeps of each pause, either side (its default)


def explain(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", "explain", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def rects(root: ElementTree.Element, kind: str) -> list[ElementTree.Element]:
    return [shape for shape in root.iter(f"{SVG}rect") if shape.get("class") == kind]


def seconds(shape: ElementTree.Element) -> tuple[float, float]:
    return float(shape.get("data-start", "nan")), float(shape.get("data-end", "nan"))


def test_the_picture_draws_a_cut_where_each_of_three_pauses_is(tmp_path: Path, clips) -> None:
    config = write_config(
        tmp_path,
        [rule(tmp_path, instructions=["cut out silences, add background music",
                                      'add the title "Three" for 2 seconds'])],
    )  # fmt: skip
    picture = tmp_path / "timeline.svg"
    result = explain(str(clips.three_pauses), "--config", str(config), "--picture", str(picture))
    assert result.returncode == 0, result.stderr
    assert f"picture: {picture}" in result.stdout
    root = ElementTree.parse(picture).getroot()
    pauses = clips.layout("three_pauses").silences
    cuts = sorted(rects(root, "cut"), key=lambda shape: float(shape.get("x", "0")))
    assert len(cuts) == len(pauses) == 3
    # the source's row spans the kept and cut stretches: 8 s across its width
    source_row = rects(root, "kept") + cuts
    left = min(float(shape.get("x", "0")) for shape in source_row)
    right = max(float(shape.get("x", "0")) + float(shape.get("width", "0")) for shape in source_row)
    per_second = (right - left) / clips.layout("three_pauses").seconds
    for shape, (pause_start, pause_end) in zip(cuts, pauses, strict=True):
        start, end = seconds(shape)
        assert start == pytest.approx(pause_start + MARGIN, abs=0.06)
        assert end == pytest.approx(pause_end - MARGIN, abs=0.06)
        assert float(shape.get("x", "0")) == pytest.approx(left + start * per_second, abs=1.0)
        assert float(shape.get("width", "0")) == pytest.approx((end - start) * per_second, abs=1.0)
    assert len(rects(root, "kept")) == 4 and len(rects(root, "piece")) == 4
    assert [seconds(shape) for shape in rects(root, "title")] == [(0.0, 2.0)]
    assert rects(root, "music") and root.find(f"{SVG}polygon[@class='waveform']") is not None
    assert not list(root.iter(f"{SVG}script"))  # plain SVG, fit to inline in a page


def test_a_picture_path_that_cannot_be_written_is_named_in_the_error(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, instructions=["cut out silences"])])
    picture = tmp_path / "no such folder" / "timeline.svg"
    result = explain(str(clips.three_pauses), "--config", str(config), "--picture", str(picture))
    assert result.returncode != 0
    assert f"cannot write the picture to {picture}" in result.stderr
    assert "hint:" in result.stderr
    assert not picture.parent.exists()
