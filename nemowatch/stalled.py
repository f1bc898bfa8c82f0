"""A copy that paused is not a corrupt file.

A file is claimed once it has been still for `settle_seconds`; a copy that pauses longer
than that (a slow share, a busy disk) is claimed half-written, and its writer goes on
writing into the claimed file. Before such a job fails as unreadable or truncated, the
claimed file is looked at again: if it changed since it was claimed, or changes while it
is watched until it has been still for STALL_FACTOR × `settle_seconds` since its last
change, it is still being written. The job then ends as `returned` and the file goes
back to the inbox, to settle again (`Pipeline` does that; this module only looks).
"""

from __future__ import annotations

from collections.abc import Callable

from nemowatch.errors import MediaError
from nemowatch.files import snapshot
from nemowatch.intake import Snapshot
from nemowatch.ledger import JobRecord
from nemowatch.retry import Sleep

STALL_FACTOR = 5  # a failing file is watched until it has been still this many settle times
_LOOK_EVERY = (0.1, 1.0)  # seconds between looks: settle_seconds / 2, within these bounds


def changed_since_claim(record: JobRecord) -> str | None:
    """How the claimed file differs from the file that settled (size, mtime), or None
    when it does not, is gone, or the job was not claimed after settling."""
    if record.claimed is None or record.source_size is None or record.source_mtime_ns is None:
        return None
    return _change((record.source_size, record.source_mtime_ns), _look(record))


async def still_written(
    record: JobRecord,
    settle_seconds: float,
    *,
    watch: bool,
    sleep: Sleep,
    wall: Callable[[], float],
) -> str | None:
    """Why the claimed file of `record` is still being written, or None.

    It is when it changed since the claim; with `watch`, also when it changes before it
    has been still for STALL_FACTOR × `settle_seconds` (`wall`: epoch seconds, to age
    its mtime; a file still long enough before is not waited for). Only jobs claimed
    after settling are looked at: the ledger has what settled.
    """
    if record.source_size is None or record.source_mtime_ns is None:
        return None
    changed = changed_since_claim(record)
    if changed is not None or not watch:
        return changed
    first = _look(record)
    if first is None:
        return None
    quiet = STALL_FACTOR * settle_seconds
    remaining = min(quiet, quiet - (wall() - first.mtime_ns / 1e9))
    step = min(max(settle_seconds / 2, _LOOK_EVERY[0]), _LOOK_EVERY[1])
    while remaining > 0:
        await sleep(min(step, remaining))
        remaining -= step
        changed = _change((first.size, first.mtime_ns), _look(record))
        if changed is not None:
            return changed
    return None


def _look(record: JobRecord) -> Snapshot | None:
    if record.claimed is None:
        return None
    try:
        return snapshot(record.claimed)
    except MediaError:
        return None  # cannot be examined: nothing to tell


def _change(before: tuple[int, int], now: Snapshot | None) -> str | None:
    if now is None:
        return None
    size, mtime_ns = before
    if now.size != size:
        return f"it was still being written (its size went from {size} to {now.size} bytes)"
    if now.mtime_ns != mtime_ns:
        return "it was still being written (it was modified again after it had settled)"
    return None
