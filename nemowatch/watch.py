"""Watch: filesystem events and reconciliation scans -> candidate paths.

Events are hints, the scan is the truth: events are lost on network shares, when the
kernel's queue overflows, and while the daemon is down. So nothing here decides anything;
it hands paths to the daemon, which classifies them (`intake.classify`).

watchdog calls handlers on its own thread while holding a lock, so the handler only
enqueues: it passes the path to the asyncio loop with `call_soon_threadsafe` and returns.

The watcher also looks after itself (`Watcher.check`, called every few seconds):

- an inbox on a network or FUSE filesystem is polled, because inotify only reports changes
  made by this machine; so is an inbox whose inotify watch cannot be had (kernel limits);
- an inbox that disappears (an unmounted share) is *missing*: its rules pause, it is not
  recreated (that would put files on the mount point, underneath the share), and watching
  resumes when it is back;
- an observer or watch thread that died is restarted, a bounded number of times.

Whether an inbox is still the folder that was watched, and which filesystems need polling,
is decided in `mounts`. The `Doorbell` is the daemon's second observer: it watches the
config and rule files and the operators' bell, so housekeeping runs when they change
instead of on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from nemowatch.config import WORK_FOLDERS, Config, Rule
from nemowatch.ledger import bell_folder, ledger_path
from nemowatch.mounts import (
    POLLING_REASON,
    InboxIdentity,
    InboxVerdict,
    Mount,
    MountTable,
    examine_inbox,
    needs_polling,
    read_mountinfo,
    sysctl_hint,
)

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


def _platform_event_observer() -> BaseObserver:
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
            # a folder made or moved into the inbox may be a batch: intake looks at it
            if isinstance(event, DirCreatedEvent):
                self._deliver(Path(os.fsdecode(event.src_path)), False)
            elif isinstance(event, DirMovedEvent) and event.dest_path:
                self._deliver(Path(os.fsdecode(event.dest_path)), False)
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


class WatchMode(StrEnum):
    """How an inbox is being watched."""

    EVENTS = "events"  # inotify (or the platform's equivalent): immediate
    POLLING = "polling"  # the folder is listed every poll interval: works everywhere
    MISSING = "missing"  # not there: its rules are paused until it is back


@dataclass(frozen=True)
class _Scheduled:
    observer: BaseObserver
    watch: ObservedWatch
    mode: WatchMode


# A watcher whose threads keep dying is left unhealthy (see RestartBudget).
RESTART_LIMIT = 5
RESTART_WINDOW = 600.0  # seconds

_MISSING_HINT = "the rules on this inbox are paused until it is back; check the mount"


class RestartBudget:
    """How many times dead watch threads may be restarted: RESTART_LIMIT in RESTART_WINDOW.

    Past it the watcher is left unhealthy (systemd's watchdog then restarts the daemon)
    rather than restarted in a loop; the scans keep finding files meanwhile.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._times: deque[float] = deque()
        self._limit_logged = False
        self.restarts = 0  # how many restarts were allowed in all

    def allows(self, problems: list[str]) -> bool:
        """Whether one more restart may happen now (counted if so); logs the limit once."""
        now = self._clock()
        while self._times and now - self._times[0] > RESTART_WINDOW:
            self._times.popleft()
        if len(self._times) >= RESTART_LIMIT:
            if not self._limit_logged:
                self._limit_logged = True
                structlog.get_logger("nemowatch").error(
                    "watch.restart_limit",
                    problems=problems,
                    restarts=self.restarts,
                    hint=f"watch threads died {RESTART_LIMIT} times in {RESTART_WINDOW:.0f} s;"
                    " left unhealthy so that systemd's watchdog restarts nemowatch;"
                    " the periodic scans still find new files",
                )
            return False
        self._limit_logged = False
        self._times.append(now)
        self.restarts += 1
        return True


def dead_threads(
    observers: Mapping[str, BaseObserver | None], scheduled: Mapping[Path, _Scheduled]
) -> list[str]:
    """What has stopped among the (named) observers' threads and the scheduled watches."""
    running = {name: observer for name, observer in observers.items() if observer is not None}
    problems: list[str] = []
    for name, observer in running.items():
        if not observer.is_alive():
            problems.append(f"the {name} observer thread stopped")
        # watchdog's inotify reader thread; a private attribute, so looked up gently.
        reader = getattr(observer, "_inotify_fd", None)
        if isinstance(reader, threading.Thread) and not reader.is_alive():
            problems.append(f"the {name} observer's inotify reader thread stopped")
    alive = {
        emitter.watch
        for observer in running.values()
        for emitter in list(observer.emitters)
        if emitter.is_alive()
    }
    for inbox, watch in scheduled.items():
        if watch.watch not in alive:
            problems.append(f"the {watch.mode} watch on {inbox} stopped")
    return problems


def _limit_fields(exc: OSError) -> dict[str, Any]:
    """The kernel limit an inotify failure ran into, and how to raise it (for the log)."""
    if exc.errno == errno.EMFILE:
        return {
            "sysctl": "fs.inotify.max_user_instances",
            "hint": sysctl_hint("fs.inotify.max_user_instances", 1024),
        }
    if exc.errno == errno.ENOSPC:
        return {
            "sysctl": "fs.inotify.max_user_watches",
            "hint": sysctl_hint("fs.inotify.max_user_watches", 524288),
        }
    return {}


class Watcher:
    """Event-driven watching (inotify on Linux) plus polling where events cannot be had.

    `on_candidate(path, closed)` is always called on the loop's thread. `closed` is True
    when the event says a writer finished (close-write, or renamed into place).

    start(), stop(), update_rules() and check() are called on the loop's thread only;
    watchdog's threads only ever call `_deliver`.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        on_candidate: CandidateCallback,
        loop: asyncio.AbstractEventLoop,
        *,
        poll_interval: float = 2.0,
        mountinfo: Callable[[], str] | None = None,
        event_observer: Callable[[], BaseObserver] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = tuple(rules)
        self._on_candidate = on_candidate
        self._loop = loop
        self._poll_interval = poll_interval
        self._read_mountinfo = mountinfo if mountinfo is not None else read_mountinfo
        self._make_event_observer = (
            event_observer if event_observer is not None else _platform_event_observer
        )
        self._handler = _Forwarder(self._deliver)
        self._log = structlog.get_logger("nemowatch")
        self._running = False
        self._polling: BaseObserver | None = None
        self._events: BaseObserver | None = None
        self._events_unavailable = False  # no inotify instance could be had: poll everything
        self._scheduled: dict[Path, _Scheduled] = {}
        # Kept across restarts and reloads: a missing inbox stays missing until it is back.
        self._identities: dict[Path, InboxIdentity] = {}
        self._missing: set[Path] = set()
        self._announced: set[tuple[Path, str]] = set()  # watch.polling, logged once each
        self._budget = RestartBudget(clock)

    @property
    def restarts(self) -> int:
        """How many times dead watch threads were restarted."""
        return self._budget.restarts

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def start(self) -> None:
        """Start watching the inboxes. Does nothing if already started.

        Inboxes are not created here (the daemon does that once, at startup): one that is
        not there is missing, and watched once it appears.
        """
        if self._running:
            return
        self._running = True
        self._launch()

    def stop(self) -> None:
        """Stop watching and wait for watchdog's threads to end. Safe to call twice."""
        self._running = False
        self._teardown()

    def update_rules(self, rules: Sequence[Rule]) -> None:
        """Watch the inboxes of `rules` instead (after a config reload).

        Events that happen during the switch are not reported: scan afterwards.
        Also a way to recover when `healthy()` is False.
        """
        self._teardown()
        self._rules = tuple(rules)
        inboxes = {watch.inbox for watch in inbox_watches(self._rules)}
        self._identities = {
            inbox: identity for inbox, identity in self._identities.items() if inbox in inboxes
        }
        self._missing &= inboxes
        if self._running:
            self._launch()

    def healthy(self) -> bool:
        """Whether every observer thread and the watch of every present inbox are running.

        A missing inbox does not make the watcher unhealthy: its rules are paused, which is
        the right state for an unmounted share.
        """
        return self._running and self._polling is not None and not self._dead_threads()

    def missing(self) -> frozenset[Path]:
        """The inboxes that are not there now; the rules on them are paused."""
        return frozenset(self._missing)

    def modes(self) -> dict[Path, WatchMode]:
        """How each inbox is watched right now."""
        modes = {inbox: scheduled.mode for inbox, scheduled in self._scheduled.items()}
        modes.update(dict.fromkeys(self._missing, WatchMode.MISSING))
        return modes

    def check(self) -> None:
        """Look at every inbox and every thread, and repair what is wrong. Never raises.

        Quick when all is well (one stat per inbox). Pauses inboxes that went missing,
        resumes those that are back, rewatches remounted ones, restarts dead threads.
        """
        if not self._running:
            return
        try:
            if self._polling is None:  # the last restart failed
                self._restart(["no observer is running: the last restart failed"])
                return
            mounts = MountTable(self._read_mountinfo)
            for watch in inbox_watches(self._rules):
                self._reconcile(watch, mounts)
            problems = self._dead_threads()
            if problems:
                self._restart(problems)
        except Exception as exc:  # the daemon's loop must go on; the scans still find files
            self._log.error("watch.check_failed", error=repr(exc))

    def scan(self) -> list[Path]:
        """Every regular file in every inbox that is not missing, for the caller to classify.

        Blocking. Skips work folders and dot folders, never follows symlinks, and tolerates
        an inbox that is missing and files that vanish during the walk.
        """
        found: dict[Path, None] = {}  # ordered and free of duplicates (nested inboxes)
        missing = self.missing()  # a copy: the daemon scans on a worker thread
        for watch in inbox_watches(self._rules):
            if watch.inbox in missing:
                continue
            for path in _walk(watch.inbox, recursive=watch.recursive):
                found[path] = None
        return list(found)

    # -- starting and stopping ------------------------------------------------------------

    def _launch(self) -> None:
        self._polling = PollingObserver(timeout=self._poll_interval)
        self._polling.start()  # started first, so that each watch is set up (and fails) alone
        mounts = MountTable(self._read_mountinfo)
        for watch in inbox_watches(self._rules):
            self._reconcile(watch, mounts)

    def _teardown(self) -> None:
        observers = [observer for observer in (self._events, self._polling) if observer]
        self._events = self._polling = None
        self._events_unavailable = False  # the limit may have been raised meanwhile
        self._scheduled.clear()
        for observer in observers:
            with contextlib.suppress(OSError, RuntimeError):
                observer.stop()
        for observer in observers:
            with contextlib.suppress(RuntimeError):
                observer.join()

    def _restart(self, problems: list[str]) -> None:
        if not self._budget.allows(problems):
            return
        self._log.warning(
            "watch.observer_restarted", problems=problems, restarts=self._budget.restarts
        )
        self._teardown()
        try:
            self._launch()
        except Exception as exc:  # stays unhealthy; the next check tries again
            self._log.error("watch.restart_failed", error=repr(exc))
            self._teardown()

    def _dead_threads(self) -> list[str]:
        return dead_threads({"events": self._events, "polling": self._polling}, self._scheduled)

    # -- one inbox ------------------------------------------------------------------------

    def _reconcile(self, watch: InboxWatch, mounts: MountTable) -> None:
        """Bring one inbox's watch in line with what is there now."""
        inbox = watch.inbox
        verdict, current, reason = examine_inbox(inbox, self._identities.get(inbox), mounts)
        if verdict is InboxVerdict.MISSING or current is None:
            self._unschedule(inbox)
            self._mark_missing(inbox, reason)
            return
        if verdict is InboxVerdict.REMOUNTED and inbox not in self._missing:
            recorded = self._identities.get(inbox)
            self._log.info(
                "inbox.remounted",
                inbox=str(inbox),
                fstype=current.mount.fstype if current.mount else None,
                was=recorded.mount.fstype if recorded and recorded.mount else None,
            )
            self._unschedule(inbox)  # the old watch is on the folder now hidden underneath
        if inbox in self._scheduled:
            return
        error = self._schedule(watch, current.mount)
        if error is not None:
            self._mark_missing(inbox, error)
            return
        self._identities[inbox] = current
        if inbox in self._missing:
            self._missing.discard(inbox)
            self._log.info(
                "inbox.back",
                inbox=str(inbox),
                rules=self._rule_names(inbox),
                fstype=current.mount.fstype if current.mount else None,
            )

    def _mark_missing(self, inbox: Path, reason: str) -> None:
        if inbox in self._missing:
            return
        self._missing.add(inbox)
        self._log.warning(
            "inbox.missing",
            inbox=str(inbox),
            rules=self._rule_names(inbox),
            reason=reason,
            hint=_MISSING_HINT,
        )

    def _schedule(self, watch: InboxWatch, mount: Mount | None) -> str | None:
        """Watch one inbox, by events where possible. The error if it cannot be watched."""
        inbox = watch.inbox
        fstype = None if mount is None else mount.fstype
        options: dict[str, Any] = {"recursive": watch.recursive, "event_filter": _CANDIDATE_EVENTS}
        if watch.poll:
            self._announce_polling(inbox, fstype, "the rule asks for it (poll: true)")
        elif needs_polling(fstype):
            self._announce_polling(inbox, fstype, POLLING_REASON)
        else:
            events = self._event_observer()
            if events is not None:
                try:
                    scheduled = events.schedule(self._handler, str(inbox), **options)
                except (FileNotFoundError, NotADirectoryError) as exc:
                    return str(exc)  # gone since it was looked at
                except OSError as exc:
                    self._log.warning(
                        "watch.fallback_to_polling",
                        inbox=str(inbox),
                        error=str(exc),
                        reason="its inotify watch could not be set up: polled instead",
                        **_limit_fields(exc),
                    )
                else:
                    self._scheduled[inbox] = _Scheduled(events, scheduled, WatchMode.EVENTS)
                    return None
        assert self._polling is not None  # set by _launch before any scheduling
        try:
            scheduled = self._polling.schedule(self._handler, str(inbox), **options)
        except OSError as exc:
            return str(exc)
        self._scheduled[inbox] = _Scheduled(self._polling, scheduled, WatchMode.POLLING)
        return None

    def _unschedule(self, inbox: Path) -> None:
        scheduled = self._scheduled.pop(inbox, None)
        if scheduled is not None:
            # KeyError: the observer already dropped it (it died, or stopped itself).
            with contextlib.suppress(KeyError, OSError):
                scheduled.observer.unschedule(scheduled.watch)

    def _event_observer(self) -> BaseObserver | None:
        """The running event observer, created on first need; None if none can be had."""
        if self._events is not None or self._events_unavailable:
            return self._events
        try:
            observer = self._make_event_observer()
        except OSError as exc:
            self._events_unavailable = True
            self._log.warning(
                "watch.fallback_to_polling",
                inboxes="all",
                error=str(exc),
                reason="no inotify instance could be created: every inbox is polled",
                **_limit_fields(exc),
            )
            return None
        observer.start()
        self._events = observer
        return observer

    def _announce_polling(self, inbox: Path, fstype: str | None, reason: str) -> None:
        key = (inbox, f"{fstype}:{reason}")
        if key not in self._announced:
            self._announced.add(key)
            self._log.info("watch.polling", inbox=str(inbox), fstype=fstype, reason=reason)

    def _rule_names(self, inbox: Path) -> list[str]:
        return [rule.name for rule in self._rules if rule.inbox == inbox]

    def _deliver(self, path: Path, closed: bool) -> None:
        # On watchdog's thread: only enqueue. A closed loop means the daemon is stopping;
        # the event is dropped and the next start's scan finds the file.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_candidate, path, closed)


# --- doorbells: what wakes the daemon's housekeeping ---------------------------------------


@dataclass(frozen=True)
class Doorbells:
    """The paths whose change wakes the daemon's housekeeping: the config file and the rule
    files, any YAML file in `rules_dir`, the operators' bell (`ledger.ring`), and the ledger
    itself (deleted or replaced, the daemon must stop at once)."""

    files: frozenset[Path]
    yaml_folders: frozenset[Path]
    bell: Path

    @classmethod
    def of(cls, config: Config) -> Doorbells:
        files = set(config.rule_files) | {ledger_path(config.state_dir)}
        if config.source is not None:
            files.add(config.source)
        yaml_folders = {config.rules_dir} if config.rules_dir is not None else set()
        return cls(frozenset(files), frozenset(yaml_folders), bell_folder(config.state_dir))

    def folders(self) -> frozenset[Path]:
        """The folders watched for them: one inotify watch each (`doctor` counts them)."""
        return frozenset({path.parent for path in self.files} | self.yaml_folders | {self.bell})

    def rings(self, path: Path) -> bool:
        """Whether a change to `path` is one of them (pure)."""
        return (
            path in self.files
            or path.parent == self.bell
            or (path.parent in self.yaml_folders and path.suffix in (".yaml", ".yml"))
        )


class _Ringer(FileSystemEventHandler):
    """Rings (on watchdog's thread: only hands over) when a doorbell path changes."""

    def __init__(self, doorbells: Doorbells, ring: Callable[[], None]) -> None:
        super().__init__()
        self._doorbells = doorbells
        self._ring = ring

    def dispatch(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(path and self._doorbells.rings(Path(os.fsdecode(path))) for path in paths):
            self._ring()


class Doorbell:
    """A second observer, on the doorbells' folders: `ring()` is called on the loop's thread
    when one of them changes. It makes the bell folder; it decides nothing."""

    def __init__(
        self, doorbells: Doorbells, ring: Callable[[], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.doorbells = doorbells
        self._ring = ring
        self._loop = loop
        self._observer: BaseObserver | None = None

    @property
    def listening(self) -> bool:
        return self._observer is not None

    def start(self) -> None:
        """Start watching. Raises OSError when that is not possible (no inotify instance or
        watch left): the caller then looks at the doorbells on a timer instead."""
        self.doorbells.bell.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        handler = _Ringer(self.doorbells, self._handover)
        for folder in sorted(self.doorbells.folders()):
            if folder.is_dir():
                observer.schedule(handler, str(folder), recursive=False)
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        """Stop watching and wait for the observer's thread. Safe to call twice."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join()

    def _handover(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: stopping
            self._loop.call_soon_threadsafe(self._ring)


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
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name.startswith("."):
                        continue
                    if folder == inbox and entry.name in WORK_FOLDERS:
                        continue
                    if recursive:
                        subfolders.append(Path(entry.path))
                    else:
                        yield Path(entry.path)  # a folder dropped in: a batch (intake)
            except OSError:
                continue  # vanished between listing and looking
        folders.extend(reversed(subfolders))  # depth first, in name order
