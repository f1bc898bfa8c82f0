"""Watch: real watchdog observers on temporary folders deliver candidates to the loop."""

from __future__ import annotations

import asyncio
import errno
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from watchdog.events import FileSystemEventHandler
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.inotify import InotifyObserver

from nemowatch.config import Rule
from nemowatch.watch import (
    RESTART_LIMIT,
    RESTART_WINDOW,
    InboxWatch,
    Watcher,
    WatchMode,
    inbox_watches,
)

# seconds; every wait polls for its condition and usually ends within 0.1 s, but a loaded
# machine can hold an observer thread back for seconds
TIMEOUT = 30.0
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
    """Starts a watcher; like the daemon at startup, it first creates the inboxes."""
    started: list[Watcher] = []

    def make(
        rules: Sequence[Rule], *, create: bool = True, **options: Any
    ) -> tuple[Watcher, Received]:
        if create:
            for each in rules:
                each.inbox.mkdir(parents=True, exist_ok=True)
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
    second.mkdir()
    watcher, received = make_watcher([rule(first)])
    watcher.update_rules([rule(second)])
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

    # a flat inbox's folders are candidates too: each is a batch (not links, not hidden)
    flat = Watcher([rule(inbox)], Received(), asyncio.get_running_loop())
    assert sorted(flat.scan()) == [inbox / ".hidden.mp4", inbox / "a.mp4", inbox / "sub"]


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


# --- self-health -----------------------------------------------------------------------------


def mountinfo_with(share: Path, fstype: str) -> Callable[[], str]:
    """A mount table with a `fstype` filesystem mounted at `share`, as the kernel writes it."""
    mount_point = os.path.realpath(share).replace("\\", "\\134").replace(" ", "\\040")
    text = (
        "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n"
        f"30 22 0:45 / {mount_point} rw,relatime shared:50 - {fstype} nas:/export rw\n"
    )
    return lambda: text


class EventObservers:
    """The watcher's event observers: real inotify ones, kept so a test can reach them."""

    def __init__(self) -> None:
        self.made: list[BaseObserver] = []

    def __call__(self) -> BaseObserver:
        observer = InotifyObserver(generate_full_events=True)
        self.made.append(observer)
        return observer


class WatchLimitAt(InotifyObserver):
    """inotify whose watch limit (fs.inotify.max_user_watches) is reached at one folder."""

    def __init__(self, full: Path) -> None:
        super().__init__(generate_full_events=True)
        self.full = full

    def schedule(
        self, event_handler: FileSystemEventHandler, path: str | Path, **options: Any
    ) -> ObservedWatch:
        if Path(path) == self.full:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return super().schedule(event_handler, path, **options)


def no_inotify_instance_left() -> BaseObserver:
    """What creating an inotify instance does once fs.inotify.max_user_instances is reached."""
    raise OSError(errno.EMFILE, "inotify instance limit reached")


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_an_inbox_on_a_network_share_is_polled_and_its_files_arrive(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    share, local = tmp_path / "share", tmp_path / "local"
    with capture_logs() as logs:
        watcher, received = make_watcher(
            [rule(share), rule(local)],
            poll_interval=0.05,
            mountinfo=mountinfo_with(share, "nfs4"),
        )
        watcher.check()
    assert watcher.modes() == {share: WatchMode.POLLING, local: WatchMode.EVENTS}
    [polling] = events(logs, "watch.polling")
    assert polling["inbox"] == str(share)
    assert polling["fstype"] == "nfs4"
    assert "network or FUSE" in polling["reason"]
    (share / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: share / "clip.mp4" in received.paths())


async def test_at_the_inotify_watch_limit_that_inbox_is_polled_and_the_others_keep_events(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    full, other = tmp_path / "full", tmp_path / "other"
    with capture_logs() as logs:
        watcher, received = make_watcher(
            [rule(full), rule(other)],
            poll_interval=0.05,
            event_observer=lambda: WatchLimitAt(full),
        )
    assert watcher.modes() == {full: WatchMode.POLLING, other: WatchMode.EVENTS}
    assert watcher.healthy()
    [warning] = events(logs, "watch.fallback_to_polling")
    assert warning["log_level"] == "warning"
    assert warning["inbox"] == str(full)
    assert warning["sysctl"] == "fs.inotify.max_user_watches"
    assert "sysctl fs.inotify.max_user_watches=524288" in warning["hint"]
    assert "/etc/sysctl.d/" in warning["hint"]
    (full / "a.mp4").write_bytes(b"video")
    (other / "b.mp4").write_bytes(b"video")
    await wait_for(lambda: {full / "a.mp4", other / "b.mp4"} <= received.paths())


async def test_at_the_inotify_instance_limit_every_inbox_is_polled_and_files_arrive(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    with capture_logs() as logs:
        watcher, received = make_watcher(
            [rule(first), rule(second)],
            poll_interval=0.05,
            event_observer=no_inotify_instance_left,
        )
    assert watcher.modes() == {first: WatchMode.POLLING, second: WatchMode.POLLING}
    assert watcher.healthy()
    [warning] = events(logs, "watch.fallback_to_polling")  # once, not once per inbox
    assert warning["sysctl"] == "fs.inotify.max_user_instances"
    assert "sysctl fs.inotify.max_user_instances=" in warning["hint"]
    (first / "a.mp4").write_bytes(b"video")
    (second / "b.mp4").write_bytes(b"video")
    await wait_for(lambda: {first / "a.mp4", second / "b.mp4"} <= received.paths())


async def test_check_on_a_healthy_watcher_changes_nothing(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    observers = EventObservers()
    watcher, _ = make_watcher([rule(inbox)], event_observer=observers)
    with capture_logs() as logs:
        watcher.check()
        watcher.check()
    assert logs == []
    assert watcher.restarts == 0
    assert len(observers.made) == 1
    assert watcher.healthy()


def kill_observer(observer: BaseObserver) -> None:
    observer.stop()
    observer.join()


def kill_emitter(observer: BaseObserver) -> None:
    [emitter] = observer.emitters
    emitter.stop()
    emitter.join()


@pytest.mark.parametrize("kill", [kill_observer, kill_emitter], ids=["observer", "watch"])
async def test_a_dead_watch_thread_is_restarted_by_check(
    tmp_path: Path,
    make_watcher: Callable[..., tuple[Watcher, Received]],
    kill: Callable[[BaseObserver], None],
) -> None:
    inbox = tmp_path / "inbox"
    observers = EventObservers()
    watcher, received = make_watcher([rule(inbox)], event_observer=observers)
    kill(observers.made[0])
    assert not watcher.healthy()
    with capture_logs() as logs:
        watcher.check()
    assert watcher.healthy()
    assert watcher.restarts == 1
    assert len(observers.made) == 2
    [restarted] = events(logs, "watch.observer_restarted")
    assert restarted["log_level"] == "warning"
    assert any("events" in problem for problem in restarted["problems"])
    assert watcher.modes() == {inbox: WatchMode.EVENTS}
    (inbox / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "clip.mp4" in received.paths())


async def test_a_watcher_that_keeps_dying_stays_unhealthy(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    observers = EventObservers()
    now = [1000.0]
    watcher, received = make_watcher([rule(inbox)], event_observer=observers, clock=lambda: now[0])
    for _ in range(RESTART_LIMIT):
        kill_observer(observers.made[-1])
        watcher.check()
        assert watcher.healthy()
    kill_observer(observers.made[-1])
    with capture_logs() as logs:
        watcher.check()
        watcher.check()
    assert not watcher.healthy()
    assert watcher.restarts == RESTART_LIMIT
    [limit] = events(logs, "watch.restart_limit")
    assert limit["log_level"] == "error"
    now[0] += RESTART_WINDOW + 1  # the earlier restarts are long past: try again
    watcher.check()
    assert watcher.healthy()
    assert watcher.restarts == RESTART_LIMIT + 1
    (inbox / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "clip.mp4" in received.paths())


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
async def test_an_inbox_that_vanishes_is_paused_not_recreated_and_resumes_when_back(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]], poll: bool
) -> None:
    inbox, elsewhere, other = tmp_path / "inbox", tmp_path / "elsewhere", tmp_path / "other"
    watcher, received = make_watcher([rule(inbox, poll=poll), rule(other)], poll_interval=0.05)
    (other / "other.mp4").write_bytes(b"x")
    inbox.rename(elsewhere)  # the share is unmounted
    (elsewhere / "hidden.mp4").write_bytes(b"x")
    with capture_logs() as logs:
        watcher.check()
        watcher.check()
        watcher.update_rules(watcher.rules)  # a reload does not recreate it either
        watcher.check()
    assert watcher.missing() == {inbox}
    assert not inbox.exists()
    [missing] = events(logs, "inbox.missing")
    assert missing["log_level"] == "warning"
    assert missing["inbox"] == str(inbox)
    assert missing["rules"] == ["test"]
    assert "paused" in missing["hint"]
    assert watcher.healthy()  # a missing inbox is paused, not a broken watcher
    assert watcher.restarts == 0
    assert watcher.scan() == [other / "other.mp4"]

    elsewhere.rename(inbox)  # mounted again
    assert inbox / "hidden.mp4" not in watcher.scan()  # still paused until check sees it
    with capture_logs() as logs:
        watcher.check()
    assert watcher.missing() == frozenset()
    assert [entry["inbox"] for entry in events(logs, "inbox.back")] == [str(inbox)]
    assert inbox / "hidden.mp4" in watcher.scan()
    assert watcher.healthy()
    (inbox / "new.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "new.mp4" in received.paths())


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
async def test_an_inbox_that_is_deleted_is_unhealthy_until_check_pauses_it(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]], poll: bool
) -> None:
    inbox = tmp_path / "inbox"
    watcher, _ = make_watcher([rule(inbox, poll=poll)], poll_interval=0.05)
    inbox.rmdir()
    await wait_for(lambda: not watcher.healthy())  # its watch thread ended by itself
    watcher.check()
    assert watcher.missing() == {inbox}
    assert watcher.healthy()
    assert watcher.restarts == 0
    assert not inbox.exists()


async def test_an_inbox_missing_at_start_is_watched_once_it_appears(
    tmp_path: Path, make_watcher: Callable[..., tuple[Watcher, Received]]
) -> None:
    inbox = tmp_path / "inbox"
    with capture_logs() as logs:
        watcher, received = make_watcher([rule(inbox)], create=False)
    assert watcher.missing() == {inbox}
    assert not inbox.exists()
    assert len(events(logs, "inbox.missing")) == 1
    assert watcher.healthy()
    inbox.mkdir()
    watcher.check()
    assert watcher.modes() == {inbox: WatchMode.EVENTS}
    (inbox / "clip.mp4").write_bytes(b"video")
    await wait_for(lambda: inbox / "clip.mp4" in received.paths())
