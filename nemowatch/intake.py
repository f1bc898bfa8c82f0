"""Intake: is a candidate ignorable, has it settled, which rule takes it, is it a sidecar
of a video (pure).

Deciding is pure (`classify`, `SettleTracker`) and lives here; doing (`snapshot`, `claim`,
`move_no_replace`, ...) lives in `nemowatch.files`, the few places that touch the disk.

The daemon drives it like this::

    on a hint:   verdict, rule = classify(path, rules)
                 if TAKE: tracker.observe(path, snapshot(path), now, rule.settle_seconds)
                          if closed: tracker.hint_closed(path, now)
    every tick:  for path in tracker.due(now): tracker.observe(path, snapshot(path), now, ...)
                 for path in tracker.settled(now): claim(path, rule.inbox, job_id)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePath

from nemowatch.config import WORK_FOLDERS, Rule, rule_for
from nemowatch.rules import matches

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
    # `clip.txt` / `clip.yaml`: per-file instructions, taken with the video beside it
    SIDECAR = "sidecar"
    # `clip-edited.revise.txt`: revises the output clip-edited.mp4 (the rule: the first
    # that looks here; the job revised says which)
    REVISION = "revision"


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
    if revision_target(path.name) is not None and rule_for(path, in_scope) is None:
        # `clip-edited.revise.txt`: more instructions for a finished job's output
        if shown(path) != str(path):
            return Verdict.BAD_NAME, None
        return Verdict.REVISION, in_scope[0]
    if is_sidecar_name(path.name) and rule_for(path, in_scope) is None:
        # never media: it waits for its video (the rule is the first that looks here)
        if shown(path) != str(path):
            return Verdict.BAD_NAME, None
        return Verdict.SIDECAR, in_scope[0]
    chosen = rule_for(path, in_scope)
    if chosen is None:
        return Verdict.NO_RULE, None
    if shown(path) != str(path):
        return Verdict.BAD_NAME, None
    return Verdict.TAKE, chosen


# ---- sidecars: per-file instructions beside a video ----------------------------------------

# `clip.txt` (one instruction a line) or `clip.yaml` (`instructions:`, `edit:`) beside
# `clip.mp4` adds instructions for that file only.
SIDECAR_SUFFIXES = (".txt", ".yaml", ".yml")
# A video waits at least this long (or its settle window, when shorter) after it last
# changed, even when its writer's close says it is complete: the time a sidecar dropped
# just after it has to arrive. Without a close, its whole settle window.
SIDECAR_WAIT = 2.0
# A sidecar with no video beside it is reported (moved to failed/ with an error.json)
# once it has been still this long: never a job, never deleted.
SIDECAR_GRACE = 60.0


def is_sidecar_name(name: str) -> bool:
    """Whether a file of this name would be a sidecar (by its extension only)."""
    return PurePath(name).suffix.lower() in SIDECAR_SUFFIXES  # ".txt" alone has no suffix


def sidecar_names(video_name: str) -> tuple[str, ...]:
    """The names a sidecar of `video_name` may have: `clip.txt`, `clip.yaml`, `clip.yml`."""
    stem = PurePath(video_name).stem
    return tuple(stem + suffix for suffix in SIDECAR_SUFFIXES)


def companions(sidecar_name: str, names: Sequence[str]) -> list[str]:
    """Of the `names` in a sidecar's folder, those that may be its video: the sidecar's
    stem and another extension (`clip.mp4` for `clip.txt`), or a copy of one still under
    a temporary name (`clip.mp4.part`, rsync's `.clip.mp4.XXXX`). Sidecars are not."""
    stem = PurePath(sidecar_name).stem
    prefixes = (stem + ".", "." + stem + ".")
    return [
        name
        for name in sorted(names)
        if name.startswith(prefixes)
        and not (is_sidecar_name(name) and PurePath(name).stem in (stem, "." + stem))
    ]


def sidecar_floor(settle_seconds: float) -> float:
    """How long a video must have been still before it is taken (see SIDECAR_WAIT)."""
    return min(settle_seconds, SIDECAR_WAIT)


# ---- revisions -----------------------------------------------------------------------

REVISION_SUFFIX = ".revise.txt"  # `clip-edited.revise.txt` revises the output clip-edited.mp4
_VERSION = re.compile(r"^(?P<stem>.*\S) v(?P<version>[1-9][0-9]*)$")


def revision_target(name: str) -> str | None:
    """The output stem a revision file names (`clip-edited` for `clip-edited.revise.txt`,
    also `clip-edited v2` for the second version), or None when it is no revision."""
    if not name.lower().endswith(REVISION_SUFFIX) or len(name) == len(REVISION_SUFFIX):
        return None
    return name[: -len(REVISION_SUFFIX)]


def versioned_stem(stem: str, version: int) -> str:
    """The stem of version `version` of an output: `clip-edited v2` (version 1 is the
    stem as published, with no mark); a versioned stem is versioned from its base."""
    found = _VERSION.match(stem)
    base = found["stem"] if found else stem
    return base if version <= 1 else f"{base} v{version}"


def version_of(stem: str) -> tuple[str, int]:
    """(base stem, version) of an output stem: `clip v3` -> ("clip", 3), `clip` -> 1."""
    found = _VERSION.match(stem)
    return (found["stem"], int(found["version"])) if found else (stem, 1)


# ---- folders (batches) -----------------------------------------------------------------

# The batch's own instructions, inside a folder: not one of its files.
BATCH_INSTRUCTIONS = "instructions.txt"
# What operating systems leave in folders: not files of a batch.
DEFAULT_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class FolderEntry:
    """One entry of a folder dropped into an inbox, as listed (no link is followed)."""

    name: str
    kind: str  # "file", "folder" or "other" (a link, a FIFO, a socket)
    size: int = 0
    mtime_ns: int = 0


class FolderVerdict(StrEnum):
    WAIT = "wait"  # something in it is still being written (a partial or temporary name)
    EMPTY = "empty"  # no file to edit in it: reported, never a job
    NESTED = "nested"  # it holds a folder: a batch is one level of files; reported
    STRANGE = "strange"  # it holds a link, FIFO or socket: never opened; reported
    BATCH = "batch"  # one batch job, of `files` in name order


@dataclass(frozen=True)
class FolderJudgement:
    verdict: FolderVerdict
    files: tuple[str, ...] = ()  # the files to edit, in name order (BATCH)
    instructions: str | None = None  # BATCH_INSTRUCTIONS, when the folder holds one
    reason: str = ""  # for a report: what is wrong, naming the entry


def judge_folder(entries: Sequence[FolderEntry], ignore: Sequence[str]) -> FolderJudgement:
    """What a folder dropped into an inbox is, once it has stopped changing (see
    `folder_snapshot`): a batch of its files, or why it is not one. `ignore`: the rule's
    ignore patterns (`Rule.all_ignore`): temporary names mean a copy is still going;
    OS litter (.DS_Store, Thumbs.db) is not a file of the batch."""
    files: list[str] = []
    instructions = None
    for entry in sorted(entries, key=lambda item: item.name):
        if entry.name in DEFAULT_LITTER:
            continue
        if matches(entry.name, ignore):
            if entry.name.startswith("."):
                continue  # hidden files are never taken, in a folder as in an inbox
            return FolderJudgement(FolderVerdict.WAIT, reason=f"{entry.name} is being written")
        if entry.kind == "folder":
            return FolderJudgement(
                FolderVerdict.NESTED,
                reason=f"it holds a folder, {entry.name}/: a batch folder holds files only"
                " (move its files up, or drop it into the inbox as a batch of its own)",
            )
        if entry.kind != "file":
            return FolderJudgement(
                FolderVerdict.STRANGE,
                reason=f"{entry.name} is not a regular file (a link, FIFO or socket):"
                " replace it by the file itself",
            )
        if entry.name.lower() == BATCH_INSTRUCTIONS:
            instructions = entry.name
        else:
            files.append(entry.name)
    if not files:
        return FolderJudgement(
            FolderVerdict.EMPTY, reason="it holds no file to edit: put the files in it first"
        )
    return FolderJudgement(FolderVerdict.BATCH, tuple(files), instructions)


def folder_rule(path: PurePath, rules: Sequence[Rule], names: Sequence[str]) -> Rule | None:
    """The rule that takes a folder dropped into an inbox as a batch: of the rules on that
    inbox that are not `recursive` (those take the files of its folders one by one), the
    first (in config order) whose `match` accepts one of the folder's file `names`; with no
    file in it yet, the first of them (so that an empty folder is reported in its inbox).
    None: not a batch folder, or no rule's match accepts any of its files."""
    candidates = []
    for rule in rules:
        try:
            relative = path.relative_to(rule.inbox)
        except ValueError:
            continue
        if len(relative.parts) != 1 or rule.recursive:
            continue
        name = relative.parts[0]
        if name in WORK_FOLDERS or name.startswith(".") or matches(name, rule.all_ignore):
            continue
        candidates.append(rule)
    if not names:
        return candidates[0] if candidates else None
    for rule in candidates:
        if any(matches(name, rule.match) and not matches(name, rule.ignore) for name in names):
            return rule
    return None


def folder_snapshot(folder: Snapshot, entries: Sequence[FolderEntry]) -> Snapshot:
    """A folder's contents as one snapshot, for `SettleTracker`: a file added, removed,
    renamed (the folder's own mtime), grown or touched changes it."""
    return Snapshot(
        size=sum(entry.size for entry in entries) + len(entries),
        mtime_ns=max([folder.mtime_ns, *(entry.mtime_ns for entry in entries)]),
        inode=folder.inode,
        device=folder.device,
    )


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
    floor: float = 0.0  # even with a close, still at least this long (see SIDECAR_WAIT)


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

    def observe(
        self,
        path: Path,
        snap: Snapshot | None,
        now: float,
        settle_seconds: float,
        floor: float = 0.0,
    ) -> None:
        """Record a look at `path`; None (gone, or no longer a regular file) forgets it.

        `floor`: seconds it must have been still even after a close-write hint."""
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
                floor=floor,
            )
            return
        candidate.settle_seconds = settle_seconds  # the rule may have been reloaded
        candidate.floor = floor
        candidate.looks += 1
        candidate.last_look = now
        still = now - candidate.stable_since
        window_done = still >= settle_seconds
        candidate.ready = (candidate.closed_hint and still >= floor) or window_done
        if candidate.ready:
            # Looked at again only if nobody collects it from settled() in time.
            candidate.next_due = now + self._recheck_seconds
        else:
            end = settle_seconds if not candidate.closed_hint else min(floor, settle_seconds)
            candidate.next_due = min(now + self._recheck_seconds, candidate.stable_since + end)

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

    def settled_snapshots(
        self, now: float, limit: int | None = None
    ) -> list[tuple[Path, Snapshot]]:
        """`settled`, each with the snapshot it settled with: pass it to `claim` as
        `expected`, so that a file changed since its last look is not taken.

        At most `limit` (None: all): the others stay tracked, settled, and are looked at
        again every recheck interval until they are collected (or gone)."""
        result: list[tuple[Path, Snapshot]] = []
        for path, candidate in self._candidates.items():
            if limit is not None and len(result) >= limit:
                break
            if candidate.ready and now - candidate.last_look <= self._recheck_seconds:
                result.append((path, candidate.snapshot))
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
