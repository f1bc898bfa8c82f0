"""Watcher self-health, the pure parts (`mounts`): mount table, polling choice, identity."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from structlog.testing import capture_logs

from nemowatch.mounts import (
    InboxIdentity,
    InboxVerdict,
    Mount,
    filesystem_type,
    judge_inbox,
    mount_of,
    needs_polling,
    parse_mountinfo,
    sysctl_hint,
)
from nemowatch.watch import RESTART_LIMIT, RESTART_WINDOW, RestartBudget

MOUNTINFO = """\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec shared:12 - proc proc rw
30 22 0:45 / /mnt/share rw,relatime shared:50 - nfs4 nas:/export rw,vers=4.2
31 30 0:46 / /mnt/share/edits rw,relatime shared:51 - cifs //nas/edits rw
32 22 0:47 / /home/me/My\\040Videos rw,nosuid,nodev shared:52 - fuse.sshfs me@host:/v rw
33 22 0:48 / /mnt/c rw,noatime - 9p drvfs rw,dirsync
34 22 0:49 / /srv/vm rw,relatime - virtiofs hostshare rw
35 22 8:17 / /srv/disk rw,relatime shared:60 - ext4 /dev/sdb1 rw
36 35 0:50 / /srv/disk rw,relatime shared:61 - nfs nas:/disk rw
37 22 0:51 / /srv/back\\134slash\\011tab rw - smb3 //nas/odd rw
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/home/me/clip.mp4", "ext4"),
        ("/mnt/share", "nfs4"),
        ("/mnt/share/inbox", "nfs4"),
        ("/mnt/share/edits/inbox", "cifs"),  # the nested mount wins over its parent
        ("/mnt/shared/inbox", "ext4"),  # a longer name is not inside /mnt/share
        ("/home/me/My Videos/inbox", "fuse.sshfs"),  # \040 is a space
        ("/home/me/My", "ext4"),
        ("/mnt/c/Users/me", "9p"),
        ("/srv/vm/inbox", "virtiofs"),
        ("/srv/disk/inbox", "nfs"),  # mounted over /srv/disk: the later line is on top
        ("/srv/back\\slash\ttab/inbox", "smb3"),  # \134 and \011
    ],
)
def test_the_filesystem_of_a_path_is_its_longest_mount_point(path: str, fstype: str) -> None:
    assert filesystem_type(Path(path), MOUNTINFO) == fstype


def test_a_path_outside_every_listed_mount_has_no_filesystem_type() -> None:
    only_share = "30 22 0:45 / /mnt/share rw,relatime shared:50 - nfs4 nas:/export rw\n"
    assert filesystem_type(Path("/srv/inbox"), only_share) is None
    assert filesystem_type(Path("/srv/inbox"), "") is None


def test_lines_without_the_separator_are_skipped() -> None:
    text = "garbage\n30 22 0:45 / /mnt/share rw shared:50 nfs4 nas:/export rw\n" + MOUNTINFO
    assert parse_mountinfo(text)[0] == Mount(PurePosixPath("/"), "ext4")
    assert filesystem_type(Path("/mnt/share/inbox"), text) == "nfs4"


def test_mount_of_names_the_mount_point() -> None:
    assert mount_of(Path("/mnt/share/edits/a"), MOUNTINFO) == Mount(
        PurePosixPath("/mnt/share/edits"), "cifs"
    )


@pytest.mark.parametrize(
    "fstype",
    [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "virtiofs",
        "fuse",
        "fuse.sshfs",
        "fuse.rclone",
        "sshfs",
        "ceph",
        "glusterfs",
    ],
)
def test_network_and_fuse_filesystems_are_polled(fstype: str) -> None:
    assert needs_polling(fstype)


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "tmpfs", "overlay", "fuseblk", None])
def test_local_and_unknown_filesystems_use_events(fstype: str | None) -> None:
    assert not needs_polling(fstype)


def test_the_sysctl_hint_says_how_to_raise_the_limit_now_and_for_good() -> None:
    hint = sysctl_hint("fs.inotify.max_user_watches", 524288)
    assert "sysctl fs.inotify.max_user_watches=524288" in hint
    assert "/etc/sysctl.d/" in hint


# --- inbox identity --------------------------------------------------------------------------

ROOT = Mount(PurePosixPath("/"), "ext4")
SHARE = Mount(PurePosixPath("/mnt/share"), "nfs4")
NESTED = Mount(PurePosixPath("/mnt/share/edits"), "nfs4")


@pytest.mark.parametrize(
    ("recorded", "current", "verdict"),
    [
        pytest.param(InboxIdentity(7, SHARE), None, InboxVerdict.MISSING, id="gone"),
        pytest.param(None, InboxIdentity(7, SHARE), InboxVerdict.SAME, id="first-seen"),
        pytest.param(
            InboxIdentity(7, SHARE), InboxIdentity(7, SHARE), InboxVerdict.SAME, id="unchanged"
        ),
        pytest.param(
            InboxIdentity(7, SHARE),
            InboxIdentity(1, ROOT),
            InboxVerdict.MISSING,
            id="unmounted-the-mount-point-underneath-shows",
        ),
        pytest.param(
            InboxIdentity(9, NESTED),
            InboxIdentity(7, SHARE),
            InboxVerdict.MISSING,
            id="unmounted-the-same-type-shows-underneath",
        ),
        pytest.param(
            InboxIdentity(7, SHARE),
            InboxIdentity(8, SHARE),
            InboxVerdict.REMOUNTED,
            id="remounted-with-a-new-device-number",
        ),
        pytest.param(
            InboxIdentity(7, SHARE),
            InboxIdentity(8, Mount(PurePosixPath("/mnt/share"), "cifs")),
            InboxVerdict.MISSING,
            id="another-filesystem-on-the-same-mount-point",
        ),
        pytest.param(
            InboxIdentity(1, ROOT),
            InboxIdentity(7, SHARE),
            InboxVerdict.REMOUNTED,
            id="the-share-came-up-after-the-daemon",
        ),
        pytest.param(
            InboxIdentity(7, None),
            InboxIdentity(8, None),
            InboxVerdict.MISSING,
            id="another-device-and-no-mount-table",
        ),
        pytest.param(
            InboxIdentity(7, None), InboxIdentity(7, None), InboxVerdict.SAME, id="no-mount-table"
        ),
    ],
)
def test_an_inbox_is_missing_unless_it_is_the_watched_folder_or_its_share_again(
    recorded: InboxIdentity | None, current: InboxIdentity | None, verdict: InboxVerdict
) -> None:
    assert judge_inbox(recorded, current) is verdict


def test_the_restart_budget_allows_a_few_restarts_per_window_and_logs_the_limit_once() -> None:
    now = [0.0]
    budget = RestartBudget(clock=lambda: now[0])
    with capture_logs() as logs:
        assert all(budget.allows(["dead"]) for _ in range(RESTART_LIMIT))
        assert not budget.allows(["dead"]) and not budget.allows(["dead"])
        now[0] += RESTART_WINDOW + 1  # the old restarts are out of the window
        assert budget.allows(["dead"])
    assert [entry["event"] for entry in logs] == ["watch.restart_limit"]
    assert budget.restarts == RESTART_LIMIT + 1
