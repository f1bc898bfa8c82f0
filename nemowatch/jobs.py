"""A job as the ledger holds it: its states, the changes allowed between them, and its
record. Pure data: the ledger (`nemowatch.ledger`) stores and reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class JobState(StrEnum):
    DETECTED = "detected"  # seen in an inbox (kept in memory only, until claimed)
    SETTLING = "settling"  # waiting for size/mtime to stop changing (in memory only)
    CLAIMED = "claimed"  # renamed into processing/; owned by this daemon
    UPLOADING = "uploading"  # handing the source to the engine
    EDITING = "editing"  # sending the edit instructions
    EXPORTING = "exporting"  # render submitted / running
    DOWNLOADING = "downloading"  # fetching the result to a hidden name in the outbox
    VERIFYING = "verifying"  # probing the result before it gets its final name
    DONE = "done"  # output published under its final name
    FAILED = "failed"  # gave up; `error` says why and `retryable` whether trying again helps
    SKIPPED = "skipped"  # nothing to do (a byte-identical file was already done)
    # given back to the inbox: it was still being written (a copy that had paused); it is
    # taken again, as a new job, once it has settled
    RETURNED = "returned"


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.SKIPPED, JobState.RETURNED})

# Every state change a job may make; `Ledger.transition` refuses any other (a bug). Forward
# one step at a time; back to CLAIMED when the engine lost the session (everything is done
# again in a new one); back to EXPORTING when a rendered result was lost, to DOWNLOADING
# when a downloaded one was; FAILED (or RETURNED, instead of failing) from anywhere
# unfinished. Finished states are final.
_ENDS = frozenset({JobState.FAILED, JobState.RETURNED})  # reachable from anywhere unfinished
ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.CLAIMED: frozenset({JobState.CLAIMED, JobState.UPLOADING, JobState.SKIPPED}) | _ENDS,
    JobState.UPLOADING: frozenset({JobState.EDITING, JobState.CLAIMED}) | _ENDS,
    JobState.EDITING: frozenset({JobState.EXPORTING, JobState.CLAIMED}) | _ENDS,
    # EXPORTING -> DONE: the outputs a rule names were all published (it was edited)
    JobState.EXPORTING: frozenset({JobState.DOWNLOADING, JobState.CLAIMED, JobState.DONE}) | _ENDS,
    JobState.DOWNLOADING: frozenset({JobState.VERIFYING, JobState.EXPORTING, JobState.CLAIMED})
    | _ENDS,
    JobState.VERIFYING: frozenset(
        {JobState.DONE, JobState.DOWNLOADING, JobState.EXPORTING, JobState.CLAIMED}
    )
    | _ENDS,
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.SKIPPED: frozenset(),
    JobState.RETURNED: frozenset(),
}

# The states of a job a worker is driving (what `status` counts as running).
RUNNING = (
    JobState.UPLOADING,
    JobState.EDITING,
    JobState.EXPORTING,
    JobState.DOWNLOADING,
    JobState.VERIFYING,
)


class IllegalTransition(RuntimeError):
    """A state change that `ALLOWED` does not list: a bug, never the user's doing."""


@dataclass(frozen=True)
class Batch:
    """A folder dropped into an inbox, taken as one unit: `combine` is one job of the
    whole folder; `each` is one job per file, all with the same `Batch`."""

    id: str  # the claim's id: the folder is `processing/<id>__<name>` while it is worked on
    mode: str  # "each" or "combine" (config.BatchMode)
    folder: Path  # where it was dropped
    claimed: Path  # where it is while its jobs run
    files: tuple[str, ...]  # its files, in name order
    instructions: str | None = None  # the name of its instructions.txt, when it has one
    # (size, mtime_ns, inode) of the folder as it settled: the same folder is not taken twice
    identity: tuple[int, int, int] = (0, 0, 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "folder": str(self.folder),
            "claimed": str(self.claimed),
            "files": list(self.files),
            "instructions": self.instructions,
            "identity": list(self.identity),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Batch | None:
        if not data:
            return None
        size, mtime_ns, inode = data.get("identity") or (0, 0, 0)
        return cls(
            id=data["id"],
            mode=data["mode"],
            folder=Path(data["folder"]),
            claimed=Path(data["claimed"]),
            files=tuple(data.get("files") or ()),
            instructions=data.get("instructions"),
            identity=(int(size), int(mtime_ns), int(inode)),
        )


@dataclass(frozen=True)
class Revision:
    """A job that revises a finished one (`clip-edited.revise.txt`, issue 13): the same
    edit with the revision's instructions on top, published as the next version."""

    of: str  # the first job of the chain (version 1)
    after: str  # the job whose output it revises (the latest version named)
    version: int  # 2 for the first revision, then 3 ...
    source: Path  # the source the first job edited, where it was kept (done/...)
    # instructions files read before this one's: the first job's sidecars, then the
    # earlier revisions' files, where they were kept
    earlier: tuple[Path, ...] = ()
    # the first job's outputs by output name ("": a rule's one output): each gets a version
    outputs: tuple[tuple[str, Path], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "of": self.of,
            "after": self.after,
            "version": self.version,
            "source": str(self.source),
            "earlier": [str(path) for path in self.earlier],
            "outputs": [[name, str(path)] for name, path in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Revision | None:
        if not data:
            return None
        return cls(
            of=data["of"],
            after=data["after"],
            version=int(data["version"]),
            source=Path(data["source"]),
            earlier=tuple(Path(path) for path in data.get("earlier") or ()),
            outputs=tuple((str(name), Path(path)) for name, path in data.get("outputs") or ()),
        )


@dataclass(frozen=True)
class JobRecord:
    id: str
    rule: str
    engine: str
    source: Path
    source_size: int | None
    source_mtime_ns: int | None
    source_inode: int | None
    claimed: Path | None
    fingerprint: str | None
    size: int | None
    state: JobState
    attempts: int
    retryable: bool | None
    session: dict[str, Any] | None
    media: dict[str, Any] | None
    edits_done: int
    edit_sent: int | None
    edit_token: str | None
    draft: dict[str, Any] | None
    render: dict[str, Any] | None
    output: Path | None
    error: str | None
    warnings: list[str]
    disposed: str | None
    timings: dict[str, float]
    created_at: float
    updated_at: float
    finished_at: float | None
    retried_at: float | None = None  # set by `nemowatch retry` on a failed job
    stage: str | None = None  # a running job's current stage ("rendering"), see `progress`
    percent: float | None = None  # how far that stage is, 0-100, when known
    progress_at: float | None = None  # when stage/percent were written
    crashes: int = 0  # crashes of the daemon it was running for (`Ledger.count_crash`)
    crashed_alone: bool = False  # whether it was the only job running in one of them
    # the sidecars taken with the source ({"source": as dropped, "claimed": where now})
    sidecars: tuple[dict[str, str], ...] = ()
    # the outputs published so far, by name ("": a rule's one output), each with its file
    # (None: `on_conflict: skip` kept an existing one); see config/targets.py
    published: dict[str, str | None] = field(default_factory=dict)
    # the folder this job came in (a batch, issue 13): None for a file dropped on its own
    batch: Batch | None = None
    # the finished job this one revises (`<output>.revise.txt`): None for a new file
    revision: Revision | None = None
    # what kind of error failed it (`errors.kind`: "media", "engine", "transient", ...)
    error_kind: str | None = None
    # the daemon (node) working on it, and how often another node adopted it (a fleet,
    # ledgers/fleet.py); None in ledgers written before nodes were recorded
    node: str | None = None
    lease_gen: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def retried(self) -> bool:
        return self.retried_at is not None

    @property
    def checkpoint(self) -> str:
        """How far it has got: its state, instructions done, whether a render was sent."""
        point = f"{self.state.value}:{self.edits_done}:{int(self.render is not None)}"
        # one output of several published is a step on (its count, only when there is one,
        # keeps the checkpoints earlier versions wrote)
        return f"{point}:{len(self.published)}" if self.published else point

    @property
    def outputs(self) -> list[Path]:
        """Every output published, in the order they were made (`output` is the first)."""
        files = [Path(path) for path in self.published.values() if path]
        if self.output is not None and self.output not in files:
            files.insert(0, self.output)
        return files

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRecord:
        def loads(value: str | None) -> Any:
            return json.loads(value) if value else None

        return cls(
            id=row["id"],
            rule=row["rule"],
            engine=row["engine"],
            source=Path(row["source"]),
            source_size=row["source_size"],
            source_mtime_ns=row["source_mtime_ns"],
            source_inode=row["source_inode"],
            claimed=Path(row["claimed"]) if row["claimed"] else None,
            fingerprint=row["fingerprint"],
            size=row["size"],
            state=JobState(row["state"]),
            attempts=row["attempts"],
            retryable=None if row["retryable"] is None else bool(row["retryable"]),
            session=loads(row["session"]),
            media=loads(row["media"]),
            edits_done=row["edits_done"],
            edit_sent=row["edit_sent"],
            edit_token=row["edit_token"],
            draft=loads(row["draft"]),
            render=loads(row["render"]),
            output=Path(row["output"]) if row["output"] else None,
            error=row["error"],
            warnings=loads(row["warnings"]) or [],
            disposed=row["disposed"],
            timings=loads(row["timings"]) or {},
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            retried_at=row["retried_at"],
            stage=row["stage"],
            percent=row["percent"],
            progress_at=row["progress_at"],
            crashes=row["crashes"],
            crashed_alone=bool(row["crashed_alone"]),
            sidecars=tuple(loads(row["sidecars"]) or ()),
            # [name, file] pairs, in the order published (a JSON object would be sorted)
            published={str(name): path for name, path in loads(row["published"]) or []},
            batch=Batch.from_json(loads(row["batch"])),
            revision=Revision.from_json(loads(row["revision"])),
            error_kind=row["error_kind"],
            node=row["node"],
            lease_gen=row["lease_gen"],
        )
