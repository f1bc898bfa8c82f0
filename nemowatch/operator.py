"""Operator commands on the ledger: which job a command names, and sending one back.

`nemowatch retry` runs beside the daemon, never inside it: it moves a failed job's source
from failed/ back into its inbox (never over another file), removes the job's
`<name>.error.json` (it describes the failure being retried; the ledger keeps the error),
marks the job retried, and asks a running daemon to rescan. The daemon then sees the file
as new work and makes a new job; the old one stays in the ledger, failed and retried.

Finding jobs (`find_job`, `states_named`) and files no rule takes (`unmatched_files`) only
reads; `retry_job` is the one function here that touches files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from glob import escape
from pathlib import Path

from nemowatch.config import WORK_FOLDERS, Config, Rule
from nemowatch.errors import NemowatchError
from nemowatch.files import move_no_replace
from nemowatch.intake import Verdict, classify
from nemowatch.ledger import FINISHED, RUNNING, JobRecord, JobState, Ledger, LedgerError
from nemowatch.outbox import REPORT_SUFFIX, failure_report_name

# `--state` names beyond the JobState values: the groups `status` counts.
STATE_GROUPS: dict[str, tuple[JobState, ...]] = {
    "queued": (JobState.CLAIMED,),
    "running": RUNNING,
}
STATE_NAMES: tuple[str, ...] = (*(state.value for state in JobState), *STATE_GROUPS)

# Dispositions that are not a path (see Pipeline.dispose).
_MISSING = "missing"  # the claimed file was gone when the job finished
_KEPT = "kept"  # `nemowatch process` left the file where it was


class OperatorError(NemowatchError):
    """An operator command cannot do what was asked (no such job, nothing to retry)."""


@dataclass(frozen=True)
class RetryResult:
    """One failed job sent back to its inbox."""

    job: JobRecord  # the old job, now marked retried
    source: Path  # where the file waits for the daemon, in the inbox
    moved_from: Path | None  # where it was in failed/; None when it was kept in the inbox
    report_removed: Path | None  # the `<name>.error.json` removed, if one was found


@dataclass(frozen=True)
class Unmatched:
    """A file that waits in an inbox and that no rule will take as it is."""

    path: Path
    verdict: Verdict  # NO_RULE (no rule's match accepts it) or BAD_NAME (not UTF-8)


def unmatched_files(rules: Sequence[Rule]) -> list[Unmatched]:
    """The files at the top of each rule's inbox that the daemon leaves there for good,
    decided as the daemon decides (`intake.classify`): the daemon's own folders, hidden
    and temporary names, and files some rule takes are not listed. Sorted by path."""
    found: list[Unmatched] = []
    for inbox in sorted({rule.inbox for rule in rules}):
        try:
            with os.scandir(inbox) as listing:
                entries = [Path(entry.path) for entry in listing if _is_file(entry)]
        except (FileNotFoundError, NotADirectoryError):
            continue  # not created yet, or a share that is not mounted: nothing waits there
        except OSError as exc:
            raise OperatorError(
                f"cannot list the inbox {inbox}: {exc.strerror or exc}",
                hint="run the command as the user the daemon runs as (or one in its group)",
            ) from exc
        for path in sorted(entries):
            verdict, _rule = classify(path, rules)
            if verdict in (Verdict.NO_RULE, Verdict.BAD_NAME):
                found.append(Unmatched(path, verdict))
    return found


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def states_named(name: str) -> tuple[JobState, ...]:
    """The states a `--state` name stands for; ValueError naming the valid ones."""
    if name in STATE_GROUPS:
        return STATE_GROUPS[name]
    try:
        return (JobState(name),)
    except ValueError:
        raise ValueError(f"unknown state {name!r} (use one of: {', '.join(STATE_NAMES)})") from None


_JOB_ID = re.compile(r"[0-9a-f]{1,32}")


def find_job(ledger: Ledger, target: str) -> JobRecord:
    """The job `target` names: a job id or unique prefix, or a path (see `job_for_path`)."""
    if _JOB_ID.fullmatch(target) and not os.path.lexists(target):
        return job_by_id(ledger, target)
    return job_for_path(ledger, Path(target))


def job_by_id(ledger: Ledger, prefix: str) -> JobRecord:
    """The job whose id is `prefix`, or the only one that starts with it."""
    matches = ledger.find(prefix)
    exact = [record for record in matches if record.id == prefix]
    if exact:
        return exact[0]
    if not matches:
        raise OperatorError(
            f"no job {prefix!r} in the ledger {ledger.path}",
            hint="`nemowatch jobs` lists the jobs and their ids",
        )
    if len(matches) > 1:
        listed = "\n".join(
            f"  {record.id}  {record.state.value:<11} {record.source.name}" for record in matches
        )
        raise OperatorError(
            f"{prefix!r} is the start of {len(matches)} job ids; which one?\n{listed}",
            hint="give more characters of the id",
        )
    return matches[0]


def job_for_path(ledger: Ledger, path: Path) -> JobRecord:
    """The failed job of a file: its path in failed/, its original path, or its error.json.

    When several failed jobs came from one original path, the one not yet retried is
    meant; two such jobs are ambiguous (their failed/ paths tell them apart).
    """
    path = Path(os.path.abspath(path.expanduser()))
    if path.name.endswith(REPORT_SUFFIX):
        job_id = _report_job_id(path)
        if job_id is not None and ledger.find(job_id):
            return ledger.get(job_id)
        path = path.with_name(path.name[: -len(REPORT_SUFFIX)])  # the file it describes
    wanted = _real(path)
    failed = ledger.jobs(JobState.FAILED, limit=None)  # newest first
    in_failed = [record for record in failed if _disposed_at(record, wanted)]
    if in_failed:
        waiting = [record for record in in_failed if not record.retried]
        return (waiting or in_failed)[0]
    from_source = [record for record in failed if _real(record.source) == wanted]
    waiting = [record for record in from_source if not record.retried]
    if len(waiting) > 1:
        listed = "\n".join(f"  {record.id}  now at {record.disposed}" for record in waiting)
        raise OperatorError(
            f"{len(waiting)} failed jobs came from {path}; which one?\n{listed}",
            hint="give the job id, or the file's path in failed/",
        )
    if waiting or from_source:
        return (waiting or from_source)[0]
    raise OperatorError(
        f"no failed job in the ledger {ledger.path} has the file {path}",
        hint="give a file in an inbox's failed/ folder, its original path in the inbox, "
        "its .error.json, or a job id; `nemowatch jobs --state failed` lists them",
    )


def retry_job(ledger: Ledger, config: Config, record: JobRecord) -> RetryResult:
    """Send a failed job's source back into its inbox, for a running daemon to take again.

    The file goes back under its original name, or `name (2).ext` when that is taken; it
    is never written over another file. Raises OperatorError when the job cannot be retried.
    """
    if record.state is not JobState.FAILED:
        still = "still " if record.state not in FINISHED else ""
        raise OperatorError(f"job {record.id} is {still}{record.state.value}; nothing to retry")
    if record.retried_at is not None:
        raise OperatorError(
            f"job {record.id} was already retried on {_when(record.retried_at)}; "
            "its file went back to the inbox then",
            hint="if it failed again, `nemowatch jobs --state failed` lists the newer job",
        )
    rule = _rule(config, record)
    where = _failed_source(record, rule)
    if where == record.source:
        if not where.is_file():
            raise OperatorError(
                f"{where} is gone: job {record.id} left its source there (after.failure: "
                "keep), and it is no longer there",
                hint="if it was changed since, the daemon took it as a new job",
            )
        moved_from, source = None, where
    else:
        if not (where.is_file() or where.is_dir()):  # a folder: a batch of `combine`
            raise OperatorError(
                f"{where} is gone: job {record.id}'s source is no longer in failed/",
                hint=f"if you moved it yourself, drop it into the inbox {rule.inbox}",
            )
        source = move_no_replace(where, inbox_folder(record, rule), record.source.name)
        moved_from = where
    try:
        job = ledger.mark_retried(record.id)
    except LedgerError:
        if moved_from is not None:  # undo, so the file and the ledger still agree
            move_no_replace(source, moved_from.parent, moved_from.name)
        raise
    _retry_sidecars(record, rule)
    report = error_report(record, rule, where)
    if report is not None:
        with contextlib.suppress(FileNotFoundError):
            report.unlink()
    ledger.request_scan()
    return RetryResult(job=job, source=source, moved_from=moved_from, report_removed=report)


def _retry_sidecars(record: JobRecord, rule: Rule) -> None:
    """The job's sidecars back into the inbox beside its source, from where they failed."""
    for sidecar in record.sidecars:
        failed = Path(sidecar.get("disposed") or "")
        if failed.parent == rule.inbox / "failed" and failed.is_file():
            move_no_replace(failed, inbox_folder(record, rule), Path(sidecar["source"]).name)


def inbox_folder(record: JobRecord, rule: Rule) -> Path:
    """Where a retried source goes: the folder it was dropped in, if still in the inbox."""
    folder = record.source.parent
    try:
        inside = folder.relative_to(rule.inbox).parts
    except ValueError:
        return rule.inbox  # the rule's inbox moved since: the file goes to the new one
    if inside and (inside[0] in WORK_FOLDERS or any(part.startswith(".") for part in inside)):
        return rule.inbox
    return folder


def error_report(record: JobRecord, rule: Rule, where: Path) -> Path | None:
    """The job's `<name>.error.json` in failed/, found by the job id written in it."""
    failed = where.parent if where != record.source else rule.inbox / "failed"
    candidates = [failed / failure_report_name(where.name)]
    # after.failure: keep names it after the source, numbered when the name was taken
    stem = failure_report_name(record.source.name).removesuffix(REPORT_SUFFIX)
    candidates += sorted(failed.glob(escape(stem) + ".error*.json"))
    for candidate in candidates:
        if _report_job_id(candidate) == record.id:
            return candidate
    return None


def _rule(config: Config, record: JobRecord) -> Rule:
    rule = next((rule for rule in config.rules if rule.name == record.rule), None)
    if rule is None:
        names = ", ".join(rule.name for rule in config.rules) or "none"
        raise OperatorError(
            f"job {record.id}'s rule {record.rule!r} is not in the config {config.source} "
            f"(rules: {names})",
            hint=f"put the rule back, or move {record.disposed} into an inbox yourself",
        )
    return rule


def _failed_source(record: JobRecord, rule: Rule) -> Path:
    """Where the failed job left its source, or OperatorError saying why there is none."""
    if record.disposed is None:
        raise OperatorError(
            f"job {record.id}'s source has not been moved to failed/ yet",
            hint=f"the daemon moves it when it next starts (it is in {rule.inbox}/processing/); "
            "retry after that",
        )
    if record.disposed == _MISSING:
        raise OperatorError(
            f"job {record.id}'s source {record.source.name} was already gone when the job "
            "failed; there is no file to send back"
        )
    if record.disposed == _KEPT:
        raise OperatorError(
            f"job {record.id} ran with `nemowatch process`, which leaves the file where it is",
            hint=f"run `nemowatch process {record.source} --rule {record.rule}` again",
        )
    return Path(record.disposed)


def _disposed_at(record: JobRecord, wanted: str) -> bool:
    if record.disposed is None or record.disposed in (_MISSING, _KEPT):
        return False
    return _real(Path(record.disposed)) == wanted


def _report_job_id(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    job_id = data.get("job_id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) else None


def _real(path: Path) -> str:
    return os.path.realpath(path)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(sep=" ", timespec="seconds")
