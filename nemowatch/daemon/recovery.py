"""What a starting daemon does with what the previous run left behind.

In order: charge the jobs a crash left running with it (`nemowatch.crashes`), send the
sources of finished jobs where their rules say (a stop between the result's publication and
the move), finish or undo claims a kill interrupted, log files in processing/ that this
ledger does not know (they belong to another nemowatch sharing the inbox: left alone), list
the unfinished jobs to resume from their checkpoints, and remove our own partial results
from the outboxes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import structlog

from nemowatch import outbox
from nemowatch.config import Rule
from nemowatch.daemon.intake import Intake
from nemowatch.ledger import JobRecord, JobState, Ledger

log = structlog.get_logger("nemowatch.daemon")


def prepare_folders(rules: Sequence[Rule], *, missing: Collection[Path] = ()) -> None:
    """Create the rules' inboxes and outboxes that do not exist, except `missing` inboxes:
    a share that went away, where creating the folder would fill the mount point."""
    for rule in rules:
        for folder in (rule.inbox, rule.outbox):
            if folder in missing:
                continue
            if not folder.exists():
                folder.mkdir(parents=True, exist_ok=True)
                log.info("folder.created", path=str(folder), rule=rule.name)


class Recovery:
    """Startup recovery, over the ledger and the rules in force (`intake.rules`).

    `dispose(record, rule)` sends a finished job's source where its rule says (the
    pipeline's own, so that there is one copy of that rule).
    """

    def __init__(
        self, ledger: Ledger, intake: Intake, dispose: Callable[[JobRecord, Rule], object]
    ) -> None:
        self._ledger = ledger
        self._intake = intake
        self._dispose = dispose

    def run(self) -> list[str]:
        """Recover; the ids of the unfinished jobs to resume, oldest first."""
        self._count_crash()
        for record in self._ledger.undisposed():
            rule = self._intake.rule(record.rule)
            if rule is not None:
                self._dispose(record, rule)
        for record in self._ledger.unfinished():
            if record.state is JobState.CLAIMED:
                self._intake.finish_claim(record)
        self._log_strangers()
        unfinished = self._ledger.unfinished()
        resume = []
        for record in unfinished:
            if self._intake.rule(record.rule) is None:
                log.warning(
                    "job.rule_missing",
                    job_id=record.id,
                    rule=record.rule,
                    source=str(record.claimed),
                    hint="the job's rule is not in the config; it resumes once the rule is back",
                )
                continue
            log.info("job.resuming", job_id=record.id, rule=record.rule, state=record.state.value)
            resume.append(record.id)
        active = {record.id for record in unfinished}
        outboxes = {rule.outbox for rule in self._intake.rules}
        # only our own: another nemowatch sharing the outbox may be writing the others
        for path in outbox.stray_temps(outboxes, active, ours=self._ledger.mine):
            path.unlink(missing_ok=True)
            log.info("outbox.partial_removed", path=str(path))
        return resume

    def _count_crash(self) -> None:
        """Charge the jobs the last run left running (it crashed) with that crash."""
        charged = self._ledger.count_crash()
        if not charged:
            return  # the last run stopped gracefully, or ran no job when it died
        log.warning(
            "daemon.crash_found",
            jobs=[record.id for record in charged],
            hint="the last run of the daemon ended without a graceful stop (killed, out of"
            " memory, a crash) while these jobs ran: each resumes from its checkpoint",
        )
        for record in charged:
            log.info(
                "job.crash_counted",
                job_id=record.id,
                source=str(record.source),
                crashes=record.crashes,  # the crashes it was running for, this one included
                alone=record.crashed_alone,  # the only job running in one of them
            )

    def _log_strangers(self) -> None:
        """Files in processing/ this ledger has no job for: another nemowatch's."""
        known = self._ledger.claimed_paths()
        for rule in self._intake.rules:
            processing = rule.inbox / "processing"
            if not processing.is_dir():
                continue
            for path in sorted(processing.iterdir()):
                if path in known or not path.is_file() or path.name.startswith("."):
                    continue
                log.warning(
                    "processing.not_ours",
                    path=str(path),
                    rule=rule.name,
                    hint="this daemon's ledger has no job for it: another nemowatch sharing "
                    "the inbox is working on it, or this state directory was reset. If no "
                    "other nemowatch uses the inbox, move it back into the inbox to process it",
                )
