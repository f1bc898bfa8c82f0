"""Watch: real watchdog observers on temporary folders deliver candidates to the loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from nemowatch.config import Rule
from nemowatch.watch import InboxWatch, Watcher, inbox_watches

TIMEOUT = 3.0  # seconds; every wait polls for its condition and usually ends within 0.1 s
LINUX = sys.platform.startswith("linux")


class Received:
    """Candidates as the daemon would get them, with the thread each arrived on."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, bool]] = []
        self.threads: set[int] = set()

    def __call__(self, path: Path, closed: bool) -> None:
        self.calls.append((path, closed))
        self.threads.add(threading.get_ident())

    def paths(self) -> set[Path]:
        return {path for path, _ in self.calls}


async def wait_for(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout} s")
        await asyncio.sleep(0.01)


def rule(inbox: Path, *, recursive: bool = False, poll: bool = False) -> Rule:
    outbox = inbox.parent / "out"
    return Rule(name="test", inbox=inbox, outbox=outbox, recursive=recursive, poll=poll)


@pytest.fixture
def make_watcher() -> Iterator[Callable[..., tuple[Watcher, Received]]]:
    started: list[Watcher] = []

    def make(rules: Sequence[Rule], **options: float) -> tuple[Watcher, Received]:
        received = Received()
        watcher = Watcher(rules, received, asyncio.get_running_loop(), **options)
        watcher.start()
        started.append(watcher)
        return watcher, received

    yield make
    for watcher in started:
        watcher.stop()


# --- events ----------------------------------------------------------------------------------


async def test_a_created_file_reaches_the_loop_thread(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    watcher, received = make_watcher([rule(inbox)])
    assert watcher.healthy()
    (inbox / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "clip.mp4" in received.paths())
    assert received.threads == {threading.get_ident()}


@pytest.mark.skipif(not LINUX, reason="close-write events come from inotify")
async def test_close_write_is_reported_as_closed(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    _, received = make_watcher([rule(inbox)])
    (inbox / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: (inbox / "clip.mp4", True) in received.calls)


async def test_a_file_renamed_in_from_outside_arrives(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    outside = tmp_path / "clip.mp4"
    outside.write_bytes(b"video")
    _, received = make_watcher([rule(inbox)])
    os.rename(outside, inbox / "clip.mp4")
    await wait_for(lambda: inbox / "clip.mp4" in received.paths())
    if LINUX:
        assert received.calls == [(inbox / "clip.mp4", True)]


async def test_a_partial_file_renamed_into_place_arrives_as_closed(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "clip.mp4.part").write_bytes(b"video")
    _, received = make_watcher([rule(inbox)])
    os.rename(inbox / "clip.mp4.part", inbox / "clip.mp4")
    await wait_for(lambda: (inbox / "clip.mp4", True) in received.calls)


async def test_folders_and_deletions_are_not_candidates(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.mp4").write_bytes(b"x")
    _, received = make_watcher([rule(inbox)])
    (inbox / "folder").mkdir()
    (inbox / "old.mp4").unlink()
    (inbox / "marker.mp4").write_bytes(b"x")  # events arrive in order: this one comes last
    await wait_for(lambda: inbox / "marker.mp4" in received.paths())
    assert received.paths() == {inbox / "marker.mp4"}


async def test_a_polled_inbox_reports_new_files(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "share"
    watcher, received = make_watcher([rule(inbox, poll=True)], poll_interval=0.05)
    assert watcher.healthy()
    (inbox / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "clip.mp4" in received.paths())
    assert received.threads == {threading.get_ident()}


async def test_a_recursive_inbox_reports_files_in_subfolders(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "day1").mkdir(parents=True)
    _, received = make_watcher([rule(inbox, recursive=True)])
    (inbox / "day1" / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "day1" / "clip.mp4" in received.paths())


async def test_update_rules_moves_the_watch(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    watcher, received = make_watcher([rule(first)])
    watcher.update_rules([rule(second)])
    assert second.is_dir()
    assert watcher.healthy()
    (first / "old.mp4").write_bytes(b"x")
    (second / "new.mp4").write_bytes(b"x")
    await wait_for(lambda: second / "new.mp4" in received.paths())
    assert first / "old.mp4" not in received.paths()


async def test_stop_is_idempotent_and_unhealthy(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    watcher, _ = make_watcher([rule(tmp_path / "inbox")])
    watcher.stop()
    watcher.stop()
    assert not watcher.healthy()


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
async def test_an_inbox_that_is_deleted_makes_the_watcher_unhealthy(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]], poll: bool
) -> None:
    inbox = tmp_path / "inbox"
    watcher, _ = make_watcher([rule(inbox, poll=poll)], poll_interval=0.05)
    inbox.rmdir()
    await wait_for(lambda: not watcher.healthy())
    watcher.update_rules(watcher.rules)  # the way back: recreates and watches it again
    assert inbox.is_dir()
    assert watcher.healthy()


# --- scan ------------------------------------------------------------------------------------


async def test_scan_finds_files_and_skips_what_is_not_ours(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for folder in ("processing", "done/2024-05-01", "failed", ".cache", "sub/deeper", "sub/done"):
        (inbox / folder).mkdir(parents=True)
    files = ["a.mp4", ".hidden.mp4", "sub/b.mp4", "sub/deeper/c.mp4", "sub/done/d.mp4"]
    skipped = ["processing/j__x.mp4", "done/2024-05-01/y.mp4", "failed/z.mp4", ".cache/w.mp4"]
    for name in files + skipped:
        (inbox / name).write_bytes(b"x")
    (inbox / "link.mp4").symlink_to(inbox / "a.mp4")
    (inbox / "linked-folder").symlink_to(inbox / "sub")
    os.mkfifo(inbox / "pipe.mp4")

    recursive = Watcher([rule(inbox, recursive=True)], Received(), asyncio.get_running_loop())
    assert sorted(recursive.scan()) == sorted(inbox / name for name in files)

    flat = Watcher([rule(inbox)], Received(), asyncio.get_running_loop())
    assert sorted(flat.scan()) == [inbox / ".hidden.mp4", inbox / "a.mp4"]


async def test_scan_of_a_missing_inbox_finds_nothing(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.mkdir()
    (present / "a.mp4").write_bytes(b"x")
    rules = [rule(tmp_path / "missing"), rule(present), rule(tmp_path / "present" / "a.mp4")]
    watcher = Watcher(rules, Received(), asyncio.get_running_loop())
    assert watcher.scan() == [present / "a.mp4"]


async def test_scan_does_not_start_watching(tmp_path: Path) -> None:
    watcher = Watcher([rule(tmp_path / "missing")], Received(), asyncio.get_running_loop())
    assert watcher.scan() == []
    assert not (tmp_path / "missing").exists()
    assert not watcher.healthy()


def test_one_watch_per_inbox_with_the_union_of_options(tmp_path: Path) -> None:
    shared, other = tmp_path / "shared", tmp_path / "other"
    rules = [rule(shared), rule(other, poll=True), rule(shared, recursive=True)]
    assert inbox_watches(rules) == [
        InboxWatch(inbox=shared, recursive=True, poll=False),
        InboxWatch(inbox=other, recursive=False, poll=True),
    ]
