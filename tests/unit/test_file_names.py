"""Names nemowatch makes from a dropped file's name fit the filesystem's 255 bytes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePosixPath

from nemowatch.files import NAME_MAX, claim_path, fit_name, free_name
from nemowatch.outbox import OUTPUT_NAME_MAX, failure_report_name, output_name, temp_path


def long_name(size: int = 250, suffix: str = ".mp4") -> str:
    """A name of exactly `size` bytes of UTF-8, most of them in multibyte characters."""
    stem = ""
    while len((stem + "映像é").encode()) + len(suffix) <= size:
        stem += "映像é"
    stem += "x" * (size - len(stem.encode()) - len(suffix))
    name = stem + suffix
    assert len(name.encode()) == size
    return name


def byte_size(name: str) -> int:
    return len(name.encode())


def test_a_name_that_fits_is_left_as_it_is() -> None:
    assert fit_name("clip.mp4") == "clip.mp4"
    assert fit_name(long_name(), 250) == long_name()


def test_a_long_name_is_cut_in_bytes_at_a_character_boundary_keeping_its_extension() -> None:
    for limit in range(100, 110):  # wherever the cut falls, it never splits a character
        fitted = fit_name(long_name(), limit)
        assert byte_size(fitted) <= limit
        assert fitted.endswith("….mp4")
        assert long_name().startswith(fitted.removesuffix("….mp4"))


def test_a_claimed_name_of_a_250_byte_name_fits_and_keeps_the_job_id() -> None:
    claimed = claim_path(Path("/in"), "0123456789ab", long_name())
    assert byte_size(claimed.name) <= NAME_MAX
    assert claimed.name.startswith("0123456789ab__映像é")
    assert claimed.suffix == ".mp4"


def test_an_output_named_after_a_250_byte_name_fits_with_its_temporary_name() -> None:
    relative = output_name(
        "{stem}-edited.mp4", source_name=long_name(), rule="r", when=datetime(2026, 12, 5)
    )
    assert byte_size(relative.name) <= OUTPUT_NAME_MAX
    assert relative.suffix == ".mp4"
    temp = temp_path(Path("/out"), relative, "0123456789ab")
    assert byte_size(temp.name) + len("-publishing") <= NAME_MAX


def test_folders_an_output_template_makes_from_a_long_stem_fit_too() -> None:
    relative = output_name(
        "{stem}/{stem}.mp4", source_name=long_name(), rule="r", when=datetime(2026, 12, 5)
    )
    assert all(byte_size(part) <= NAME_MAX for part in relative.parts)
    assert relative == PurePosixPath(*relative.parts)


def test_a_free_name_for_a_long_name_that_is_taken_fits(tmp_path: Path) -> None:
    name = long_name(NAME_MAX)
    (tmp_path / name).write_bytes(b"taken")
    free = free_name(tmp_path, name)
    assert byte_size(free) <= NAME_MAX and free.endswith(" (2).mp4")
    (tmp_path / free).write_bytes(b"taken too")
    assert free_name(tmp_path, name).endswith(" (3).mp4")


def test_the_failure_report_of_a_long_name_fits_and_says_whose_it_is() -> None:
    report = failure_report_name(long_name())
    assert byte_size(report) + len(".tmp") + 1 <= NAME_MAX
    assert report.endswith(".mp4.error.json")
    assert failure_report_name("clip.mp4") == "clip.mp4.error.json"
