"""What happens to a job's files once it ends: the source moved where the rule says (or
found where an interrupted run moved it), the report beside the output, the error report
beside a failed source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from nemowatch import outbox
from nemowatch.batchend import end_of_batch
from nemowatch.config import AfterFailure, AfterSuccess, BatchMode, Rule
from nemowatch.files import move_no_replace, unclaim
from nemowatch.ledger import JobRecord, JobState, Ledger

log = structlog.get_logger("nemowatch.pipeline")


class Disposal:
    """Ends of jobs, on disk: idempotent, so a run stopped half-way can do them again."""

    def __init__(
        self, ledger: Ledger, *, now: Callable[[], datetime], dispose_sources: bool = True
    ) -> None:
        self.ledger = ledger
        self.now = now
        self.dispose_sources = dispose_sources  # False for `nemowatch process`: leave the file
        # run for a job done, once its source is where it stays and before the ledger
        # records where: the pipeline publishes the timelines that link it (handover.py)
        self.before_recorded: Callable[[JobRecord, Rule, Path], JobRecord] | None = None

    def write_report(
        self,
        record: JobRecord,
        rule: Rule,
        output: Path,
        left_out: dict[str, list[str]] | None = None,
    ) -> None:
        """`<output>.json`: what was asked, what was planned, what was warned, how long;
        and the timelines for editors, each with what its format left out."""
        report = {
            "job_id": record.id,
            "rule": rule.name,
            "engine": record.engine,
            "source": str(record.source),
            "output": str(output),
            "outputs": [str(path) for path in record.outputs],  # all of the job's, made together
            "instructions": list(rule.instructions),
            "sidecars": [sidecar["source"] for sidecar in record.sidecars],
            "edit": rule.edit.model_dump(mode="json", exclude_unset=True),
            "export": rule.export.model_dump(mode="json"),
            "media": record.media,
            "plan": record.draft,
            "warnings": record.warnings,
            "timings": record.timings,
            # the local engine's smart render: used or why not, seconds copied and encoded
            "smart": ((record.render or {}).get("data") or {}).get("smart"),
            "finished_at": self.now().astimezone().isoformat(timespec="seconds"),
        }
        if left_out:
            report["timelines"] = {
                fmt: {"file": record.published.get(f"timeline {fmt}"), "left_out": items}
                for fmt, items in left_out.items()
            }
        try:
            outbox.write_json_atomic(output.with_name(output.name + ".json"), report)
        except OSError as error:
            log.warning("report.not_written", output=str(output), error=str(error))

    def dispose(self, record: JobRecord, rule: Rule) -> JobRecord:
        """Send a finished job's source where the rule says. Idempotent after a crash."""
        if record.claimed is None or record.disposed is not None:
            return record
        if not self.dispose_sources:
            if record.state is JobState.FAILED:
                log.info("job.report", **self.error_report(record))
            self._before_recorded(record, rule, record.claimed)
            return self.ledger.update(record.id, disposed="kept")
        when = self.now()
        if record.batch is not None and record.batch.mode == BatchMode.EACH:
            # the folder goes as a unit, when the last of its jobs has ended
            return end_of_batch(
                self.ledger, record, rule, when=when, error_report=self.error_report
            )
        self._dispose_sidecars(record, rule, when)  # first: the ledger records the source's
        if not record.claimed.exists():
            return self._disposed_before(record, rule)
        if record.state is JobState.DONE:
            where = outbox.dispose_success(
                record.claimed,
                source=record.source,
                inbox=rule.inbox,
                after=rule.after.success,
                when=when,
            )
        elif record.state is JobState.SKIPPED:
            # never delete on a guess: a duplicate is archived beside the original
            where = outbox.dispose_success(
                record.claimed,
                source=record.source,
                inbox=rule.inbox,
                after=AfterSuccess.ARCHIVE,
                when=when,
            )
        elif record.state is JobState.RETURNED:
            where = str(unclaim(record.claimed, record.source))  # to settle again
        else:
            where, _report = outbox.dispose_failure(
                record.claimed,
                source=record.source,
                inbox=rule.inbox,
                after=rule.after.failure,
                report=self.error_report(record),
            )
        log.info("source.disposed", to=where)
        self._before_recorded(record, rule, record.source if where == "deleted" else Path(where))
        return self.ledger.update(record.id, disposed=where)

    def _before_recorded(self, record: JobRecord, rule: Rule, source: Path) -> JobRecord:
        if self.before_recorded is None or record.state is not JobState.DONE:
            return record
        return self.before_recorded(record, rule, source)

    def _dispose_sidecars(self, record: JobRecord, rule: Rule, when: datetime) -> None:
        """The sidecars go where their source goes (archived, kept, deleted, quarantined
        beside it, or given back with it); one already moved is let be. Where each went is
        recorded (`disposed`), for `nemowatch retry`."""
        moved = []
        for sidecar in record.sidecars:
            claimed, source = Path(sidecar["claimed"]), Path(sidecar["source"])
            if claimed == source or not claimed.exists():
                moved.append(sidecar)
                continue
            if record.state is JobState.DONE:
                where = outbox.dispose_success(
                    claimed, source=source, inbox=rule.inbox, after=rule.after.success, when=when
                )
            elif record.state is JobState.SKIPPED:
                where = outbox.dispose_success(
                    claimed, source=source, inbox=rule.inbox, after=AfterSuccess.ARCHIVE, when=when
                )
            elif record.state is JobState.RETURNED or rule.after.failure is AfterFailure.KEEP:
                where = str(unclaim(claimed, source))
            else:
                where = str(move_no_replace(claimed, rule.inbox / "failed", source.name))
            log.info("sidecar.disposed", sidecar=source.name, to=where)
            moved.append({**sidecar, "disposed": where})
        if moved != list(record.sidecars):
            self.ledger.update(record.id, sidecars=moved)

    def _disposed_before(self, record: JobRecord, rule: Rule) -> JobRecord:
        """A source no longer where the job left it: a run stopped between moving it and
        recording where it went. Find it, finish the failure report, record the place."""
        deleted = record.state is JobState.DONE and rule.after.success is AfterSuccess.DELETE
        found = None
        if record.source_inode is not None and not deleted:
            found = outbox.find_disposed(
                record.source_inode, source=record.source, inbox=rule.inbox
            )
        if found is None:
            self._before_recorded(record, rule, record.source)
            return self.ledger.update(record.id, disposed="deleted" if deleted else "missing")
        if record.state is JobState.FAILED and not outbox.has_failure_report(
            found, inbox=rule.inbox
        ):
            outbox.write_failure_report(found, inbox=rule.inbox, report=self.error_report(record))
        log.info("source.disposed", to=str(found), found_after_restart=True)
        self._before_recorded(record, rule, found)
        return self.ledger.update(record.id, disposed=str(found))

    def error_report(self, record: JobRecord) -> dict[str, Any]:
        detail = next(
            (d for (_, to, _, d) in reversed(self.ledger.history(record.id)) if to == "failed"),
            None,
        )
        step, _, message = (record.error or "unknown: unknown error").partition(": ")
        report: dict[str, Any] = {
            "job_id": record.id,
            "rule": record.rule,
            "source": str(record.source),
            "failed_at": self.now().astimezone().isoformat(timespec="seconds"),
            "step": step,
            "error": message,
            "hint": detail,
            "retryable": bool(record.retryable),
            "attempts": record.attempts,
            **(
                {"sidecars": [item["source"] for item in record.sidecars]}
                if record.sidecars
                else {}
            ),
        }
        if record.outputs:  # of several outputs, those published before the failure stay
            report["published"] = [str(output) for output in record.outputs]
        return report
