"""Output naming: templates, and that no template can leave the outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePosixPath

import pytest

from nemowatch.outbox import output_name, stray_temps, temp_path

WHEN = datetime(2026, 11, 24, 12, 0)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{stem}.mp4", "clip.mp4"),
        ("{stem}-reel.mp4", "clip-reel.mp4"),
        ("{rule}/{date}/{stem}.mp4", "reels/2026-11-24/clip.mp4"),
        ("{stem}-from-{ext}.mp4", "clip-from-MOV.mp4"),
    ],
)
def test_templates_fill_their_fields(template: str, expected: str) -> None:
    assert output_name(template, source_name="clip.MOV", rule="reels", when=WHEN) == (
        PurePosixPath(expected)
    )


@pytest.mark.parametrize("template", ["../{stem}.mp4", "/tmp/{stem}.mp4", "a/../../{stem}.mp4"])
def test_templates_cannot_leave_the_outbox(template: str) -> None:
    with pytest.raises(ValueError, match="outside the outbox"):
        output_name(template, source_name="clip.mp4", rule="r", when=WHEN)


def test_unknown_template_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        output_name("{stem.__class__}.mp4", source_name="clip.mp4", rule="r", when=WHEN)


def test_a_dotted_source_name_does_not_make_a_hidden_output() -> None:
    name = output_name("{stem}.mp4", source_name=".clip.mp4", rule="r", when=WHEN)
    assert not name.name.startswith(".")


def test_temporary_results_are_hidden_and_found_when_stray(tmp_path: Path) -> None:
    temp = temp_path(tmp_path, PurePosixPath("clip.mp4"), "job1")
    assert temp.name.startswith(".")
    temp.write_bytes(b"partial")
    other = temp_path(tmp_path, PurePosixPath("b.mp4"), "job2")
    other.write_bytes(b"partial")
    assert stray_temps([tmp_path], active_job_ids={"job2"}) == [temp]


def test_an_adopted_jobs_and_an_overwrites_temporary_names_are_known_as_the_jobs(
    tmp_path: Path,
) -> None:
    # `temp_owner`: an adopted job's lease generation; `publish`'s second name (overwrite)
    adopted = temp_path(tmp_path, PurePosixPath("a.mp4"), "job1~2")
    staged = adopted.with_name(
        adopted.name.replace(".nemowatch-part", "-publishing.nemowatch-part")
    )
    others = temp_path(tmp_path, PurePosixPath("b.mp4"), "job2~1")
    for path in (adopted, staged, others):
        path.write_bytes(b"partial")
    mine = {"job1"}
    found = stray_temps([tmp_path], active_job_ids=set(), ours=mine.__contains__)
    assert sorted(found) == sorted([adopted, staged])
