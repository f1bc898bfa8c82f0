"""Revision files (`clip-edited.revise.txt`, issue 13): part of intake.

A revision file dropped into a rule's inbox names an output of a finished job by its stem
(`clip-edited`, or `clip-edited v2` for a version made since). Once it has settled like any
file, it is claimed as a job of its own that continues that job: the same source (kept in
done/, or where `after.success: keep` left it), the same instructions (the rule's, the first
job's sidecars, the earlier revisions' files) with the revision's on top, published as the
next version (`clip-edited v2.mp4`, then v3 ...) beside the first. The first job's output
and every earlier version are left as they are.

A revision that cannot be one (no such output, or its source was not kept) goes to failed/
beside an error.json that says why and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from nemowatch.config import Rule
from nemowatch.daemon.refusals import refuse
from nemowatch.intake import revision_target, version_of
from nemowatch.jobs import JobRecord, JobState, Revision
from nemowatch.ledger import Ledger

log = structlog.get_logger("nemowatch.daemon")

SEARCHED = 5000  # finished jobs looked through for the output a revision names


class NoRevision(Exception):
    """Why a revision file cannot revise anything, and what to do."""

    def __init__(self, error: str, hint: str) -> None:
        super().__init__(error)
        self.hint = hint


def plan_revision(ledger: Ledger, stem: str, rules: Sequence[Rule]) -> tuple[JobRecord, Revision]:
    """The job whose output has the stem `stem` (the newest, of `rules`), and the revision
    of it to make. Raises NoRevision."""
    names = {rule.name for rule in rules}
    revised = next(
        (
            record
            for record in ledger.jobs(JobState.DONE, limit=SEARCHED)
            if record.rule in names and any(path.stem == stem for path in record.outputs)
        ),
        None,
    )
    if revised is None:
        base, _ = version_of(stem)
        raise NoRevision(
            f"no output named {stem}.* was made from this inbox (a revision file is named"
            f" after an output: {base}.revise.txt revises {base}.mp4)",
            hint="name the revision file after an output in the outbox (its name without the"
            " extension, then .revise.txt), then move it back into the inbox",
        )
    first = ledger.get(revised.revision.of) if revised.revision is not None else revised
    chain = [
        record
        for record in ledger.revisions_of(first.id)
        if record.state is JobState.DONE and record.revision is not None
    ]
    upto = revised.revision.version if revised.revision is not None else 1
    source = Path(first.disposed) if first.disposed else None
    if source is None or not source.is_file():
        raise NoRevision(
            f"the source of {stem} is no longer kept ({first.disposed or 'never recorded'}):"
            " a revision edits the source again",
            hint="keep sources (the rule's after.success: archive or keep), or drop the source"
            " again with its instructions in a sidecar",
        )
    earlier = [
        Path(sidecar["disposed"]) for sidecar in first.sidecars if sidecar.get("disposed")
    ] + [
        Path(record.disposed)
        for record in chain
        if record.disposed and record.revision is not None and record.revision.version <= upto
    ]
    outputs = tuple(
        (name, Path(path)) for name, path in first.published.items() if path is not None
    ) or ((("", first.output),) if first.output is not None else ())
    version = 1 + max([1, *(record.revision.version for record in chain if record.revision)])
    revision = Revision(
        of=first.id,
        after=revised.id,
        version=version,
        source=source,
        earlier=tuple(path for path in earlier if path.is_file()),
        outputs=outputs,
    )
    return revised, revision


class Revisions:
    """Claims settled revision files as jobs, or reports them."""

    def __init__(self, ledger: Ledger, *, engine: str, now: Callable[[], datetime]) -> None:
        self._ledger = ledger
        self._engine = engine
        self._now = now

    def plan(self, path: Path, rules: Sequence[Rule]) -> tuple[Rule, Revision] | None:
        """The rule and revision the revision file `path` (in the inbox `rules` share)
        makes; None when it makes none: then it is reported (to failed/)."""
        stem = revision_target(path.name)
        assert stem is not None
        try:
            revised, revision = plan_revision(self._ledger, stem, rules)
        except NoRevision as problem:
            self._report(path, rules[0], str(problem), problem.hint)
            return None
        return next(rule for rule in rules if rule.name == revised.rule), revision

    def _report(self, path: Path, rule: Rule, error: str, hint: str) -> None:
        report = {
            "source": str(path),
            "rule": rule.name,
            "failed_at": self._now().astimezone().isoformat(timespec="seconds"),
            "step": "intake",
            "error": error,
            "hint": hint,
            "retryable": False,
        }
        refuse(path, rule, report, kind="revision", event="revision.refused", error=error)
