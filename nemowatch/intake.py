"""Intake: is a candidate ignorable, has it settled, which rule takes it; claim by rename.

Deciding is pure (`classify`, `SettleTracker`); doing is in a few small functions at the
end (`snapshot`, `claim`, `move_no_replace`, `link_no_replace`, `linked_in`), the only
places here that touch the disk.

The daemon drives it like this::

    on a hint:   verdict, rule = classify(path, rules)
                 if TAKE: tracker.observe(path, snapshot(path), now, rule.settle_seconds)
                          if closed: tracker.hint_closed(path, now)
    every tick:  for path in tracker.due(now): tracker.observe(path, snapshot(path), now, ...)
                 for path in tracker.settled(now): claim(path, rule.inbox, job_id)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePath

from nemowatch.config import WORK_FOLDERS, Rule
from nemowatch.errors import MediaError, NemowatchError, TransientError
from nemowatch.rules import matches, rule_for

# ---------------------------------------------------------------------------------------------
# Decisions (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a settled file must keep unchanged between two looks."""

    size: int
    mtime_ns: int
    inode: int  # a new inode means the file was replaced (rename-into-place, rsync)
    device: int


class Verdict(StrEnum):
    IGNORED = "ignored"  # not ours: temp/partial names, dotfiles, work folders, outside inboxes
    NO_RULE = "no_rule"  # inside an inbox, but no rule's `match` accepts it
    BAD_NAME = "bad_name"  # a rule accepts it, but its name is not UTF-8: renamed, it is taken
    TAKE = "take"  # a rule takes it, once it has settled


# What the daemon says, once, about a file in an inbox that it does not take: event, hint.
NOT_TAKEN = {
    Verdict.NO_RULE: ("file.no_rule", "no rule's match accepts this name"),
    # Such names (from an old camera, a zip, another system's share) cannot be written to
    # the ledger, the logs or the error reports as text: the file is left as it is.
    Verdict.BAD_NAME: (
        "file.bad_name",
        "its name is not valid UTF-8 (shown with \\x escapes): rename it, for example"
        " with `convmv -f latin1 -t utf8 --notest`, and it is taken",
    ),
}


def shown(path: PurePath) -> str:
    """`path` as text that can always be printed: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def classify(path: PurePath, rules: Sequence[Rule]) -> tuple[Verdict, Rule | None]:
    """Decide what to do with `path`; the rule is given only with `Verdict.TAKE`.

    When several rules share an inbox, the first one (in config order) that accepts wins.
    """
    in_scope: list[Rule] = []  # rules that would look at this file at all
    inside_an_inbox = False
    for rule in rules:
        try:
            relative = path.relative_to(rule.inbox)
        except ValueError:
            continue
        parts = relative.parts
        if not parts:
            continue  # the inbox itself
        inside_an_inbox = True
        # The daemon's own folders and anything hidden are never taken, whichever rule asks:
        # a claimed file must never be claimed again.
        if len(parts) > 1 and parts[0] in WORK_FOLDERS:
            return Verdict.IGNORED, None
        if any(part.startswith(".") for part in parts):
            return Verdict.IGNORED, None
        if len(parts) > 1 and not rule.recursive:
            continue
        if matches(path.name, rule.all_ignore):
            continue
        in_scope.append(rule)
    if not inside_an_inbox or not in_scope:
        return Verdict.IGNORED, None
    chosen = rule_for(path, in_scope)
    if chosen is None:
        return Verdict.NO_RULE, None
    if shown(path) != str(path):
        return Verdict.BAD_NAME, None
    return Verdict.TAKE, chosen


@dataclass
class _Candidate:
    snapshot: Snapshot
    settle_seconds: float
    stable_since: float  # when `snapshot` was first seen
    last_look: float
    looks: int  # observations that showed `snapshot`
    next_due: float
    closed_hint: bool = False  # the next look that shows `snapshot` again settles it
    ready: bool = False


class SettleTracker:
    """Which candidates have stopped changing. Pure: no I/O, the clock is passed in.

    A file settles when two or more looks have shown the same snapshot (size, mtime,
    inode, device) and those looks span at least its settle window; a close-write hint
    shortens the window to "the next look still shows the same snapshot". Times are
    monotonic seconds.
    """

    def __init__(self, recheck_seconds: float = 1.0) -> None:
        if recheck_seconds <= 0:
            raise ValueError("recheck_seconds must be positive")
        # Longest gap between two looks at a candidate: a change in the middle of a long
        # settle window restarts it early instead of only being noticed at its end.
        self._recheck_seconds = recheck_seconds
        self._candidates: dict[Path, _Candidate] = {}

    def observe(self, path: Path, snap: Snapshot | None, now: float, settle_seconds: float) -> None:
        """Record a look at `path`; None (gone, or no longer a regular file) forgets it."""
        if snap is None:
            self._candidates.pop(path, None)
            return
        candidate = self._candidates.get(path)
        if candidate is None or candidate.snapshot != snap:
            self._candidates[path] = _Candidate(
                snapshot=snap,
                settle_seconds=settle_seconds,
                stable_since=now,
                last_look=now,
                looks=1,
                next_due=now + min(self._recheck_seconds, settle_seconds),
            )
            return
        candidate.settle_seconds = settle_seconds  # the rule may have been reloaded
        candidate.looks += 1
        candidate.last_look = now
        window_done = now - candidate.stable_since >= settle_seconds
        candidate.ready = candidate.closed_hint or window_done
        if candidate.ready:
            # Looked at again only if nobody collects it from settled() in time.
            candidate.next_due = now + self._recheck_seconds
        else:
            candidate.next_due = min(
                now + self._recheck_seconds, candidate.stable_since + settle_seconds
            )

    def hint_closed(self, path: Path, now: float) -> None:
        """A writer closed `path`: look again now, and settle it if nothing changed.

        Only affects a tracked path; call `observe` first.
        """
        candidate = self._candidates.get(path)
        if candidate is None:
            return
        candidate.closed_hint = True
        candidate.ready = False  # the confirming look must come after the close
        candidate.next_due = now

    def due(self, now: float) -> list[Path]:
        """Paths to stat again now (then pass the result to `observe`)."""
        return [path for path, candidate in self._candidates.items() if candidate.next_due <= now]

    def settled(self, now: float) -> list[Path]:
        """Paths that have settled, oldest first; they are forgotten here, so claim them now.

        A confirmation older than one recheck interval is stale (the caller fell behind):
        such a path is left to be looked at again instead.
        """
        return [path for path, _ in self.settled_snapshots(now)]

    def settled_snapshots(self, now: float) -> list[tuple[Path, Snapshot]]:
        """`settled`, each with the snapshot it settled with: pass it to `claim` as
        `expected`, so that a file changed since its last look is not taken."""
        result = [
            (path, candidate.snapshot)
            for path, candidate in self._candidates.items()
            if candidate.ready and now - candidate.last_look <= self._recheck_seconds
        ]
        for path, _ in result:
            del self._candidates[path]
        return result

    def forget(self, path: Path) -> None:
        """Stop tracking `path` (it was claimed, deleted, or no longer matches)."""
        self._candidates.pop(path, None)

    def __contains__(self, path: object) -> bool:
        return path in self._candidates

    def __len__(self) -> int:
        return len(self._candidates)


def free_name(folder: Path, name: str) -> str:
    """`name` if `folder` has no entry by that name, else the first free `stem (2).ext`, ..."""
    _check_plain_name(name)
    if not os.path.lexists(folder / name):
        return name
    pure = PurePath(name)
    stem, suffix = pure.stem, pure.suffix
    number = 2
    while os.path.lexists(folder / f"{stem} ({number}){suffix}"):
        number += 1
    return f"{stem} ({number}){suffix}"


# ---------------------------------------------------------------------------------------------
# Effects: the only filesystem access of intake
# ---------------------------------------------------------------------------------------------

# Errors that mean "the path is not there (any more)", as opposed to "cannot look".
_GONE = (FileNotFoundError, NotADirectoryError)

# os.link failures that mean "this filesystem does not do hard links here", not a real error.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def snapshot(path: Path) -> Snapshot | None:
    """The file's current snapshot, or None if it is gone or is not a regular file.

    Symlinks are never followed (a link is not a file we take). Raises MediaError when
    the file exists but cannot be examined (permissions).
    """
    try:
        status = os.lstat(path)
    except _GONE:
        return None
    except OSError as exc:
        raise _translate(exc, "examine", path) from exc
    if not stat.S_ISREG(status.st_mode):
        return None
    return Snapshot(
        size=status.st_size,
        mtime_ns=status.st_mtime_ns,
        inode=status.st_ino,
        device=status.st_dev,
    )


def claim_path(inbox: Path, job_id: str, name: str) -> Path:
    """Where a claimed file lives while its job runs: `inbox/processing/<job_id>__<name>`."""
    _check_plain_name(job_id)
    return inbox / "processing" / f"{job_id}__{name}"


def claim(path: Path, inbox: Path, job_id: str, *, expected: Snapshot | None = None) -> Path | None:
    """Move `path` into `inbox/processing/<job_id>__<name>` by one atomic rename.

    Returns the new path, or None if the file is gone or no longer a regular file (another
    daemon or a person took it first: of two renames of one file, exactly one succeeds).
    With `expected` (the snapshot it settled with), None too when the file was written
    to or replaced since: it stays in the inbox (is put back) and must settle again.
    """
    destination = claim_path(inbox, job_id, path.name)
    processing = destination.parent
    for attempt in range(2):
        current = snapshot(path)
        if current is None or (expected is not None and current != expected):
            return None
        try:
            processing.mkdir(parents=True, exist_ok=True)
            # rename(2) would silently replace an existing destination; the job id makes
            # it unique, so an existing one is a caller bug, never something to overwrite.
            if os.path.lexists(destination):
                raise ValueError(f"job id {job_id!r} was used before: {destination} exists")
            os.rename(path, destination)  # renames a symlink itself, never its target
        except _GONE:
            # Either the file went, or processing/ was removed between mkdir and rename.
            if attempt == 0 and os.path.lexists(path):
                continue
            return None
        except OSError as exc:
            raise _translate(exc, "claim", path, folder=processing) from exc
        break
    moved = snapshot(destination)
    if moved is None or (expected is not None and moved != expected):
        # The file was swapped for something else (a link, a folder, another file) or
        # written to between the check and the rename: put it back and leave it alone.
        _put_back(destination, path)
        return None
    return destination


def move_no_replace(source: Path, folder: Path, name: str) -> Path:
    """Move `source` into `folder` as `name`, or `stem (2).ext`...; never overwrites.

    Atomic on one filesystem (hard link, then unlink the source); where hard links are
    not supported, a rename after checking the name is free; across filesystems, a copy
    to a hidden temporary name first. Creates `folder`. Returns the final path.

    Resumable: a move interrupted between the link and the unlink (the daemon killed)
    left the file under both names; moving it again finishes that move instead of making
    a second copy beside the first.
    """
    _check_plain_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = _linked_in(source, folder) or _link_no_replace(source, folder, name)
        if os.path.lexists(source):  # gone already when it was renamed (no hard links)
            os.unlink(source)
        return target
    except OSError as exc:
        raise _translate(exc, "move", source, folder=folder) from exc


def link_no_replace(source: Path, folder: Path, name: str) -> Path:
    """Give `source` a second name in `folder`: `name`, or `stem (2).ext`...; never
    overwrites, and `source` stays (where the filesystem has no hard links it is renamed
    instead, and is then gone). Creates `folder`. Returns the new path."""
    _check_plain_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _link_no_replace(source, folder, name)
    except OSError as exc:
        raise _translate(exc, "link", source, folder=folder) from exc


def linked_in(source: Path, folder: Path) -> Path | None:
    """A visible name in `folder` that is the same file as `source` (a hard link), if any:
    what an interrupted move or publish leaves behind. None when `source` is gone."""
    try:
        return _linked_in(source, folder)
    except OSError as exc:
        raise _translate(exc, "examine", source, folder=folder) from exc


def _linked_in(source: Path, folder: Path) -> Path | None:
    try:
        status = os.lstat(source)
        if status.st_nlink < 2 or not stat.S_ISREG(status.st_mode):
            return None  # the only name it has: nothing to look for
        with os.scandir(folder) as listing:
            for entry in listing:
                # the inode comes with the listing; only a match costs a stat
                if entry.inode() != status.st_ino or entry.name.startswith("."):
                    continue
                other = entry.stat(follow_symlinks=False)
                if other.st_dev == status.st_dev and Path(entry.path) != source:
                    return Path(entry.path)
    except _GONE:
        return None
    return None


def _link_no_replace(source: Path, folder: Path, name: str) -> Path:
    while True:
        target = folder / free_name(folder, name)
        try:
            os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            continue  # taken since free_name looked: try the next number
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return _copy_across(source, folder, name)
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(target):
                continue
            os.rename(source, target)
        return target


def _copy_across(source: Path, folder: Path, name: str) -> Path:
    # Copy under a hidden name (the watcher ignores it), then publish it without
    # replacing anything: no reader ever sees a partial file. The source stays.
    temporary = folder / f".{name}.{uuid.uuid4().hex}.partial"
    try:
        shutil.copy2(source, temporary, follow_symlinks=False)
        return _link_no_replace(temporary, folder, name)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _put_back(current: Path, original: Path) -> None:
    # If even that fails there is nothing more to do: it is not a file we would process.
    with contextlib.suppress(NemowatchError):
        move_no_replace(current, original.parent, original.name)


def _check_plain_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")


def _translate(
    exc: OSError, action: str, path: Path, *, folder: Path | None = None
) -> NemowatchError:
    """One OSError, as the error nemowatch reports (called once, at this boundary)."""
    if isinstance(exc, PermissionError):
        places = f"{path.parent}" + (f" and {folder}" if folder is not None else "")
        return MediaError(
            f"cannot {action} {path}: permission denied",
            hint=f"give the user running nemowatch read and write access to {places}",
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = folder if folder is not None else path.parent
        return TransientError(
            f"cannot {action} {path}: no space left in {where}",
            hint="free some disk space; the job is retried",
        )
    if exc.errno == errno.EXDEV:
        return MediaError(
            f"cannot {action} {path}: it is on another filesystem than {folder}",
            hint="keep subfolders of an inbox on the same filesystem as the inbox",
        )
    return MediaError(f"cannot {action} {path}: {exc.strerror or exc}")
