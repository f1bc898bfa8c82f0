"""The filesystem effects of intake, the outbox and the operator commands: claiming a file
by an atomic rename (and giving it back), moving and linking without ever replacing what is
there, free names (`clip (2).mp4`) and names that fit, making a move durable (fsync), and
OSError translated once into the errors nemowatch reports.

The decisions that lead here are pure and live in `intake` (ignore, settle, which rule).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from pathlib import Path, PurePath

from nemowatch.errors import MediaError, NemowatchError, TransientError
from nemowatch.intake import FolderEntry, Snapshot, folder_snapshot, is_sidecar_name

NAME_MAX = 255  # bytes (UTF-8) in one file name on Linux filesystems (ext4, XFS, Btrfs, tmpfs)
MARK = "…"  # where a name too long to fit was cut
_LONGEST_KEPT_SUFFIX = 32  # bytes of an extension kept when a name is cut; longer ones go


def fit_name(name: str, limit: int = NAME_MAX) -> str:
    """`name` if its UTF-8 form fits in `limit` bytes, else its stem cut to fit (at a
    character boundary, ending in "…"), its extension kept: `a very lo….mp4`."""
    if len(name.encode()) <= limit:
        return name
    pure = PurePath(name)
    stem, suffix = pure.stem, pure.suffix
    if len(suffix.encode()) > _LONGEST_KEPT_SUFFIX:
        stem, suffix = name, ""
    room = limit - len(suffix.encode()) - len(MARK.encode())
    if room < 1:
        raise ValueError(f"no room for a name in {limit} bytes: {name!r}")
    cut = stem.encode()[:room].decode(errors="ignore")  # never half a character
    return f"{cut}{MARK}{suffix}"


def free_name(folder: Path, name: str) -> str:
    """`name` if `folder` has no entry by that name, else the first free `stem (2).ext`, ...
    (its stem cut where the number would not fit in NAME_MAX bytes)."""
    _check_plain_name(name)
    if not os.path.lexists(folder / name):
        return name
    number = 2
    while os.path.lexists(folder / _numbered(name, number)):
        number += 1
    return _numbered(name, number)


def _numbered(name: str, number: int) -> str:
    mark = f" ({number})"
    pure = PurePath(fit_name(name, NAME_MAX - len(mark)))
    return f"{pure.stem}{mark}{pure.suffix}"


# Errors that mean "the path is not there (any more)", as opposed to "cannot look".
_GONE = (FileNotFoundError, NotADirectoryError)

# os.link failures that mean "this filesystem does not do hard links here", not a real error.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def snapshot(path: Path) -> Snapshot | None:
    """The file's current snapshot, or None if it is gone or is not a regular file.

    Symlinks are never followed (a link is not a file we take). Raises MediaError when
    the file exists but cannot be examined (permissions).
    """
    status = _status(path)
    if status is None or not stat.S_ISREG(status.st_mode):
        return None
    return Snapshot(
        size=status.st_size,
        mtime_ns=status.st_mtime_ns,
        inode=status.st_ino,
        device=status.st_dev,
    )


def sidecars_of(video: Path) -> list[Path]:
    """The sidecars beside `video` now (for `process`; the daemon lets them settle first)."""
    try:
        names = sorted(os.listdir(video.parent))
    except OSError:
        return []
    stem = video.stem
    return [
        video.parent / name
        for name in names
        if is_sidecar_name(name) and PurePath(name).stem == stem and (video.parent / name).is_file()
    ]


def claim_path(inbox: Path, job_id: str, name: str) -> Path:
    """Where a claimed file lives while its job runs: `inbox/processing/<job_id>__<name>`,
    the name cut to fit NAME_MAX (the job keeps the original name: it goes back under it)."""
    _check_plain_name(job_id)
    prefix = f"{job_id}__"
    return inbox / "processing" / (prefix + fit_name(name, NAME_MAX - len(prefix.encode())))


def claim(path: Path, inbox: Path, job_id: str, *, expected: Snapshot | None = None) -> Path | None:
    """Move `path` into `inbox/processing/<job_id>__<name>` by one atomic rename.

    Returns the new path, or None if the file is gone or no longer a regular file (another
    daemon or a person took it first: of two renames of one file, exactly one succeeds).
    With `expected` (the snapshot it settled with), None too when the file was written
    to or replaced since: it stays in the inbox (is put back) and must settle again.
    """
    destination = claim_path(inbox, job_id, path.name)
    processing = destination.parent
    for attempt in range(2):
        current = snapshot(path)
        if current is None or (expected is not None and current != expected):
            return None
        try:
            processing.mkdir(parents=True, exist_ok=True)
            # rename(2) would silently replace an existing destination; the job id makes
            # it unique, so an existing one is a caller bug, never something to overwrite.
            if os.path.lexists(destination):
                raise ValueError(f"job id {job_id!r} was used before: {destination} exists")
            os.rename(path, destination)  # renames a symlink itself, never its target
        except _GONE:
            # Either the file went, or processing/ was removed between mkdir and rename.
            if attempt == 0 and os.path.lexists(path):
                continue
            return None
        except OSError as exc:
            raise _translate(exc, "claim", path, folder=processing) from exc
        break
    moved = snapshot(destination)
    if moved is None or (expected is not None and moved != expected):
        # The file was swapped for something else (a link, a folder, another file) or
        # written to between the check and the rename: put it back and leave it alone.
        _put_back(destination, path)
        return None
    return destination


def _status(path: Path) -> os.stat_result | None:
    """lstat(2) of `path`; None when it is gone; MediaError when it cannot be examined."""
    try:
        return os.lstat(path)
    except _GONE:
        return None
    except OSError as exc:
        raise _translate(exc, "examine", path) from exc


def folder_entries(path: Path) -> list[FolderEntry] | None:
    """What a folder holds, one level, no link followed; None when it is gone or is no
    folder (a link to one included). Raises MediaError when it cannot be listed."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return None
        with os.scandir(path) as listing:
            found = list(listing)
    except _GONE:
        return None
    except OSError as exc:
        raise _translate(exc, "list", path) from exc
    entries = []
    for entry in found:
        try:
            status = entry.stat(follow_symlinks=False)
        except _GONE:
            continue  # went while listing: the next look sees the folder changed
        except OSError as exc:
            raise _translate(exc, "examine", Path(entry.path)) from exc
        kind = (
            "file"
            if stat.S_ISREG(status.st_mode)
            else "folder"
            if stat.S_ISDIR(status.st_mode)
            else "other"
        )
        entries.append(FolderEntry(entry.name, kind, status.st_size, status.st_mtime_ns))
    return sorted(entries, key=lambda item: item.name)


def folder_look(path: Path) -> Snapshot | None:
    """A folder's contents as one snapshot (see `intake.folder_snapshot`); None when it is
    gone or no folder."""
    entries = folder_entries(path)
    if entries is None:
        return None
    status = _status(path)
    if status is None:
        return None
    own = Snapshot(0, status.st_mtime_ns, status.st_ino, status.st_dev)
    return folder_snapshot(own, entries)


def claim_folder(
    path: Path, inbox: Path, claim_id: str, *, expected: Snapshot | None = None
) -> Path | None:
    """Move a folder (a batch) into `inbox/processing/<claim_id>__<name>` by one atomic
    rename; None when it is gone, or changed since `expected` (it stays, to settle again).
    Its files keep their names, inodes and times."""
    destination = claim_path(inbox, claim_id, path.name)
    before = folder_entries(path)
    current = folder_look(path)
    if before is None or current is None or (expected is not None and current != expected):
        return None
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(destination):
            raise ValueError(f"claim id {claim_id!r} was used before: {destination} exists")
        os.rename(path, destination)
    except _GONE:
        return None
    except OSError as exc:
        raise _translate(exc, "claim", path, folder=destination.parent) from exc
    # A file written into it between the look and the rename: give it back to settle again.
    if folder_entries(destination) != before:
        with contextlib.suppress(OSError):
            if not os.path.lexists(path):
                os.rename(destination, path)
        return None
    return destination


def remove_folder(path: Path) -> None:
    """Delete a batch folder and what it holds (only after its outputs are published)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _translate(exc, "delete", path) from exc


def move_no_replace(source: Path, folder: Path, name: str) -> Path:
    """Move `source` into `folder` as `name`, or `stem (2).ext`...; never overwrites.

    Atomic on one filesystem (hard link, then unlink the source); where hard links are
    not supported, a rename after checking the name is free; across filesystems, a copy
    to a hidden temporary name first. Creates `folder`. Returns the final path.

    Resumable: a move interrupted between the link and the unlink (the daemon killed)
    left the file under both names; moving it again finishes that move instead of making
    a second copy beside the first. Durable: both folders are synced before it returns,
    so a power cut after it cannot bring the file back where it was, or lose it.
    """
    _check_plain_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = _linked_in(source, folder) or _link_no_replace(source, folder, name)
        sync_folder(folder)
        if os.path.lexists(source):  # gone already when it was renamed (no hard links)
            os.unlink(source)
        sync_folder(source.parent)
        return target
    except OSError as exc:
        raise _translate(exc, "move", source, folder=folder) from exc


def unclaim(claimed: Path, source: Path) -> Path:
    """Give a claimed file back to its inbox under the name it was dropped with (or
    `name (2).ext` when that is taken: nothing is replaced). Returns where it went.

    The file keeps its inode, so a writer that still has it open goes on writing into it,
    now in the inbox, where it settles again."""
    return move_no_replace(claimed, source.parent, source.name)


def sync_file(path: Path) -> None:
    """Flush a file's data to the disk (fsync), so a name given to it afterwards never
    names a file that a power cut leaves empty or partial."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries to the disk (fsync), making the links, renames and unlinks
    done in it durable. A filesystem that cannot sync a folder is let be."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except _GONE:
        return
    try:
        os.fsync(descriptor)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise  # EIO and the like: the move may not be on the disk
    finally:
        os.close(descriptor)


def link_no_replace(source: Path, folder: Path, name: str) -> Path:
    """Give `source` a second name in `folder`: `name`, or `stem (2).ext`...; never
    overwrites, and `source` stays (where the filesystem has no hard links it is renamed
    instead, and is then gone). Creates `folder`. Returns the new path."""
    _check_plain_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _link_no_replace(source, folder, name)
    except OSError as exc:
        raise _translate(exc, "link", source, folder=folder) from exc


def linked_in(source: Path, folder: Path) -> Path | None:
    """A visible name in `folder` that is the same file as `source` (a hard link), if any:
    what an interrupted move or publish leaves behind. None when `source` is gone."""
    try:
        return _linked_in(source, folder)
    except OSError as exc:
        raise _translate(exc, "examine", source, folder=folder) from exc


def _linked_in(source: Path, folder: Path) -> Path | None:
    try:
        status = os.lstat(source)
        if status.st_nlink < 2 or not stat.S_ISREG(status.st_mode):
            return None  # the only name it has: nothing to look for
        with os.scandir(folder) as listing:
            for entry in listing:
                # the inode comes with the listing; only a match costs a stat
                if entry.inode() != status.st_ino or entry.name.startswith("."):
                    continue
                other = entry.stat(follow_symlinks=False)
                if other.st_dev == status.st_dev and Path(entry.path) != source:
                    return Path(entry.path)
    except _GONE:
        return None
    return None


def _link_no_replace(source: Path, folder: Path, name: str) -> Path:
    while True:
        target = folder / free_name(folder, name)
        try:
            os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            continue  # taken since free_name looked: try the next number
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return _copy_across(source, folder, name)
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(target):
                continue
            os.rename(source, target)
        return target


def _copy_across(source: Path, folder: Path, name: str) -> Path:
    # Copy under a hidden name (the watcher ignores it), then publish it without
    # replacing anything: no reader ever sees a partial file. The source stays.
    ending = f".{uuid.uuid4().hex}.partial"
    temporary = folder / ("." + fit_name(name, NAME_MAX - 1 - len(ending)) + ending)
    try:
        shutil.copy2(source, temporary, follow_symlinks=False)
        sync_file(temporary)
        return _link_no_replace(temporary, folder, name)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _put_back(current: Path, original: Path) -> None:
    # If even that fails there is nothing more to do: it is not a file we would process.
    with contextlib.suppress(NemowatchError):
        move_no_replace(current, original.parent, original.name)


def _check_plain_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")


def _translate(
    exc: OSError, action: str, path: Path, *, folder: Path | None = None
) -> NemowatchError:
    """One OSError, as the error nemowatch reports (called once, at this boundary)."""
    if isinstance(exc, PermissionError):
        places = f"{path.parent}" + (f" and {folder}" if folder is not None else "")
        return MediaError(
            f"cannot {action} {path}: permission denied",
            hint=f"give the user running nemowatch read and write access to {places}",
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = folder if folder is not None else path.parent
        return TransientError(
            f"cannot {action} {path}: no space left in {where}",
            hint="free some disk space; the job is retried",
        )
    if exc.errno == errno.EXDEV:
        return MediaError(
            f"cannot {action} {path}: it is on another filesystem than {folder}",
            hint="keep subfolders of an inbox on the same filesystem as the inbox",
        )
    return MediaError(f"cannot {action} {path}: {exc.strerror or exc}")
