"""Revisions (`<output-stem>.revise.txt`), the pure naming decisions only: which output a
revision file names, and the names of its versions (`clip-edited v2.mp4`). Not wired into
the daemon yet."""

from __future__ import annotations

import pytest

from nemowatch.intake import revision_target, version_of, versioned_stem


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("clip-edited.revise.txt", "clip-edited"),
        ("clip-edited v2.REVISE.txt", "clip-edited v2"),
        ("clip.txt", None),
        (".revise.txt", None),
        ("clip.revise.txt.part", None),
    ],
)
def test_a_revision_file_names_its_output_by_stem(name: str, target: str | None) -> None:
    assert revision_target(name) == target


def test_versions_are_numbered_from_the_base_stem() -> None:
    assert versioned_stem("clip-edited", 1) == "clip-edited"
    assert versioned_stem("clip-edited", 2) == "clip-edited v2"
    assert versioned_stem("clip-edited v2", 3) == "clip-edited v3"
    assert version_of("clip-edited v3") == ("clip-edited", 3)
    assert version_of("clip-edited") == ("clip-edited", 1)
    assert version_of("take v0") == ("take v0", 1)  # v0 is part of a name, not a version
