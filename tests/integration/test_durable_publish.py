"""A published result and an archived source survive a power cut: the file's data is on
the disk before it gets its final name, and the folders' entries after each move.

The disk cannot be unplugged in a test, so the real `os.fsync` calls are recorded (and
made), with what each was for and what the folders held at that moment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nemowatch.config import OnConflict
from nemowatch.files import move_no_replace
from nemowatch.outbox import publish


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Path, set[str]]]]:
    """(what was synced, the names in its folder at that moment), in order."""
    calls: list[tuple[Path, set[str]]] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{descriptor}"))
        folder = path if path.is_dir() else path.parent
        calls.append((path, set(os.listdir(folder))))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    yield calls


@pytest.mark.parametrize("policy", [OnConflict.RENAME, OnConflict.OVERWRITE])
def test_a_result_is_synced_before_its_final_name_and_the_outbox_after(
    tmp_path: Path, synced, policy: OnConflict
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    temp = outbox / ".clip.mp4.0123456789ab.nemowatch-part"
    temp.write_bytes(b"a verified result")

    final = publish(temp, outbox / "clip.mp4", policy)

    assert final == outbox / "clip.mp4"
    assert [path for path, _ in synced] == [temp, outbox]
    assert "clip.mp4" not in synced[0][1]  # the data first, while it has no final name
    assert "clip.mp4" in synced[1][1]  # then the outbox, holding the new name


def test_an_archive_move_syncs_the_new_folder_then_the_old_one(tmp_path: Path, synced) -> None:
    processing, archive = tmp_path / "inbox" / "processing", tmp_path / "inbox" / "done" / "day"
    processing.mkdir(parents=True)
    claimed = processing / "job__clip.mp4"
    claimed.write_bytes(b"the source")

    target = move_no_replace(claimed, archive, "clip.mp4")

    assert target == archive / "clip.mp4"
    assert [path for path, _ in synced] == [archive, processing]
    assert "clip.mp4" in synced[0][1]  # the archive holds it before it leaves processing/
    assert "job__clip.mp4" not in synced[1][1]  # and processing/ is synced without it
