"""Which filesystem holds a folder, whether inotify works on it, and whether an inbox is
still the folder that was watched (an unmounted share must not look like an empty inbox).

Pure functions over the text of /proc/self/mountinfo (given as a parameter, so tests pass
their own), and `examine_inbox`, the one stat that judges an inbox against its recorded
identity. Used by the watcher and by `doctor`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

# --- filesystems ---------------------------------------------------------------------------

MOUNTINFO = Path("/proc/self/mountinfo")

# Filesystems where inotify sees only what this machine does: files written by another
# machine (or by the host of a VM) raise no event here. fuse.* is matched by prefix.
POLLED_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",  # WSL2 drives, QEMU shares
        "virtiofs",
        "vboxsf",
        "drvfs",  # WSL1 drives
        "fuse",
        "sshfs",
        "ceph",
        "glusterfs",
        "afs",
        "lustre",
        "gpfs",
        "beegfs",
        "gfs2",
        "ocfs2",
        "davfs",
    }
)

POLLING_REASON = "network or FUSE filesystem: inotify events do not arrive from other machines"

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """Where a filesystem is mounted and its type, from one line of mountinfo."""

    mount_point: PurePosixPath
    fstype: str


def parse_mountinfo(mountinfo: str) -> list[Mount]:
    """The mounts listed in /proc/self/mountinfo text, in its order (pure).

    A line reads `36 35 98:0 /root /mount/point options [optional...] - fstype source ...`;
    the kernel writes space, tab, newline and backslash in paths as octal escapes (`\\040`).
    Lines that do not have that shape are skipped.
    """
    mounts: list[Mount] = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
            fstype = fields[separator + 1]
        except (ValueError, IndexError):
            continue
        mount_point = _OCTAL_ESCAPE.sub(lambda match: chr(int(match[1], 8)), fields[4])
        if fstype and mount_point.startswith("/"):
            mounts.append(Mount(PurePosixPath(mount_point), fstype))
    return mounts


def mount_of(path: Path | PurePosixPath, mountinfo: str) -> Mount | None:
    """The mount holding `path` (absolute, symlinks resolved by the caller) (pure).

    The longest mount point that contains it; of equal ones the last listed, which is the
    one mounted on top. None when no listed mount contains it (or there is no mountinfo).
    """
    target = PurePosixPath(path)
    found: Mount | None = None
    for mount in parse_mountinfo(mountinfo):
        if not target.is_relative_to(mount.mount_point):
            continue
        if found is None or len(mount.mount_point.parts) >= len(found.mount_point.parts):
            found = mount
    return found


def filesystem_type(path: Path, mountinfo: str) -> str | None:
    """The type (`ext4`, `nfs4`, `fuse.sshfs`, ...) of the filesystem holding `path` (pure)."""
    mount = mount_of(path, mountinfo)
    return None if mount is None else mount.fstype


def needs_polling(fstype: str | None) -> bool:
    """Whether inotify misses changes on this filesystem type, so it must be polled (pure)."""
    if fstype is None:
        return False  # unknown: events, as on any local disk
    return fstype in POLLED_FILESYSTEMS or fstype.startswith("fuse.")


def read_mountinfo() -> str:
    """This process's mount table; "" where there is none (not Linux, no /proc)."""
    try:
        return os.fsdecode(MOUNTINFO.read_bytes())
    except OSError:
        return ""


def sysctl_hint(name: str, value: int) -> str:
    """How to raise a kernel limit now and for good."""
    return (
        f"raise it with `sysctl {name}={value}`, and to keep it after a reboot put "
        f"`{name}={value}` in /etc/sysctl.d/90-nemowatch.conf"
    )


# --- inbox identity ------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxIdentity:
    """What an inbox folder was when it was watched: its device and the mount holding it."""

    device: int
    mount: Mount | None


class InboxVerdict(StrEnum):
    """What an inbox is now, compared with what was watched."""

    SAME = "same"  # the folder that was watched (or none was recorded yet)
    # Another device, taken as the inbox: the same mount point with the same filesystem
    # type (an NFS or SMB remount gets a new device number), or a filesystem mounted onto
    # or above the inbox since (the share came up after the daemon started).
    REMOUNTED = "remounted"
    # Gone, not a folder, unreadable, or the mount that held it went away and what is seen
    # now is the folder underneath it (or another filesystem took the same mount point).
    MISSING = "missing"


def judge_inbox(recorded: InboxIdentity | None, current: InboxIdentity | None) -> InboxVerdict:
    """Whether the inbox folder seen now (`current`, None if absent) is still the inbox (pure).

    Without mount information a device change cannot be explained, so it counts as missing
    until the recorded device is back.
    """
    if current is None:
        return InboxVerdict.MISSING
    if recorded is None or current.device == recorded.device:
        return InboxVerdict.SAME
    old, new = recorded.mount, current.mount
    if old is None or new is None:
        return InboxVerdict.MISSING
    if new.mount_point == old.mount_point:
        return InboxVerdict.REMOUNTED if new.fstype == old.fstype else InboxVerdict.MISSING
    if new.mount_point.is_relative_to(old.mount_point):
        return InboxVerdict.REMOUNTED
    return InboxVerdict.MISSING  # a shallower mount: the one holding the inbox is gone


class MountTable:
    """The mount table, read at most once per look (only when something needs it)."""

    def __init__(self, read: Callable[[], str] = read_mountinfo) -> None:
        self._read = read
        self._text: str | None = None

    def mount_of(self, path: Path) -> Mount | None:
        if self._text is None:
            self._text = self._read()
        return mount_of(PurePosixPath(os.path.realpath(path)), self._text)


def examine_inbox(
    inbox: Path, recorded: InboxIdentity | None, mounts: MountTable
) -> tuple[InboxVerdict, InboxIdentity | None, str]:
    """The verdict on an inbox against what was watched (`recorded`), what it is now, and
    why it is missing if it is. One stat; the mount table only when the device changed."""
    try:
        status = os.stat(inbox)
    except FileNotFoundError:
        return InboxVerdict.MISSING, None, "the folder is gone"
    except OSError as exc:  # ESTALE, ENOTCONN (a FUSE daemon gone), EACCES, EIO, ...
        return InboxVerdict.MISSING, None, str(exc)
    if not stat.S_ISDIR(status.st_mode):
        return InboxVerdict.MISSING, None, "no longer a folder"
    if recorded is not None and status.st_dev == recorded.device:
        return InboxVerdict.SAME, recorded, ""  # the usual case: no mount table needed
    current = InboxIdentity(status.st_dev, mounts.mount_of(inbox))
    verdict = judge_inbox(recorded, current)
    return (
        verdict,
        current,
        "another filesystem is there now: the one that held it was unmounted",
    )
