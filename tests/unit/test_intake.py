"""Intake: which candidates are ignored, when a file has settled, claiming and moving."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from nemowatch.config import Rule
from nemowatch.errors import MediaError
from nemowatch.files import claim, free_name, link_no_replace, linked_in, move_no_replace, snapshot
from nemowatch.intake import SettleTracker, Snapshot, Verdict, classify

INBOX = Path("/srv/inbox")
REELS = Rule(name="reels", inbox=INBOX, outbox=Path("/srv/out"), match=("*.mp4", "*.mov"))
DEEP = Rule(name="deep", inbox=Path("/srv/deep"), outbox=Path("/srv/out"), recursive=True)
RULES = (REELS, DEEP)


# --- classify --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "verdict"),
    [
        ("/srv/inbox/clip.mp4", Verdict.TAKE),
        ("/srv/inbox/CLIP.MP4", Verdict.TAKE),
        ("/srv/inbox/notes.rtf", Verdict.NO_RULE),
        ("/srv/inbox/notes.txt", Verdict.SIDECAR),  # waits for a video notes.*
        ("/srv/inbox/.clip.mp4", Verdict.IGNORED),
        ("/srv/inbox/.DS_Store", Verdict.IGNORED),
        ("/srv/inbox/Thumbs.db", Verdict.IGNORED),
        ("/srv/inbox/thumbs.DB", Verdict.IGNORED),
        ("/srv/inbox/clip.mp4.part", Verdict.IGNORED),
        ("/srv/inbox/clip.mp4.crdownload", Verdict.IGNORED),
        ("/srv/inbox/~$clip.mp4", Verdict.IGNORED),
        ("/srv/inbox/processing/job1__clip.mp4", Verdict.IGNORED),
        ("/srv/inbox/done/2024-05-01/clip.mp4", Verdict.IGNORED),
        ("/srv/inbox/failed/clip.mp4", Verdict.IGNORED),
        ("/srv/inbox/sub/clip.mp4", Verdict.IGNORED),  # not recursive
        ("/srv/inbox", Verdict.IGNORED),
        ("/srv/elsewhere/clip.mp4", Verdict.IGNORED),
        ("/srv/deep/a/b/clip.mkv", Verdict.TAKE),  # recursive
        ("/srv/deep/a/.cache/clip.mkv", Verdict.IGNORED),
        ("/srv/deep/done/clip.mkv", Verdict.IGNORED),
        ("/srv/deep/a/done/clip.mkv", Verdict.TAKE),  # only the inbox's own work folders
        ("/srv/deep/a/notes.rtf", Verdict.NO_RULE),
        ("/srv/deep/a/clip.yaml", Verdict.SIDECAR),
    ],
)
def test_classify(path: str, verdict: Verdict) -> None:
    assert classify(Path(path), RULES)[0] is verdict


def test_a_file_named_like_a_work_folder_is_not_a_work_folder() -> None:
    rule = REELS.model_copy(update={"match": ("*",)})
    assert classify(INBOX / "done", [rule]) == (Verdict.TAKE, rule)


def test_classify_gives_the_rule_only_when_taking() -> None:
    assert classify(INBOX / "clip.mp4", RULES) == (Verdict.TAKE, REELS)
    assert classify(INBOX / "notes.rtf", RULES) == (Verdict.NO_RULE, None)


def test_first_matching_rule_on_a_shared_inbox_wins() -> None:
    movies = Rule(name="movies", inbox=INBOX, outbox=Path("/o"), match=("*.mov",))
    everything = Rule(name="all", inbox=INBOX, outbox=Path("/o"), match=("*.mov", "*.mp4"))
    assert classify(INBOX / "a.mov", [movies, everything]) == (Verdict.TAKE, movies)
    assert classify(INBOX / "a.mp4", [movies, everything]) == (Verdict.TAKE, everything)


def test_a_rules_extra_ignore_patterns_apply() -> None:
    rule = REELS.model_copy(update={"ignore": ("draft-*",)})
    assert classify(INBOX / "Draft-1.mp4", [rule]) == (Verdict.IGNORED, None)


def test_an_inbox_inside_a_dot_folder_still_works() -> None:
    rule = REELS.model_copy(update={"inbox": Path("/home/me/.local/inbox")})
    assert classify(Path("/home/me/.local/inbox/clip.mp4"), [rule]) == (Verdict.TAKE, rule)


# --- SettleTracker ---------------------------------------------------------------------------

A = Path("/srv/inbox/a.mp4")


def snap(size: int = 10, mtime_ns: int = 1, inode: int = 7) -> Snapshot:
    return Snapshot(size=size, mtime_ns=mtime_ns, inode=inode, device=1)


def run_ticks(
    tracker: SettleTracker,
    look: Callable[[float], Snapshot | None],
    start: float,
    end: float,
    step: float = 0.25,
) -> list[Path]:
    """Drive the tracker like the daemon does; `look(now)` returns the file's snapshot."""
    now = start
    while now <= end:
        for path in tracker.due(now):
            tracker.observe(path, look(now), now, 2.0)
        settled = tracker.settled(now)
        if settled:
            return settled
        now += step
    return []


def test_a_stable_file_settles_after_its_window() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(), 0.0, 2.0)
    assert tracker.settled(1.0) == []
    assert run_ticks(tracker, lambda now: snap(), 0.25, 1.75) == []
    assert run_ticks(tracker, lambda now: snap(), 2.0, 2.0) == [A]
    assert len(tracker) == 0


def test_a_growing_file_never_settles() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(size=0), 0.0, 2.0)
    assert run_ticks(tracker, lambda now: snap(size=int(now * 1000)), 0.25, 60.0) == []
    assert A in tracker


def test_a_file_that_stops_growing_settles_a_window_later() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(size=0), 0.0, 2.0)
    settled_at: list[float] = []

    def look(now: float) -> Snapshot:
        settled_at.append(now)
        return snap(size=int(min(now, 5.0) * 1000))

    assert run_ticks(tracker, look, 0.25, 10.0) == [A]
    assert 7.0 <= settled_at[-1] <= 8.0


def test_one_look_is_never_enough_even_with_no_window() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(), 0.0, 0.0)
    assert tracker.settled(0.0) == []
    assert tracker.due(0.0) == [A]
    tracker.observe(A, snap(), 0.0, 0.0)
    assert tracker.settled(0.0) == [A]


def test_a_zero_byte_file_settles_like_any_other() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(size=0), 0.0, 2.0)
    tracker.observe(A, snap(size=0), 2.0, 2.0)
    assert tracker.settled(2.0) == [A]


def test_close_write_needs_one_confirming_look() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(), 0.0, 60.0)
    tracker.hint_closed(A, 0.0)
    assert tracker.settled(0.0) == []  # the hint alone is not enough
    assert tracker.due(0.0) == [A]
    tracker.observe(A, snap(), 0.25, 60.0)
    assert tracker.settled(0.25) == [A]


def test_close_write_then_a_change_falls_back_to_the_window() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(size=10), 0.0, 60.0)
    tracker.hint_closed(A, 0.0)
    tracker.observe(A, snap(size=20), 0.25, 60.0)  # written again after the close
    tracker.observe(A, snap(size=20), 0.5, 60.0)
    assert tracker.settled(0.5) == []


def test_close_hint_for_an_untracked_path_is_ignored() -> None:
    tracker = SettleTracker()
    tracker.hint_closed(A, 0.0)
    assert len(tracker) == 0


def test_a_replaced_file_restarts_its_window() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(inode=7), 0.0, 2.0)
    tracker.observe(A, snap(inode=8), 1.9, 2.0)  # same size and time, new inode
    tracker.observe(A, snap(inode=8), 2.0, 2.0)
    assert tracker.settled(2.0) == []
    tracker.observe(A, snap(inode=8), 3.9, 2.0)
    assert tracker.settled(3.9) == [A]


def test_a_vanished_file_is_forgotten() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(), 0.0, 2.0)
    tracker.observe(A, None, 1.0, 2.0)
    assert len(tracker) == 0
    assert tracker.due(10.0) == []


def test_forget() -> None:
    tracker = SettleTracker()
    tracker.observe(A, snap(), 0.0, 2.0)
    tracker.forget(A)
    tracker.forget(A)
    assert A not in tracker


def test_a_long_window_is_checked_in_the_middle() -> None:
    tracker = SettleTracker(recheck_seconds=1.0)
    tracker.observe(A, snap(), 0.0, 600.0)
    assert tracker.due(0.5) == []
    assert tracker.due(1.0) == [A]


def test_a_stale_confirmation_is_looked_at_again() -> None:
    tracker = SettleTracker(recheck_seconds=1.0)
    tracker.observe(A, snap(), 0.0, 2.0)
    tracker.observe(A, snap(), 2.0, 2.0)
    assert tracker.settled(30.0) == []  # the daemon fell behind: look again first
    assert tracker.due(30.0) == [A]
    tracker.observe(A, snap(), 30.0, 2.0)
    assert tracker.settled(30.0) == [A]


def test_settled_files_beyond_the_limit_stay_settled_until_collected() -> None:
    tracker = SettleTracker(recheck_seconds=1.0)
    paths = [Path(f"/srv/inbox/{name}.mp4") for name in "abc"]
    for path in paths:
        tracker.observe(path, snap(), 0.0, 2.0)
        tracker.observe(path, snap(), 2.0, 2.0)
    assert tracker.settled_snapshots(2.0, limit=1) == [(paths[0], snap())]  # oldest first
    assert tracker.settled_snapshots(2.0, limit=0) == []
    assert len(tracker) == 2
    # no room for a while: they are looked at every recheck interval, and stay settled
    for now in (3.0, 4.0, 5.0):
        assert tracker.due(now) == paths[1:]
        for path in tracker.due(now):
            tracker.observe(path, snap(), now, 2.0)
    assert tracker.settled(5.0) == paths[1:]
    assert len(tracker) == 0


# --- snapshot --------------------------------------------------------------------------------


def test_snapshot_of_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(b"12345")
    status = os.stat(path)
    assert snapshot(path) == Snapshot(5, status.st_mtime_ns, status.st_ino, status.st_dev)


def test_snapshot_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert snapshot(tmp_path / "gone.mp4") is None
    assert snapshot(tmp_path / "not-a-folder" / "gone.mp4") is None


def test_symlinks_folders_and_fifos_are_not_files(tmp_path: Path) -> None:
    target = tmp_path / "real.mp4"
    target.write_bytes(b"x")
    (tmp_path / "link.mp4").symlink_to(target)
    (tmp_path / "folder.mp4").mkdir()
    os.mkfifo(tmp_path / "pipe.mp4")
    assert snapshot(tmp_path / "link.mp4") is None
    assert snapshot(tmp_path / "folder.mp4") is None
    assert snapshot(tmp_path / "pipe.mp4") is None


# --- claim -----------------------------------------------------------------------------------


def test_claim_renames_into_processing(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    claimed = claim(source, tmp_path, "job1")
    assert claimed == tmp_path / "processing" / "job1__clip.mp4"
    assert claimed.read_bytes() == b"video"
    assert not source.exists()


def test_claim_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    source = tmp_path / "sub" / "clip.mp4"
    source.write_bytes(b"video")
    assert claim(source, tmp_path, "job1") == tmp_path / "processing" / "job1__clip.mp4"


def test_claim_of_a_vanished_file_returns_none(tmp_path: Path) -> None:
    assert claim(tmp_path / "clip.mp4", tmp_path, "job1") is None


def test_only_one_of_two_claims_wins(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    assert claim(source, tmp_path, "job1") is not None
    assert claim(source, tmp_path, "job2") is None
    assert os.listdir(tmp_path / "processing") == ["job1__clip.mp4"]


def test_claim_never_overwrites(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"new")
    (tmp_path / "processing").mkdir()
    existing = tmp_path / "processing" / "job1__clip.mp4"
    existing.write_bytes(b"old")
    with pytest.raises(ValueError, match="job1"):
        claim(source, tmp_path, "job1")
    assert existing.read_bytes() == b"old"
    assert source.read_bytes() == b"new"


def test_claim_leaves_symlinks_alone(tmp_path: Path) -> None:
    target = tmp_path / "real.mp4"
    target.write_bytes(b"x")
    link = tmp_path / "link.mp4"
    link.symlink_to(target)
    assert claim(link, tmp_path, "job1") is None
    assert link.is_symlink()


def test_claim_rejects_a_job_id_that_is_a_path(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x")
    with pytest.raises(ValueError):
        claim(source, tmp_path, "../escape")


def test_claim_into_an_unusable_work_area_is_a_media_error_naming_the_file(
    tmp_path: Path,
) -> None:
    # a plain file where processing/ should be: the rename fails with an OSError, as it
    # would without permission (which root, running these tests in CI, always has)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = inbox / "clip.mp4"
    source.write_bytes(b"x")
    (inbox / "processing").write_text("in the way")
    with pytest.raises(MediaError, match=r"clip\.mp4"):
        claim(source, inbox, "job1")
    assert source.read_bytes() == b"x"  # nothing lost


# --- move_no_replace and free_name -----------------------------------------------------------


def test_move_no_replace_into_a_new_folder(tmp_path: Path) -> None:
    source = tmp_path / "a.mp4"
    source.write_bytes(b"a")
    moved = move_no_replace(source, tmp_path / "done" / "2024-05-01", "clip.mp4")
    assert moved == tmp_path / "done" / "2024-05-01" / "clip.mp4"
    assert moved.read_bytes() == b"a"
    assert not source.exists()


def test_move_no_replace_keeps_both(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"first")
    for expected, content in (("clip (2).mp4", b"second"), ("clip (3).mp4", b"third")):
        source = tmp_path / "new.mp4"
        source.write_bytes(content)
        assert move_no_replace(source, folder, "clip.mp4") == folder / expected
    assert (folder / "clip.mp4").read_bytes() == b"first"
    assert (folder / "clip (2).mp4").read_bytes() == b"second"


def test_move_no_replace_of_a_missing_source_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"gone\.mp4"):
        move_no_replace(tmp_path / "gone.mp4", tmp_path / "out", "gone.mp4")


def test_free_name(tmp_path: Path) -> None:
    assert free_name(tmp_path, "my.clip.mp4") == "my.clip.mp4"
    (tmp_path / "my.clip.mp4").write_bytes(b"")
    assert free_name(tmp_path, "my.clip.mp4") == "my.clip (2).mp4"
    (tmp_path / "README").write_bytes(b"")
    assert free_name(tmp_path, "README") == "README (2)"


def test_free_name_counts_a_dangling_symlink_as_taken(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").symlink_to(tmp_path / "nowhere")
    assert free_name(tmp_path, "clip.mp4") == "clip (2).mp4"


def _other_filesystem(tmp_path: Path) -> Path | None:
    shared_memory = Path("/dev/shm")
    usable = shared_memory.is_dir() and os.access(shared_memory, os.W_OK)
    if usable and os.stat(shared_memory).st_dev != os.stat(tmp_path).st_dev:
        return shared_memory
    return None


def test_move_no_replace_across_filesystems(tmp_path: Path) -> None:
    other = _other_filesystem(tmp_path)
    if other is None:
        pytest.skip("no second filesystem to move across")
    source = Path(tempfile.mkdtemp(dir=other)) / "clip.mp4"
    try:
        source.write_bytes(b"video")
        (tmp_path / "clip.mp4").write_bytes(b"first")
        moved = move_no_replace(source, tmp_path, "clip.mp4")
        assert moved == tmp_path / "clip (2).mp4"
        assert moved.read_bytes() == b"video"
        assert not source.exists()
        assert sorted(os.listdir(tmp_path)) == ["clip (2).mp4", "clip.mp4"]  # no temporary left
    finally:
        shutil.rmtree(source.parent)


def test_move_no_replace_finishes_a_move_a_kill_interrupted(tmp_path: Path) -> None:
    # killed between the link and the unlink: the file has its old and its new name
    folder = tmp_path / "done"
    folder.mkdir()
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    os.link(source, folder / "clip.mp4")
    assert move_no_replace(source, folder, "clip.mp4") == folder / "clip.mp4"
    assert not source.exists()
    assert os.listdir(folder) == ["clip.mp4"]  # not a second copy as "clip (2).mp4"


def test_link_no_replace_gives_a_second_name_and_keeps_the_first(tmp_path: Path) -> None:
    source = tmp_path / ".clip.part"
    source.write_bytes(b"video")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clip.mp4").write_bytes(b"someone else's")
    linked = link_no_replace(source, tmp_path / "out", "clip.mp4")
    assert linked == tmp_path / "out" / "clip (2).mp4"
    assert source.exists() and linked.samefile(source)
    assert linked_in(source, tmp_path / "out") == linked


def test_linked_in_sees_only_visible_names_of_the_same_file(tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"video")  # equal bytes, another file
    assert linked_in(source, folder) is None
    os.link(source, folder / ".hidden.part")
    assert linked_in(source, folder) is None
    assert linked_in(tmp_path / "gone.mp4", folder) is None
