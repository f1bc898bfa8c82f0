"""The outbox and the source's way out: naming, verify, atomic publish, disposition.

A result is written under a hidden temporary name in the outbox, probed, and only then
renamed into place, so a half-written MP4 is never visible under its final name. A source
is never deleted or moved away before its output is published.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import string
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from nemowatch.config import TEMPLATE_FIELDS, AfterFailure, AfterSuccess, OnConflict
from nemowatch.engines.base import AUDIO_TRACK, Draft
from nemowatch.errors import EngineError, MediaError
from nemowatch.files import (
    NAME_MAX,
    fit_name,
    free_name,
    link_no_replace,
    linked_in,
    move_no_replace,
    remove_folder,
    sync_file,
    sync_folder,
)
from nemowatch.jobs import JobRecord
from nemowatch.probe import Probe, moov_before_mdat, probe

TEMP_SUFFIX = ".nemowatch-part"
_PUBLISHING = "-publishing"  # a second temporary name, for `on_conflict: overwrite`
# An output's name is at most this many bytes, leaving room within NAME_MAX for what is
# added to it: `name (2).mp4`, the temporary `.name.<job id>.nemowatch-part`, the report
# `name.mp4.json` and its own temporary name.
OUTPUT_NAME_MAX = NAME_MAX - 48

REPORT_SUFFIX = ".error.json"  # a failed source's report in failed/: `<name>.error.json`
_JSON_TEMP = ".{}.tmp"  # a report's name while it is written

DURATION_TOLERANCE = 0.1  # seconds between the planned and the published duration


def output_name(template: str, *, source_name: str, rule: str, when: datetime) -> PurePosixPath:
    """The output's path relative to the outbox, from a template such as "{stem}-reel.mp4".

    Raises ValueError when the template uses unknown fields or would leave the outbox.
    """
    source = PurePosixPath(source_name)
    values = {
        "stem": source.stem,
        "ext": source.suffix.lstrip("."),
        "rule": rule,
        "date": when.strftime("%Y-%m-%d"),
    }
    pieces: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        pieces.append(literal)
        if field is None:
            continue
        if field not in values or spec or conversion:
            raise ValueError(
                f"outputs template {template!r}: unknown field {{{field}}}"
                f" (use {', '.join('{' + name + '}' for name in TEMPLATE_FIELDS)})"
            )
        pieces.append(values[field])
    relative = PurePosixPath("".join(pieces))
    if relative.is_absolute() or ".." in relative.parts or not relative.name:
        raise ValueError(f"outputs template {template!r} gives {relative}, outside the outbox")
    if any(part.startswith(".") for part in relative.parts):
        # a hidden name would be invisible to people and ignored by other watchers
        relative = PurePosixPath(*[part.lstrip(".") or "_" for part in relative.parts])
    # a long source name must not make a name the filesystem refuses (counted in bytes)
    *folders, name = relative.parts
    return PurePosixPath(*[fit_name(part) for part in folders], fit_name(name, OUTPUT_NAME_MAX))


def temp_owner(record: JobRecord) -> str:
    """What a job's temporary files are named by: its id, and in a fleet the lease
    generation it runs at once adopted (`abc123~1`), so that a node that lost the job and
    the node that adopted it never write one file (ledgers/fleet.py)."""
    return f"{record.id}~{record.lease_gen}" if record.lease_gen else record.id


def temp_path(outbox: Path, relative: PurePosixPath, job_id: str) -> Path:
    """The hidden name a result is written under before it is verified."""
    final = outbox / relative
    ending = f".{job_id}{TEMP_SUFFIX}"
    room = NAME_MAX - len(f".{ending}{_PUBLISHING}".encode())  # see `publish`
    return final.parent / f".{fit_name(final.name, room)}{ending}"


EXPORT_FORMATS = ("mp4", "mov", "webm", "gif")


def verify(path: Path, draft: Draft, size: tuple[int, int] | None = None) -> Probe:
    """Probe a result: streams present, duration as planned, the container the draft
    planned (when it says), the frame `size` (width, height) when given, and for MP4/MOV
    the index at the front.

    A GIF has no sound to expect, and neither it nor a WebM has an index to check.
    """
    try:
        result = probe(path)
    except MediaError as exc:
        raise EngineError(f"the result {path.name} is not a readable video: {exc}") from exc
    if result.video is None:
        raise EngineError(f"the result {path.name} has no video stream")
    planned_format = draft.metadata.get("format")
    container = _container(result.format_name)
    if planned_format in EXPORT_FORMATS and container != _container_of_format(planned_format):
        raise EngineError(
            f"the result {path.name} is {result.format_name}, but {planned_format} was planned"
        )
    planned_audio = container != "gif" and any(
        track.get("tt") == AUDIO_TRACK and track.get("sg") for track in draft.tracks
    )
    if planned_audio and result.audio is None:
        raise EngineError(f"the result {path.name} has no audio stream, but one was planned")
    found = (result.video.width, result.video.height)
    if size is not None and found != size:
        raise EngineError(
            f"the result {path.name} is {found[0]}x{found[1]}, but {size[0]}x{size[1]} was planned"
        )
    duration = result.video.duration or result.duration
    if draft.duration_ms and abs(duration - draft.duration) > DURATION_TOLERANCE:
        raise EngineError(
            f"the result {path.name} lasts {duration:.3f} s, but {draft.duration:.3f} s was planned"
        )
    promised_fast_start = planned_format in ("mp4", "mov") or (
        path.name.endswith(".mp4" + TEMP_SUFFIX) or path.suffix == ".mp4"
    )
    if container == "mp4" and promised_fast_start and not moov_before_mdat(path):
        raise EngineError(f"the result {path.name} is not streamable (index after the data)")
    return result


def _container(format_name: str) -> str:
    """The family of a container as PyAV names it: "mp4" (MP4, MOV), "webm", "gif"."""
    names = set(format_name.split(","))
    if names & {"mov", "mp4"}:
        return "mp4"
    if names & {"webm", "matroska"}:
        return "webm"
    return format_name


def _container_of_format(export_format: str) -> str:
    return "mp4" if export_format in ("mp4", "mov") else export_format


def publish(temp: Path, final: Path, on_conflict: OnConflict) -> Path | None:
    """Give a verified result its final name. Returns None when `skip` kept an existing file.

    `temp` stays (a second name of the same file) until the caller has recorded the output
    and removes it: a daemon killed in between finds its result already published
    (`already_published`) instead of publishing it again as `name (2).mp4`.

    Durable: the result's data is synced before it gets its name, and the outbox after,
    so a power cut never leaves an empty or partial file under a final name, nor loses a
    published one whose source was then archived.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    sync_file(temp)
    if on_conflict is OnConflict.OVERWRITE:
        # replace(2) would take the temporary name away: replace with a second link to it
        staging = temp.with_name(temp.name.removesuffix(TEMP_SUFFIX) + _PUBLISHING + TEMP_SUFFIX)
        staging.unlink(missing_ok=True)
        try:
            os.link(temp, staging)
        except OSError:
            staging = temp  # no hard links here: the temporary name goes
        try:
            os.replace(staging, final)
        except OSError:
            if staging != temp:
                staging.unlink(missing_ok=True)  # not left behind under a name of its own
            raise
        sync_folder(final.parent)
        return final
    if on_conflict is OnConflict.SKIP and final.exists():
        return None
    published = link_no_replace(temp, final.parent, final.name)
    sync_folder(final.parent)
    return published


def publish_beside(extra: Path, final: Path, on_conflict: OnConflict) -> Path | None:
    """Publish `extra` (soft captions' .srt) beside the published `final`, under its stem
    with `extra`'s extension: replaced only with `overwrite`; with `skip`, or when the name
    already holds the same bytes (published by an interrupted run), nothing is written.
    Returns the published name, or None."""
    wanted = final.with_suffix(extra.suffix)
    data = extra.read_bytes()
    try:
        if wanted.read_bytes() == data:
            return wanted
    except OSError:
        pass
    if wanted.exists() and on_conflict is OnConflict.SKIP:
        return None
    staging = final.with_name(f".{wanted.name}{TEMP_SUFFIX}")
    staging.write_bytes(data)
    sync_file(staging)
    if on_conflict is OnConflict.OVERWRITE:
        os.replace(staging, wanted)
        published = wanted
    else:
        published = link_no_replace(staging, final.parent, wanted.name)
        staging.unlink(missing_ok=True)
    sync_folder(final.parent)
    return published


def already_published(temp: Path, final: Path) -> Path | None:
    """The visible name under which `temp` is already in `final`'s folder, if a run that
    was stopped after publishing it (before the ledger heard of it) left it there."""
    return linked_in(temp, final.parent) if final.parent.is_dir() else None


def dispose_success(
    claimed: Path, *, source: Path, inbox: Path, after: AfterSuccess, when: datetime
) -> str:
    """Archive, keep or delete a source whose output is published. Returns where it went."""
    if after is AfterSuccess.DELETE:
        if claimed.is_dir() and not claimed.is_symlink():
            remove_folder(claimed)  # a batch's folder (issue 13)
        else:
            claimed.unlink(missing_ok=True)
        return "deleted"
    if after is AfterSuccess.KEEP and not source.exists():
        os.rename(claimed, source)  # the name is free: put it back where it was dropped
        sync_folder(source.parent)
        return str(source)
    archive = inbox / "done" / when.strftime("%Y-%m-%d")
    return str(move_no_replace(claimed, archive, source.name))


def dispose_failure(
    claimed: Path,
    *,
    source: Path,
    inbox: Path,
    after: AfterFailure,
    report: dict[str, Any],
) -> tuple[str, Path]:
    """Move a failed source to failed/ (or back) and write `<name>.error.json` in failed/."""
    failed = inbox / "failed"
    failed.mkdir(parents=True, exist_ok=True)
    if after is AfterFailure.KEEP and not source.exists():
        os.rename(claimed, source)
        sync_folder(source.parent)
        where = source
    else:
        where = move_no_replace(claimed, failed, source.name)
    return str(where), write_failure_report(where, inbox=inbox, report=report)


def write_failure_report(where: Path, *, inbox: Path, report: dict[str, Any]) -> Path:
    """`<name>.error.json` in failed/ for the failed source now at `where`."""
    failed = inbox / "failed"
    failed.mkdir(parents=True, exist_ok=True)
    if where.parent == failed:
        report_name = failure_report_name(where.name)
    else:  # kept in the inbox: failed/ may already hold reports of that name
        report_name = free_name(failed, failure_report_name(where.name))
    report = {**report, "file": str(where)}
    report.setdefault(
        "how_to_retry",
        "fix the cause, then move the file back into the inbox: "
        f"mv {_quote(where)} {_quote(inbox)}/",
    )
    # the same, done by nemowatch (moves it back without overwriting, requeues it)
    report.setdefault("retry_with", f"nemowatch retry {_quote(where)}")
    write_json_atomic(failed / report_name, report)
    return failed / report_name


def failure_report_name(name: str) -> str:
    """`<name>.error.json`, the name cut to fit (with room for its temporary name)."""
    room = NAME_MAX - len(REPORT_SUFFIX.encode()) - len(_JSON_TEMP.format("").encode())
    return fit_name(name, room) + REPORT_SUFFIX


def has_failure_report(where: Path, *, inbox: Path) -> bool:
    """Whether failed/ holds a report about the source now at `where`."""
    failed = inbox / "failed"
    if where.parent == failed:
        return (failed / failure_report_name(where.name)).is_file()
    stem = failure_report_name(where.name).removesuffix(REPORT_SUFFIX)
    for path in failed.glob(glob.escape(stem) + "*.error.json"):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")).get("file") == str(where):
                return True
    return False


def find_disposed(inode: int, *, source: Path, inbox: Path) -> Path | None:
    """Where a disposal put a source (known by its inode) before the daemon was stopped,
    too early to record it: back where it was dropped, in done/<date>/ or in failed/."""
    with contextlib.suppress(OSError):
        if os.lstat(source).st_ino == inode:
            return source
    done = inbox / "done"
    days = sorted(done.iterdir(), reverse=True) if done.is_dir() else []  # newest first
    for folder in [inbox / "failed", *days]:
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    if entry.inode() == inode and not entry.name.startswith("."):
                        return Path(entry.path)
        except OSError:
            continue  # not there, or not a folder
    return None


def unwritable(error: OSError, folder: Path, source_name: str) -> EngineError:
    """A result that could not be written into the outbox, said as what to fix where."""
    what = f"cannot write the result of {source_name} to the outbox {folder}"
    then = "then move the file back into the inbox"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "read-only file system" if error.errno == errno.EROFS else "permission denied"
        hint = f"give the user running nemowatch write access to {folder}, {then}"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = {
            errno.ENOSPC: "no space left on the disk",
            errno.EDQUOT: "the disk quota is used up",
            errno.EFBIG: "the file reached the file-size limit set for nemowatch (ulimit -f)",
        }[error.errno]
        hint = f"free some space in {folder} (or raise the limit), {then}"
    else:
        reason, hint = error.strerror or str(error), f"check {folder}, {then}"
    return EngineError(f"{what}: {reason}", retryable=True, hint=hint)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(_JSON_TEMP.format(path.name))
    temp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temp, path)


def stray_temps(
    outboxes: Iterable[Path],
    active_job_ids: set[str],
    ours: Callable[[str], bool] = lambda job_id: True,
) -> list[Path]:
    """Hidden partial results in the outboxes of our own jobs (`ours`) that are not running.

    Another nemowatch sharing the outbox (with its own ledger) may be writing the others.
    """
    found: list[Path] = []
    for outbox in outboxes:
        if not outbox.is_dir():
            continue
        for path in outbox.rglob(f".*{TEMP_SUFFIX}"):
            owner = path.name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[-1]
            # `temp_owner` (an adopted job's lease generation), `publish`'s second name
            job_id = owner.removesuffix(_PUBLISHING).split("~", 1)[0]
            if job_id not in active_job_ids and ours(job_id):
                found.append(path)
    return found


def _quote(path: Path) -> str:
    text = str(path)
    return "'" + text.replace("'", "'\\''") + "'"
