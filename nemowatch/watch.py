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
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
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
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from nemowatch.config import WORK_FOLDERS, Rule

# --- filesystems ---------------------------------------------------------------------------

MOUNTINFO = Path("/proc/self/mountinfo")

# Filesystems where inotify sees only what this machine does: files written by another
# machine (or by the host of a VM) raise no event here. fuse.* is matched by prefix.
POLLED_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",  # WSL2 drives, QEMU shares
        "virtiofs",
        "vboxsf",
        "drvfs",  # WSL1 drives
        "fuse",
        "sshfs",
        "ceph",
        "glusterfs",
        "afs",
        "lustre",
        "gpfs",
        "beegfs",
        "gfs2",
        "ocfs2",
        "davfs",
    }
)

POLLING_REASON = "network or FUSE filesystem: inotify events do not arrive from other machines"

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """Where a filesystem is mounted and its type, from one line of mountinfo."""

    mount_point: PurePosixPath
    fstype: str


def parse_mountinfo(mountinfo: str) -> list[Mount]:
    """The mounts listed in /proc/self/mountinfo text, in its order (pure).

    A line reads `36 35 98:0 /root /mount/point options [optional...] - fstype source ...`;
    the kernel writes space, tab, newline and backslash in paths as octal escapes (`\\040`).
    Lines that do not have that shape are skipped.
    """
    mounts: list[Mount] = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
            fstype = fields[separator + 1]
        except (ValueError, IndexError):
            continue
        mount_point = _OCTAL_ESCAPE.sub(lambda match: chr(int(match[1], 8)), fields[4])
        if fstype and mount_point.startswith("/"):
            mounts.append(Mount(PurePosixPath(mount_point), fstype))
    return mounts


def mount_of(path: Path | PurePosixPath, mountinfo: str) -> Mount | None:
    """The mount holding `path` (absolute, symlinks resolved by the caller) (pure).

    The longest mount point that contains it; of equal ones the last listed, which is the
    one mounted on top. None when no listed mount contains it (or there is no mountinfo).
    """
    target = PurePosixPath(path)
    found: Mount | None = None
    for mount in parse_mountinfo(mountinfo):
        if not target.is_relative_to(mount.mount_point):
            continue
        if found is None or len(mount.mount_point.parts) >= len(found.mount_point.parts):
            found = mount
    return found


def filesystem_type(path: Path, mountinfo: str) -> str | None:
    """The type (`ext4`, `nfs4`, `fuse.sshfs`, ...) of the filesystem holding `path` (pure)."""
    mount = mount_of(path, mountinfo)
    return None if mount is None else mount.fstype


def needs_polling(fstype: str | None) -> bool:
    """Whether inotify misses changes on this filesystem type, so it must be polled (pure)."""
    if fstype is None:
        return False  # unknown: events, as on any local disk
    return fstype in POLLED_FILESYSTEMS or fstype.startswith("fuse.")


def read_mountinfo() -> str:
    """This process's mount table; "" where there is none (not Linux, no /proc)."""
    try:
        return os.fsdecode(MOUNTINFO.read_bytes())
    except OSError:
        return ""


def sysctl_hint(name: str, value: int) -> str:
    """How to raise a kernel limit now and for good."""
    return (
        f"raise it with `sysctl {name}={value}`, and to keep it after a reboot put "
        f"`{name}={value}` in /etc/sysctl.d/90-nemowatch.conf"
    )


# --- inbox identity ------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxIdentity:
    """What an inbox folder was when it was watched: its device and the mount holding it."""

    device: int
    mount: Mount | None


class InboxVerdict(StrEnum):
    """What an inbox is now, compared with what was watched."""

    SAME = "same"  # the folder that was watched (or none was recorded yet)
    # Another device, taken as the inbox: the same mount point with the same filesystem
    # type (an NFS or SMB remount gets a new device number), or a filesystem mounted onto
    # or above the inbox since (the share came up after the daemon started).
    REMOUNTED = "remounted"
    # Gone, not a folder, unreadable, or the mount that held it went away and what is seen
    # now is the folder underneath it (or another filesystem took the same mount point).
    MISSING = "missing"


def judge_inbox(recorded: InboxIdentity | None, current: InboxIdentity | None) -> InboxVerdict:
    """Whether the inbox folder seen now (`current`, None if absent) is still the inbox (pure).

    Without mount information a device change cannot be explained, so it counts as missing
    until the recorded device is back.
    """
    if current is None:
        return InboxVerdict.MISSING
    if recorded is None or current.device == recorded.device:
        return InboxVerdict.SAME
    old, new = recorded.mount, current.mount
    if old is None or new is None:
        return InboxVerdict.MISSING
    if new.mount_point == old.mount_point:
        return InboxVerdict.REMOUNTED if new.fstype == old.fstype else InboxVerdict.MISSING
    if new.mount_point.is_relative_to(old.mount_point):
        return InboxVerdict.REMOUNTED
    return InboxVerdict.MISSING  # a shallower mount: the one holding the inbox is gone


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


class _Mounts:
    """The mount table, read at most once per look (only when something needs it)."""

    def __init__(self, read: Callable[[], str]) -> None:
        self._read = read
        self._text: str | None = None

    def mount_of(self, path: Path) -> Mount | None:
        if self._text is None:
            self._text = self._read()
        return mount_of(PurePosixPath(os.path.realpath(path)), self._text)


# A watcher whose threads keep dying is left unhealthy (systemd's watchdog then restarts the
# daemon) rather than restarted in a loop; the scans keep finding files meanwhile.
RESTART_LIMIT = 5
RESTART_WINDOW = 600.0  # seconds

_MISSING_HINT = "the rules on this inbox are paused until it is back; check the mount"


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
        self._clock = clock
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
        self._restart_times: deque[float] = deque()
        self._restarts = 0
        self._restart_limit_logged = False

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    @property
    def restarts(self) -> int:
        """How many times dead watch threads were restarted."""
        return self._restarts

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
            mounts = _Mounts(self._read_mountinfo)
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
        mounts = _Mounts(self._read_mountinfo)
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
        now = self._clock()
        while self._restart_times and now - self._restart_times[0] > RESTART_WINDOW:
            self._restart_times.popleft()
        if len(self._restart_times) >= RESTART_LIMIT:
            if not self._restart_limit_logged:
                self._restart_limit_logged = True
                self._log.error(
                    "watch.restart_limit",
                    problems=problems,
                    restarts=self._restarts,
                    hint=f"watch threads died {RESTART_LIMIT} times in {RESTART_WINDOW:.0f} s;"
                    " left unhealthy so that systemd's watchdog restarts nemowatch;"
                    " the periodic scans still find new files",
                )
            return
        self._restart_limit_logged = False
        self._restart_times.append(now)
        self._restarts += 1
        self._log.warning("watch.observer_restarted", problems=problems, restarts=self._restarts)
        self._teardown()
        try:
            self._launch()
        except Exception as exc:  # stays unhealthy; the next check tries again
            self._log.error("watch.restart_failed", error=repr(exc))
            self._teardown()

    def _dead_threads(self) -> list[str]:
        problems: list[str] = []
        for name, observer in (("events", self._events), ("polling", self._polling)):
            if observer is None:
                continue
            if not observer.is_alive():
                problems.append(f"the {name} observer thread stopped")
            # watchdog's inotify reader thread; a private attribute, so looked up gently.
            reader = getattr(observer, "_inotify_fd", None)
            if isinstance(reader, threading.Thread) and not reader.is_alive():
                problems.append(f"the {name} observer's inotify reader thread stopped")
        alive = {
            emitter.watch
            for observer in (self._events, self._polling)
            if observer is not None
            for emitter in list(observer.emitters)
            if emitter.is_alive()
        }
        for inbox, scheduled in self._scheduled.items():
            if scheduled.watch not in alive:
                problems.append(f"the {scheduled.mode} watch on {inbox} stopped")
        return problems

    # -- one inbox ------------------------------------------------------------------------

    def _reconcile(self, watch: InboxWatch, mounts: _Mounts) -> None:
        """Bring one inbox's watch in line with what is there now."""
        inbox = watch.inbox
        verdict, current, reason = self._examine(inbox, mounts)
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

    def _examine(
        self, inbox: Path, mounts: _Mounts
    ) -> tuple[InboxVerdict, InboxIdentity | None, str]:
        """The verdict on an inbox, what it is now, and why it is missing if it is."""
        try:
            status = os.stat(inbox)
        except FileNotFoundError:
            return InboxVerdict.MISSING, None, "the folder is gone"
        except OSError as exc:  # ESTALE, ENOTCONN (a FUSE daemon gone), EACCES, EIO, ...
            return InboxVerdict.MISSING, None, str(exc)
        if not stat.S_ISDIR(status.st_mode):
            return InboxVerdict.MISSING, None, "no longer a folder"
        recorded = self._identities.get(inbox)
        if recorded is not None and status.st_dev == recorded.device:
            return InboxVerdict.SAME, recorded, ""  # the usual case: no mount table needed
        current = InboxIdentity(status.st_dev, mounts.mount_of(inbox))
        verdict = judge_inbox(recorded, current)
        return (
            verdict,
            current,
            "another filesystem is there now: the one that held it was unmounted",
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
        options = self._watch_options(watch)
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
                    self._warn_fallback(inbox, exc)
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
            fields: dict[str, Any] = {}
            if exc.errno == errno.EMFILE:
                fields = {
                    "sysctl": "fs.inotify.max_user_instances",
                    "hint": sysctl_hint("fs.inotify.max_user_instances", 1024),
                }
            self._log.warning(
                "watch.fallback_to_polling",
                inboxes="all",
                error=str(exc),
                reason="no inotify instance could be created: every inbox is polled",
                **fields,
            )
            return None
        observer.start()
        self._events = observer
        return observer

    def _warn_fallback(self, inbox: Path, exc: OSError) -> None:
        fields: dict[str, Any] = {}
        if exc.errno == errno.ENOSPC:
            fields = {
                "sysctl": "fs.inotify.max_user_watches",
                "hint": sysctl_hint("fs.inotify.max_user_watches", 524288),
            }
        self._log.warning(
            "watch.fallback_to_polling",
            inbox=str(inbox),
            error=str(exc),
            reason="its inotify watch could not be set up: polled instead",
            **fields,
        )

    def _announce_polling(self, inbox: Path, fstype: str | None, reason: str) -> None:
        key = (inbox, f"{fstype}:{reason}")
        if key not in self._announced:
            self._announced.add(key)
            self._log.info("watch.polling", inbox=str(inbox), fstype=fstype, reason=reason)

    def _rule_names(self, inbox: Path) -> list[str]:
        return [rule.name for rule in self._rules if rule.inbox == inbox]

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
