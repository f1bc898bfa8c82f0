"""Folders dropped into an inbox (batches, issue 13): part of intake.

A folder directly inside the inbox of a rule that is not `recursive` is one batch. It is
watched as a whole (`intake.folder_snapshot`: a file added, renamed, grown or touched
changes it) until it has been still for the rule's settle window, then judged
(`intake.judge_folder`) and, when it is a batch, claimed by one rename into processing/:

- `batch: combine`: one job, of the whole folder (the engine makes one video of it);
- `batch: each`: one job per file, all written to the ledger in one write before the
  rename, so a kill between the two leaves either nothing or every job
  (`finish_claim` finishes the rename at the next start).

A file beside another of its stem with a sidecar's extension (`clip.txt` beside
`clip.mp4`) is that file's sidecar; `instructions.txt` is the whole batch's.

What is not a batch is said once and left, or reported: an empty folder stays where it is
(it may be about to be filled) and is logged; a folder holding a folder or a link is moved
to failed/ beside an error.json that says what to change.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from nemowatch.config import BatchMode, Rule
from nemowatch.daemon.refusals import refuse
from nemowatch.engines.formats import is_footage_name
from nemowatch.errors import MediaError, NemowatchError
from nemowatch.files import claim_folder, claim_path, folder_entries, folder_look
from nemowatch.intake import (
    FolderEntry,
    FolderVerdict,
    SettleTracker,
    Snapshot,
    folder_rule,
    is_sidecar_name,
    judge_folder,
    shown,
)
from nemowatch.jobs import Batch, JobRecord
from nemowatch.ledger import Ledger, NewJob, new_job_id
from nemowatch.rules import matches

log = structlog.get_logger("nemowatch.daemon")

REMEMBERED = 10_000  # folders said once (empty, no rule) remembered so each is said once


class Batches:
    """The folders being watched until they settle, and what is known of the others."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        engine: str,
        now: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._engine = engine
        self._now = now
        self._tracker = SettleTracker()
        self._rules: dict[Path, Rule] = {}  # the rule each tracked folder was offered for
        self._said: dict[Path, Snapshot] = {}  # folders said once, as they were then

    @property
    def waiting(self) -> int:
        return len(self._tracker)

    def offer(self, folder: Path, rules: Sequence[Rule], now: float) -> bool:
        """A folder in an inbox worth a look. True if it is settling now."""
        snap, entries = self._look(folder)
        if snap is None or entries is None:
            self.forget(folder)
            return False
        rule = folder_rule(folder, rules, [entry.name for entry in entries if entry.kind == "file"])
        if rule is None:
            self.forget(folder)
            self._say_once(folder, snap, "batch.no_rule", "no rule's match accepts its files")
            return False
        if self._said.get(folder) == snap or self._known(folder, snap):
            return False
        self._rules[folder] = rule
        self._tracker.observe(folder, snap, now, rule.settle_seconds)
        return True

    def recheck(self, now: float) -> None:
        for folder in self._tracker.due(now):
            rule = self._rules.get(folder)
            snap, _ = self._look(folder)
            if rule is None or snap is None:
                self.forget(folder)
                continue
            self._tracker.observe(folder, snap, now, rule.settle_seconds)

    def settled(self, now: float, limit: int | None = None) -> list[tuple[Path, Snapshot]]:
        return self._tracker.settled_snapshots(now, limit)

    def forget(self, folder: Path) -> None:
        self._tracker.forget(folder)
        self._rules.pop(folder, None)

    def take(self, folder: Path, settled: Snapshot, rules: Sequence[Rule], now: float) -> list[str]:
        """Judge a settled folder and claim it as a batch: the ids of its jobs (none when
        it was not taken: changed, gone, not a batch, or reported)."""
        self._rules.pop(folder, None)
        snap, entries = self._look(folder)
        if snap is None or entries is None or snap != settled:
            return []  # changed since it settled: offered again by the next look
        files = [entry.name for entry in entries if entry.kind == "file"]
        rule = folder_rule(folder, rules, files)
        if rule is None or self._known(folder, snap):
            return []
        judgement = judge_folder(entries, rule.all_ignore)
        if judgement.verdict is FolderVerdict.WAIT:
            # a file in it still has a temporary name: a whole settle window again after that
            self._rules[folder] = rule
            self._tracker.observe(folder, snap, now, rule.settle_seconds)
            return []
        if judgement.verdict is FolderVerdict.EMPTY:
            self._say_once(folder, snap, "batch.empty", judgement.reason, warn=True)
            return []
        if judgement.verdict is not FolderVerdict.BATCH:
            self._report(folder, rule, judgement.reason)
            return []
        return self._claim(folder, snap, rule, entries, judgement.files, judgement.instructions)

    def _claim(
        self,
        folder: Path,
        snap: Snapshot,
        rule: Rule,
        entries: Sequence[FolderEntry],
        files: tuple[str, ...],
        instructions: str | None,
    ) -> list[str]:
        claim_id = new_job_id()
        claimed = claim_path(rule.inbox, claim_id, folder.name)
        batch = Batch(
            id=claim_id,
            mode=rule.batch.value,
            folder=folder,
            claimed=claimed,
            files=files,
            instructions=instructions,
            identity=(snap.size, snap.mtime_ns, snap.inode),
        )
        if rule.batch is BatchMode.COMBINE:
            new = [
                NewJob(
                    job_id=claim_id,
                    rule=rule.name,
                    engine=self._engine,
                    source=folder,
                    claimed=claimed,
                    source_size=snap.size,
                    source_mtime_ns=snap.mtime_ns,
                    source_inode=snap.inode,
                    batch=batch,
                )
            ]
        else:
            new = _each(batch, rule, self._engine, {entry.name: entry for entry in entries})
        records = self._ledger.create_all(new)
        try:
            moved = claim_folder(folder, rule.inbox, claim_id, expected=snap)
        except NemowatchError as error:
            moved = None
            log.error("intake.claim_failed", path=str(folder), error=str(error), hint=error.hint)
        if moved is None:
            for record in records:
                self._ledger.discard(record.id)
            return []
        if rule.batch is BatchMode.COMBINE:
            edited = {name for name in files if is_footage_name(name)}
        else:
            edited = {job.source.name for job in new} | {
                Path(side["source"]).name for job in new for side in job.sidecars or []
            }
        log.info(
            "batch.claimed",
            folder=str(folder),
            rule=rule.name,
            mode=rule.batch.value,
            files=len(files),
            jobs=[record.id for record in records],
            **({"left_as_they_are": sorted(set(files) - edited)} if set(files) - edited else {}),
        )
        return [record.id for record in records]

    def finish_claim(self, record: JobRecord, rule: Rule) -> bool:
        """A batch job recorded whose folder may not have been renamed into processing/ (a
        kill between the two): rename it now if it is there, unchanged. False when it is
        not (gone, changed, or taken by someone else): the caller forgets the job."""
        batch = record.batch
        assert batch is not None
        if os.path.lexists(batch.claimed):
            return True
        snap, _ = self._look(batch.folder)
        if snap is None or (snap.size, snap.mtime_ns, snap.inode) != batch.identity:
            return False
        try:
            return claim_folder(batch.folder, rule.inbox, batch.id, expected=snap) is not None
        except NemowatchError as error:
            log.error("intake.claim_failed", path=str(batch.folder), error=str(error))
            return False

    # -- looking, and saying ---------------------------------------------------------------

    def _look(self, folder: Path) -> tuple[Snapshot | None, list[FolderEntry] | None]:
        try:
            return folder_look(folder), folder_entries(folder)
        except MediaError as error:
            snap = Snapshot(0, 0, 0, 0)
            self._say_once(folder, snap, "intake.unreadable", str(error), warn=True)
            return None, None

    def _known(self, folder: Path, snap: Snapshot) -> bool:
        """A batch taken from this folder as it is now (put back after its jobs: `keep`)."""
        return self._ledger.knows_batch(folder, (snap.size, snap.mtime_ns, snap.inode))

    def _say_once(
        self, folder: Path, snap: Snapshot, event: str, reason: str, *, warn: bool = False
    ) -> None:
        if self._said.get(folder) == snap:
            return
        if len(self._said) >= REMEMBERED:
            self._said.clear()
        self._said[folder] = snap
        (log.warning if warn else log.info)(event, path=shown(folder), hint=reason)

    def _report(self, folder: Path, rule: Rule, reason: str) -> None:
        """A folder that cannot be a batch: to failed/, beside an error.json saying why."""
        report = {
            "source": str(folder),
            "rule": rule.name,
            "failed_at": self._now().astimezone().isoformat(timespec="seconds"),
            "step": "intake",
            "error": f"the folder {folder.name} is not a batch: {reason}",
            "hint": "change the folder as said, then move it back into the inbox",
            "retryable": False,
            "retry_with": f"move {folder.name}/ from {rule.inbox / 'failed'}/ back into"
            f" {folder.parent}/",
        }
        refuse(folder, rule, report, kind="batch", event="batch.refused", hint=reason)


def _each(batch: Batch, rule: Rule, engine: str, entries: dict[str, FolderEntry]) -> list[NewJob]:
    """`batch: each`: a job per file; a file's sidecar (`clip.txt` beside `clip.mp4`) goes
    with it, not as a job of its own."""
    by_stem: dict[str, list[str]] = {}
    for name in batch.files:
        by_stem.setdefault(Path(name).stem, []).append(name)
    new = []
    for name in batch.files:
        stem = Path(name).stem
        if is_sidecar_name(name) and any(
            not is_sidecar_name(other) for other in by_stem.get(stem, ())
        ):
            continue  # a sidecar, taken with its file
        if not matches(name, rule.match) or matches(name, rule.ignore):
            continue  # not the rule's kind of file: it goes with the folder, untouched
        sidecars = [
            {"source": str(batch.folder / other), "claimed": str(batch.claimed / other)}
            for other in by_stem.get(stem, ())
            if other != name and is_sidecar_name(other) and not is_sidecar_name(name)
        ]
        entry = entries[name]
        new.append(
            NewJob(
                job_id=new_job_id(),
                rule=rule.name,
                engine=engine,
                source=batch.folder / name,
                claimed=batch.claimed / name,
                source_size=entry.size,
                source_mtime_ns=entry.mtime_ns,
                sidecars=sidecars or None,
                batch=batch,
            )
        )
    return new


def folder_batch(folder: Path, rule: Rule, claim_id: str) -> Batch:
    """A folder given to `nemowatch process` as a batch of `batch: combine`, left where it
    is. Raises LookupError saying why it cannot be one."""
    if rule.batch is not BatchMode.COMBINE:
        raise LookupError(
            f"{folder.name} is a folder and rule {rule.name!r} edits each file on its own"
            " (batch: each): give `process` one file at a time, or a rule with batch: combine"
        )
    judgement = judge_folder(folder_entries(folder) or [], rule.all_ignore)
    if judgement.verdict is not FolderVerdict.BATCH:
        raise LookupError(f"the folder {folder.name} is not a batch: {judgement.reason}")
    return Batch(
        id=claim_id,
        mode=rule.batch.value,
        folder=folder,
        claimed=folder,
        files=judgement.files,
        instructions=judgement.instructions,
    )


def batch_folder(path: Path, rules: Sequence[Rule]) -> bool:
    """Whether `path` is a folder directly inside the inbox of a rule that is not
    recursive (one lstat, only then): a batch, for intake to look at."""
    if not any(path.parent == rule.inbox and not rule.recursive for rule in rules):
        return False
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
