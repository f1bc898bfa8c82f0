"""Watch: filesystem events and reconciliation scans -> candidate paths.

Events are hints, the scan is the truth: events are lost on network shares, when the
kernel's queue overflows, and while the daemon is down. So nothing here decides anything;
it hands paths to the daemon, which classifies them (`intake.classify`).

watchdog calls handlers on its own thread while holding a lock, so the handler only
enqueues: it passes the path to the asyncio loop with `call_soon_threadsafe` and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from watchdog.events import (
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from nemowatch.config import WORK_FOLDERS, Rule

# The events that can mean "a file appeared or changed". FileAttribEvent is among them
# because `touch`, `cp -p` and rsync finish by setting the modification time.
# Deletions are left out: a file that is gone is noticed by the next look at it.
_CANDIDATE_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileMovedEvent,
]

CandidateCallback = Callable[[Path, bool], None]


@dataclass(frozen=True)
class InboxWatch:
    """How one inbox is watched: the union of what the rules on it ask for."""

    inbox: Path
    recursive: bool
    poll: bool


def inbox_watches(rules: Sequence[Rule]) -> list[InboxWatch]:
    """One entry per distinct inbox, in rule order (pure)."""
    merged: dict[Path, InboxWatch] = {}
    for rule in rules:
        known = merged.get(rule.inbox)
        merged[rule.inbox] = InboxWatch(
            inbox=rule.inbox,
            recursive=rule.recursive or (known is not None and known.recursive),
            poll=rule.poll or (known is not None and known.poll),
        )
    return list(merged.values())


def _event_observer() -> BaseObserver:
    """The platform's event observer (inotify, FSEvents, ...)."""
    if getattr(Observer, "__name__", "") == "InotifyObserver":
        from watchdog.observers.inotify import InotifyObserver

        # Full events report a file renamed in from outside the inbox as a move (a finished
        # file) rather than as a creation, and a file renamed out as a move with no target.
        return InotifyObserver(generate_full_events=True)
    return Observer()


class _Forwarder(FileSystemEventHandler):
    """Turns watchdog events into (path, closed) and hands them over; decides nothing."""

    def __init__(self, deliver: CandidateCallback) -> None:
        super().__init__()
        self._deliver = deliver

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        if isinstance(event, FileMovedEvent):
            if not event.dest_path:
                return  # moved out of the inbox
            # A rename into place means the writer is done with it: like a close-write.
            self._deliver(Path(os.fsdecode(event.dest_path)), True)
        elif isinstance(event, FileClosedEvent):
            self._deliver(Path(os.fsdecode(event.src_path)), True)
        elif isinstance(event, FileCreatedEvent | FileModifiedEvent | FileAttribEvent):
            self._deliver(Path(os.fsdecode(event.src_path)), False)


class Watcher:
    """Event-driven watching (inotify on Linux) plus polling where a rule asks for it.

    `on_candidate(path, closed)` is always called on the loop's thread. `closed` is True
    when the event says a writer finished (close-write, or renamed into place).
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        on_candidate: CandidateCallback,
        loop: asyncio.AbstractEventLoop,
        *,
        poll_interval: float = 2.0,
    ) -> None:
        self._rules = tuple(rules)
        self._on_candidate = on_candidate
        self._loop = loop
        self._poll_interval = poll_interval
        self._observers: list[BaseObserver] = []
        self._log = structlog.get_logger("nemowatch")

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def start(self) -> None:
        """Create missing inboxes and start watching them. Does nothing if already started."""
        if self._observers:
            return
        polling = PollingObserver(timeout=self._poll_interval)
        events: BaseObserver | None = None
        try:
            events = _event_observer()
        except OSError as exc:
            # Typically the limit on inotify instances (fs.inotify.max_user_instances).
            self._log.warning("watch.events_unavailable", error=str(exc))
        # Started before scheduling, so that each watch is set up (and can fail) on its own.
        self._observers = [polling] if events is None else [events, polling]
        for observer in self._observers:
            observer.start()
        handler = _Forwarder(self._deliver)
        for watch in inbox_watches(self._rules):
            self._schedule(watch, handler, events, polling)

    def stop(self) -> None:
        """Stop watching and wait for watchdog's threads to end. Safe to call twice."""
        observers, self._observers = self._observers, []
        for observer in observers:
            observer.stop()
        for observer in observers:
            observer.join()

    def update_rules(self, rules: Sequence[Rule]) -> None:
        """Watch the inboxes of `rules` instead (after a config reload).

        Events that happen during the switch are not reported: scan afterwards.
        Also the way to recover when `healthy()` is False.
        """
        running = bool(self._observers)
        self.stop()
        self._rules = tuple(rules)
        if running:
            self.start()

    def healthy(self) -> bool:
        """Whether every observer thread and every watch is still running."""
        if not self._observers:
            return False
        for observer in self._observers:
            if not observer.is_alive():
                return False
            # An emitter stops on its own when its inbox is deleted or unmounted.
            if not all(emitter.is_alive() for emitter in observer.emitters):
                return False
        return True

    def scan(self) -> list[Path]:
        """Every regular file in every inbox, for the caller to classify. Blocking.

        Skips work folders and dot folders, never follows symlinks, and tolerates an inbox
        that is missing and files that vanish during the walk.
        """
        found: dict[Path, None] = {}  # ordered and free of duplicates (nested inboxes)
        for watch in inbox_watches(self._rules):
            for path in _walk(watch.inbox, recursive=watch.recursive):
                found[path] = None
        return list(found)

    def _schedule(
        self,
        watch: InboxWatch,
        handler: _Forwarder,
        events: BaseObserver | None,
        polling: BaseObserver,
    ) -> None:
        try:
            watch.inbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # The scan keeps looking for it; a reload or restart watches it once it exists.
            self._log.warning("watch.inbox_unavailable", inbox=str(watch.inbox), error=str(exc))
            return
        if not watch.poll and events is not None:
            try:
                events.schedule(handler, str(watch.inbox), **self._watch_options(watch))
                return
            except OSError as exc:
                # Typically the inotify watch limit (fs.inotify.max_user_watches) is reached;
                # polling still works, only slower.
                self._log.warning(
                    "watch.fallback_to_polling", inbox=str(watch.inbox), error=str(exc)
                )
        try:
            polling.schedule(handler, str(watch.inbox), **self._watch_options(watch))
        except OSError as exc:
            self._log.warning("watch.inbox_unavailable", inbox=str(watch.inbox), error=str(exc))

    @staticmethod
    def _watch_options(watch: InboxWatch) -> dict[str, Any]:
        return {"recursive": watch.recursive, "event_filter": _CANDIDATE_EVENTS}

    def _deliver(self, path: Path, closed: bool) -> None:
        # On watchdog's thread: only enqueue. A closed loop means the daemon is stopping;
        # the event is dropped and the next start's scan finds the file.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_candidate, path, closed)


def _walk(inbox: Path, *, recursive: bool) -> Iterator[Path]:
    # An explicit stack, not recursion: folder depth is up to the people using the inbox.
    folders = [inbox]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except PermissionError as exc:
            structlog.get_logger("nemowatch").warning(
                "watch.scan_unreadable", folder=str(folder), error=str(exc)
            )
            continue
        except OSError:
            continue  # missing, no longer a folder, or vanished during the walk
        subfolders: list[Path] = []
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    yield Path(entry.path)
                elif recursive and entry.is_dir(follow_symlinks=False):
                    if entry.name.startswith("."):
                        continue
                    if folder == inbox and entry.name in WORK_FOLDERS:
                        continue
                    subfolders.append(Path(entry.path))
            except OSError:
                continue  # vanished between listing and looking
        folders.extend(reversed(subfolders))  # depth first, in name order
