"""The effectful half of intake: looking at candidates, letting them settle, claiming them.

The decisions are `nemowatch.intake`'s (ignore, match, settle); this part does the looking
(one stat), keeps what must be remembered between looks (files that settle, paths already
refused, unreadable or unmatched, each logged once) and claims: the job is written to the
ledger first and the file renamed into processing/ second, so a file there that the ledger
does not know is never ours (another nemowatch sharing the inbox is working on it), and a
kill between the two is finished or undone at the next start (`finish_claim`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from nemowatch.config import Rule
from nemowatch.daemon.pauses import Pauses
from nemowatch.errors import MediaError, NemowatchError
from nemowatch.files import claim, claim_path, snapshot
from nemowatch.intake import NOT_TAKEN, SettleTracker, Snapshot, Verdict, classify, shown
from nemowatch.ledger import JobRecord, Ledger, new_job_id

log = structlog.get_logger("nemowatch.daemon")

UNMATCHED_MEMORY = 10_000  # unmatched paths remembered so each is logged once


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
    ) -> None:
        self._ledger = ledger
        self._rules = tuple(rules)
        self._engine = engine
        self._pauses = pauses
        self._clock = clock
        self._tracker = SettleTracker()
        self._unmatched: dict[Path, None] = {}
        self._unreadable: dict[Path, None] = {}
        self._claim_failures: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns)

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
        """How many files are being watched until they settle."""
        return len(self._tracker)

    def offer(self, path: Path, closed: bool = False) -> bool:
        """A path worth a look (from an event or a scan). True if it is settling now.

        `closed`: an event said its writer finished (close-write, renamed into place).
        """
        verdict, rule = classify(path, self._rules)
        if verdict is Verdict.IGNORED:
            return False
        if rule is not None and rule.inbox in self._pauses.missing:
            return False  # its inbox is gone: the rule is paused until it is back
        if verdict is not Verdict.TAKE or rule is None:
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
        self._tracker.observe(path, current, now, rule.settle_seconds)
        if closed:
            self._tracker.hint_closed(path, now)
        return True

    def recheck(self, now: float) -> None:
        """Look again at the settling files whose turn it is."""
        for path in self._tracker.due(now):
            verdict, rule = classify(path, self._rules)
            if verdict is not Verdict.TAKE or rule is None:
                self._tracker.forget(path)
                continue
            self._tracker.observe(path, self.look(path), now, rule.settle_seconds)

    def settled(self, now: float, limit: int | None = None) -> list[tuple[Path, Snapshot]]:
        """The files that have settled, each with the snapshot it settled with (for
        `take`), at most `limit` of them (None: all); these are no longer tracked, so take
        them now. The others stay tracked, settled, until there is room for them."""
        return self._tracker.settled_snapshots(now, limit)

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
        if rule is not None and rule.inbox in self._pauses.missing:
            return None
        current = self.look(path)
        if verdict is not Verdict.TAKE or rule is None or current is None:
            return None
        if self.known(path, current):
            return None
        job_id = new_job_id()
        # The ledger first, the rename second (see the module's docstring).
        record = self._ledger.create(
            job_id=job_id,
            rule=rule.name,
            engine=self._engine,
            source=path,
            claimed=claim_path(rule.inbox, job_id, path.name),
            source_size=current.size,
            source_mtime_ns=current.mtime_ns,
            source_inode=current.inode,
        )
        try:
            claimed = claim(path, rule.inbox, job_id, expected=settled)
        except NemowatchError as error:
            self._ledger.discard(job_id)
            self._claim_failures[path] = (current.size, current.mtime_ns)
            log.error("intake.claim_failed", path=str(path), error=str(error), hint=error.hint)
            return None
        if claimed is None:
            self._ledger.discard(job_id)
            log.info("intake.gone", path=str(path))
            return None
        log.info("job.claimed", job_id=record.id, rule=rule.name, source=str(path))
        return record.id

    def finish_claim(self, record: JobRecord) -> None:
        """A job recorded whose rename into processing/ may not have happened (a kill
        between the two): finish the claim if the file is still there, unchanged, else
        forget the job. A job whose rule is gone is left as it is until the rule is back."""
        if record.claimed is None or os.path.lexists(record.claimed):
            return
        rule = self.rule(record.rule)
        if rule is None:
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
        else:
            log.info("job.claimed", job_id=record.id, rule=rule.name, source=str(record.source))
