"""The effectful half of intake: looking at candidates, letting them settle, claiming them.

The decisions are `nemowatch.intake`'s (ignore, match, settle); this part does the looking
(one stat), keeps what must be remembered between looks (files that settle, paths already
refused, unreadable or unmatched, each logged once) and claims: the job is written to the
ledger first and the file renamed into processing/ second, so a file there that the ledger
does not know is never ours (another nemowatch sharing the inbox is working on it), and a
kill between the two is finished or undone at the next start (`finish_claim`).

A video's sidecars (`clip.txt` beside `clip.mp4`, see `daemon.sidecars`) are claimed with
it, after it, into processing/ too; if one changed or went meanwhile, everything is given
back to settle again as a pair.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path, PurePath

import structlog

from nemowatch.config import Rule
from nemowatch.daemon.batches import Batches, batch_folder
from nemowatch.daemon.pauses import Pauses
from nemowatch.daemon.revisions import Revisions
from nemowatch.daemon.sidecars import Sidecars
from nemowatch.errors import AlreadyClaimed, MediaError, NemowatchError
from nemowatch.files import claim, claim_path, snapshot, unclaim
from nemowatch.intake import (
    NOT_TAKEN,
    SIDECAR_GRACE,
    SettleTracker,
    Snapshot,
    Verdict,
    classify,
    shown,
    sidecar_floor,
)
from nemowatch.ledger import JobRecord, Ledger, new_job_id

log = structlog.get_logger("nemowatch.daemon")

UNMATCHED_MEMORY = 10_000
_TAKEN = (
    Verdict.TAKE,
    Verdict.REVISION,
)  # settled, then claimed as a job  # unmatched paths remembered so each is logged once


class Intake:
    """Candidates in, claimed jobs out. Holds the rules in force (replaced on reload)."""

    def __init__(
        self,
        ledger: Ledger,
        rules: Sequence[Rule],
        *,
        engine: str,
        pauses: Pauses,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = datetime.now,
        sidecar_grace: float = SIDECAR_GRACE,
    ) -> None:
        """`sidecar_grace`: seconds a sidecar with no video beside it waits before it is
        reported (moved to failed/ with an error.json)."""
        self._ledger = ledger
        self._rules = tuple(rules)
        self._engine = engine
        self._pauses = pauses
        self._clock = clock
        self._tracker = SettleTracker()
        self._unmatched: dict[Path, None] = {}
        self._unreadable: dict[Path, None] = {}
        self._claim_failures: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns)
        self._sidecars = Sidecars(
            self.look,
            verdict=self._verdict,
            clock=clock,
            now=now,
            grace=sidecar_grace,
            taken=functools.partial(_taken_before, ledger),
        )
        self._batches = Batches(ledger, engine=engine, now=now)
        self._revisions = Revisions(ledger, engine=engine, now=now)
        self._settled_folders: set[Path] = set()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def update_rules(self, rules: Sequence[Rule]) -> None:
        """Take files by `rules` from now on (a reload); unmatched files are logged anew."""
        self._rules = tuple(rules)
        self._unmatched.clear()

    def rule(self, name: str) -> Rule | None:
        """The rule in force called `name`; None when the config no longer has it."""
        return next((rule for rule in self._rules if rule.name == name), None)

    @property
    def settling(self) -> int:
        """How many files are being watched until they settle (sidecars waiting too)."""
        return len(self._tracker) + self._sidecars.waiting + self._batches.waiting

    def offer(self, path: Path, closed: bool = False) -> bool:
        """A path worth a look (from an event or a scan). True if it is settling now.

        `closed`: an event said its writer finished (close-write, renamed into place).
        """
        if batch_folder(path, self._rules):
            return self._batches.offer(
                path, _available(self._rules, self._ledger.node, self._pauses), self._clock()
            )
        verdict, rule = classify(path, self._rules)
        if verdict is Verdict.IGNORED:
            return False
        if rule is not None and _held(rule, self._ledger.node, self._pauses):
            return False  # its inbox is gone, or it is paused: not until it is back
        if verdict is Verdict.SIDECAR and rule is not None:
            return self._sidecars.offer(path, rule, self._clock())
        if verdict not in _TAKEN or rule is None:
            if path not in self._unmatched and path.is_file():
                if len(self._unmatched) >= UNMATCHED_MEMORY:
                    self._unmatched.clear()
                self._unmatched[path] = None
                event, hint = NOT_TAKEN[verdict]
                log.info(event, path=shown(path), hint=hint)
            return False
        current = self.look(path)
        now = self._clock()
        if current is None or self.known(path, current):
            self._tracker.forget(path)
            return False
        self._tracker.observe(
            path, current, now, rule.settle_seconds, sidecar_floor(rule.settle_seconds)
        )
        if closed:
            self._tracker.hint_closed(path, now)
        return True

    def recheck(self, now: float) -> None:
        """Look again at the settling files whose turn it is."""
        for path in self._tracker.due(now):
            verdict, rule = classify(path, self._rules)
            if verdict not in _TAKEN or rule is None:
                self._tracker.forget(path)
                continue
            self._tracker.observe(
                path, self.look(path), now, rule.settle_seconds, sidecar_floor(rule.settle_seconds)
            )
        self._sidecars.recheck(now)
        self._batches.recheck(now)

    def settled(self, now: float, limit: int | None = None) -> list[tuple[Path, Snapshot]]:
        """The files that have settled, each with the snapshot it settled with (for
        `take`), at most `limit` of them (None: all); these are no longer tracked, so take
        them now. The others stay tracked, settled, until there is room for them.
        Folders (batches) come after files; pass each to `take_all`."""
        files = self._tracker.settled_snapshots(now, limit)
        room = None if limit is None else max(0, limit - len(files))
        folders = self._batches.settled(now, room) if room != 0 else []
        self._settled_folders.update(path for path, _ in folders)
        return files + folders

    def take_all(self, path: Path, settled: Snapshot | None = None) -> list[str]:
        """`take` for a settled file or folder: the ids of the jobs made of it (a folder,
        a batch, may make several)."""
        if path in self._settled_folders:
            self._settled_folders.discard(path)
            if settled is None:
                return []
            return self._batches.take(
                path,
                settled,
                _available(self._rules, self._ledger.node, self._pauses),
                self._clock(),
            )
        job_id = self.take(path, settled)
        return [job_id] if job_id is not None else []

    def _verdict(self, path: Path) -> Verdict:
        return classify(path, self._rules)[0]

    def look(self, path: Path) -> Snapshot | None:
        """The file's snapshot; None when it is gone or cannot be examined (logged once)."""
        try:
            return snapshot(path)
        except MediaError as error:
            if path not in self._unreadable:
                self._unreadable[path] = None
                log.error("intake.unreadable", path=str(path), error=str(error), hint=error.hint)
            return None

    def known(self, path: Path, current: Snapshot) -> bool:
        """Already taken (a source kept in place) or already refused (claim failed)."""
        if self._claim_failures.get(path) == (current.size, current.mtime_ns):
            return True
        return self._ledger.knows_source(path, current.size, current.mtime_ns, current.inode)

    def take(self, path: Path, settled: Snapshot | None = None) -> str | None:
        """Claim a settled file (unless it changed since `settled`): the new job's id, or
        None when it was not taken (gone, changed, known, refused or its inbox missing)."""
        verdict, rule = classify(path, self._rules)
        if rule is not None and _held(rule, self._ledger.node, self._pauses):
            return None
        current = self.look(path)
        if verdict not in _TAKEN or rule is None or current is None:
            return None
        if self.known(path, current):
            return None
        revision = None
        sidecars: list[tuple[Path, Snapshot]] | None = []
        if verdict is Verdict.REVISION:
            inbox_rules = [other for other in self._rules if other.inbox == rule.inbox]
            planned = self._revisions.plan(path, inbox_rules)
            if planned is None:
                return None  # reported
            rule, revision = planned
        else:
            sidecars = self._sidecars.beside(path, rule)
        if sidecars is None:
            # a sidecar beside it is still being written: both are looked at again
            floor = sidecar_floor(rule.settle_seconds)
            self._tracker.observe(path, current, self._clock(), rule.settle_seconds, floor)
            return None
        job_id = new_job_id()
        # The ledger first, the renames second (see the module's docstring).
        try:
            record = self._ledger.create(
                job_id=job_id,
                rule=rule.name,
                engine=self._engine,
                source=path,
                claimed=claim_path(rule.inbox, job_id, path.name),
                source_size=current.size,
                source_mtime_ns=current.mtime_ns,
                source_inode=current.inode,
                sidecars=[
                    {"source": str(side), "claimed": str(claim_path(rule.inbox, job_id, side.name))}
                    for side, _ in sidecars
                ],
                revision=revision,
            )
        except AlreadyClaimed:  # another node recorded it first, unless this very job is
            if not self._ledger.mine(job_id):  # there: the write's answer lost, tried again
                log.info("intake.taken_elsewhere", path=str(path), rule=rule.name)
                return None  # that node's
            record = self._ledger.get(job_id)
        try:
            claimed = claim(path, rule.inbox, job_id, expected=settled)
            if claimed is not None and not self._claim_sidecars(
                claimed, path, rule, job_id, sidecars
            ):
                self._ledger.discard(job_id)
                return None
        except NemowatchError as error:
            self._ledger.discard(job_id)
            self._claim_failures[path] = (current.size, current.mtime_ns)
            log.error("intake.claim_failed", path=str(path), error=str(error), hint=error.hint)
            return None
        if claimed is None:
            self._ledger.discard(job_id)
            log.info("intake.gone", path=str(path))
            return None
        for side, _ in sidecars:
            self._sidecars.forget(side)
        log.info(
            "job.claimed",
            job_id=record.id,
            rule=rule.name,
            source=str(path),
            **({"sidecars": [side.name for side, _ in sidecars]} if sidecars else {}),
            **({"revises": revision.after, "version": revision.version} if revision else {}),
        )
        return record.id

    def _claim_sidecars(
        self,
        claimed: Path,
        path: Path,
        rule: Rule,
        job_id: str,
        sidecars: list[tuple[Path, Snapshot]],
    ) -> bool:
        """Claim the sidecars of a claimed video; when one changed or went meanwhile, give
        back what was claimed (the video too), to settle again as a pair. False then."""
        taken: list[tuple[Path, Path]] = [(path, claimed)]
        for side, snap in sidecars:
            try:
                moved = claim(side, rule.inbox, job_id, expected=snap)
            except NemowatchError:
                _give_back(taken)
                raise
            if moved is None:
                _give_back(taken)
                log.info("intake.sidecar_changed", path=str(path), sidecar=side.name)
                self._sidecars.forget(side)
                return False
            taken.append((side, moved))
        return True

    def finish_claim(self, record: JobRecord) -> None:
        """A job recorded whose rename into processing/ may not have happened (a kill
        between the two): finish the claim if the file is still there, unchanged, else
        forget the job. A job whose rule is gone is left as it is until the rule is back."""
        rule = self.rule(record.rule)
        if record.claimed is None or rule is None:
            return
        if record.batch is not None:
            if not self._batches.finish_claim(record, rule):
                for member in self._ledger.batch_jobs(record.batch.id):
                    self._ledger.discard(member.id)  # gone, changed, or taken by another
                log.info("batch.claim_undone", folder=str(record.batch.folder))
            return
        if os.path.lexists(record.claimed):
            self._finish_sidecars(record, rule)
            return
        current = self.look(record.source)
        claimed = None
        recorded = (record.source_size, record.source_mtime_ns, record.source_inode)
        if current is not None and (current.size, current.mtime_ns, current.inode) == recorded:
            try:
                claimed = claim(record.source, rule.inbox, record.id)
            except NemowatchError as error:
                log.error(
                    "intake.claim_failed",
                    path=str(record.source),
                    error=str(error),
                    hint=error.hint,
                )
        if claimed is None:
            self._ledger.discard(record.id)  # gone, changed, or taken by someone else
            log.info("job.claim_undone", job_id=record.id, source=str(record.source))
            _give_back([(Path(item["source"]), Path(item["claimed"])) for item in record.sidecars])
        else:
            log.info("job.claimed", job_id=record.id, rule=rule.name, source=str(record.source))
            self._finish_sidecars(record, rule)

    def _finish_sidecars(self, record: JobRecord, rule: Rule) -> None:
        """The sidecars of a job whose video was claimed, claimed too (a kill came between)."""
        for item in record.sidecars:
            source, claimed = Path(item["source"]), Path(item["claimed"])
            if os.path.lexists(claimed) or not os.path.lexists(source):
                continue
            try:
                claim(source, rule.inbox, record.id)
            except NemowatchError as error:
                log.error("intake.claim_failed", path=str(source), error=str(error))


def _give_back(claimed: list[tuple[Path, Path]]) -> None:
    """(where dropped, where claimed) pairs moved back to where they were dropped."""
    for source, now_at in claimed:
        if os.path.lexists(now_at):
            try:
                unclaim(now_at, source)
            except NemowatchError as error:
                log.error("intake.unclaim_failed", path=str(now_at), error=str(error))


def _held(rule: Rule, node: str | None, pauses: Pauses) -> bool:
    """Whether `rule`'s files wait: its inbox is gone, it is paused, or it is for other
    nodes of the fleet (`nodes:`)."""
    elsewhere = bool(rule.nodes) and node not in rule.nodes
    return elsewhere or pauses.holds(rule.name, rule.inbox)


def _available(rules: Sequence[Rule], node: str | None, pauses: Pauses) -> list[Rule]:
    """The rules not held back (`_held`)."""
    return [rule for rule in rules if not _held(rule, node, pauses)]


def _taken_before(ledger: Ledger, sidecar: Path) -> str | None:
    """A recent job whose video had `sidecar`'s name and folder (it came too late)."""
    stem = PurePath(sidecar.name).stem
    for record in ledger.jobs(limit=200):
        source = record.source
        if source.parent == sidecar.parent and source.stem == stem:
            return record.id
    return None
