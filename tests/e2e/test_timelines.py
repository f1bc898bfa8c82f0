"""`nemowatch explain FILE --timeline out.otio`: the edit for an editor, without a render."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest

from tests.e2e.harness import rule, write_config
from tests.e2e.test_picture import explain

pytestmark = pytest.mark.e2e


def test_explain_writes_the_timeline_of_the_plan_linking_the_file(tmp_path: Path, clips) -> None:
    config = write_config(tmp_path, [rule(tmp_path, instructions=["cut out silences"])])
    timeline = tmp_path / "cut.otio"

    result = explain(str(clips.three_pauses), "--config", str(config), "--timeline", str(timeline))

    assert result.returncode == 0, result.stderr
    assert f"timeline: {timeline}" in result.stdout
    read = otio.adapters.read_from_file(str(timeline))
    found = list(read.video_tracks()[0].find_clips())
    assert len(found) == 4  # three pauses cut
    assert {clip.media_reference.target_url for clip in found} == {clips.three_pauses.as_uri()}
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("no such folder/cut.otio", "cannot write the timeline"),
        ("cut.mov", "cannot tell the timeline's format from its extension"),
    ],
)
def test_a_timeline_that_cannot_be_written_is_named_in_the_error(
    tmp_path: Path, clips, name: str, said: str
) -> None:
    config = write_config(tmp_path, [rule(tmp_path, instructions=["cut out silences"])])
    timeline = tmp_path / name

    result = explain(str(clips.three_pauses), "--config", str(config), "--timeline", str(timeline))

    assert result.returncode != 0
    assert str(timeline) in result.stderr and said in result.stderr
    assert "hint:" in result.stderr
    assert not timeline.exists()
