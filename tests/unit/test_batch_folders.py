"""Folders dropped into an inbox (batches), the pure decisions only: when a folder has
stopped changing, and whether it is a batch (its files in name order) or why not (empty,
a folder inside, a link inside, a copy still going). Not wired into the daemon yet."""

from __future__ import annotations

from nemowatch.config import DEFAULT_IGNORE
from nemowatch.intake import (
    FolderEntry,
    FolderJudgement,
    FolderVerdict,
    Snapshot,
    folder_snapshot,
    judge_folder,
)


def file(name: str, size: int = 10, mtime_ns: int = 1) -> FolderEntry:
    return FolderEntry(name, "file", size, mtime_ns)


def test_a_folder_of_files_is_a_batch_in_name_order_with_its_instructions_apart() -> None:
    entries = [file("b.mp4"), file("Instructions.txt"), file("a.jpg"), file(".DS_Store")]
    assert judge_folder(entries, DEFAULT_IGNORE) == FolderJudgement(
        FolderVerdict.BATCH, ("a.jpg", "b.mp4"), "Instructions.txt"
    )


def test_an_empty_folder_is_no_batch_and_says_so() -> None:
    for entries in ([], [file("Thumbs.db")], [file("instructions.txt")]):
        judged = judge_folder(entries, DEFAULT_IGNORE)
        assert judged.verdict is FolderVerdict.EMPTY and "no file to edit" in judged.reason


def test_a_folder_holding_a_folder_is_no_batch_and_names_it() -> None:
    judged = judge_folder([file("a.mp4"), FolderEntry("extras", "folder")], DEFAULT_IGNORE)
    assert judged.verdict is FolderVerdict.NESTED and "extras/" in judged.reason


def test_a_link_inside_is_never_followed() -> None:
    judged = judge_folder([file("a.mp4"), FolderEntry("b.mp4", "other")], DEFAULT_IGNORE)
    assert judged.verdict is FolderVerdict.STRANGE and "b.mp4" in judged.reason


def test_a_folder_with_a_partial_name_inside_waits() -> None:
    judged = judge_folder([file("a.mp4"), file("b.mp4.part")], DEFAULT_IGNORE)
    assert judged.verdict is FolderVerdict.WAIT and "b.mp4.part" in judged.reason


def test_hidden_files_inside_are_not_files_of_the_batch() -> None:
    judged = judge_folder([file("a.mp4"), file(".notes.swp")], DEFAULT_IGNORE)
    assert judged.files == ("a.mp4",)


def test_the_folder_snapshot_changes_with_any_file_and_not_otherwise() -> None:
    folder = Snapshot(size=4096, mtime_ns=5, inode=7, device=1)
    entries = [file("a.mp4", 10, 1), file("b.mp4", 20, 2)]
    same = folder_snapshot(folder, entries)
    assert folder_snapshot(folder, list(entries)) == same
    assert folder_snapshot(folder, [file("a.mp4", 10, 1), file("b.mp4", 21, 2)]) != same
    assert folder_snapshot(folder, [file("a.mp4", 10, 1), file("b.mp4", 20, 9)]) != same
    assert folder_snapshot(folder, entries[:1]) != same
    renamed = Snapshot(size=4096, mtime_ns=6, inode=7, device=1)  # a rename inside
    assert folder_snapshot(renamed, entries) != same
    replaced = Snapshot(size=4096, mtime_ns=5, inode=8, device=1)  # another folder, same name
    assert folder_snapshot(replaced, entries) != same
