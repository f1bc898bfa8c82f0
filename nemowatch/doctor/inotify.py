"""doctor's inotify check: the kernel's limits against the watches one daemon takes.

Past the limits nothing breaks: the inbox (or all of them) is polled instead, and the
doorbells fall back to a timer. So the verdict is a note at worst. The folders counted are
the daemon's own: `inbox_watches` for the inboxes, `Doorbells.folders` for the doorbells.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nemowatch.config import Config
from nemowatch.doctor.findings import Finding, Machine, Status
from nemowatch.mounts import filesystem_type, needs_polling, sysctl_hint
from nemowatch.watch import Doorbells, inbox_watches

# The inotify instances one daemon takes: one for the inboxes (`watch.Watcher`), one for
# its doorbells (config files, rule files and the operators' bell; `watch.Doorbell`).
INSTANCES_PER_DAEMON = 2
RAISED_WATCHES = 524288
RAISED_INSTANCES = 1024


def inotify_finding(config: Config, machine: Machine) -> Finding:
    """The kernel's inotify limits against the folders one daemon of `config` watches.

    Past the limits nothing breaks: the inbox (or all of them) is polled instead, and the
    doorbells fall back to a timer. So the verdict is a note at worst.
    """
    limits = {
        name: _read_int(machine.inotify_limits / name)
        for name in ("max_user_watches", "max_user_instances")
    }
    watches_limit, instances_limit = limits["max_user_watches"], limits["max_user_instances"]
    if watches_limit is None or instances_limit is None:
        return Finding(
            "inotify",
            Status.NOTE,
            f"no inotify limits in {machine.inotify_limits}: inboxes are watched by this"
            " system's own events, or polled",
        )
    needed = _watches_needed(config, machine.mountinfo, cap=watches_limit + 1)
    in_use = _inotify_in_use(machine.proc, machine.uid)
    facts: dict[str, Any] = {
        "max_user_watches": watches_limit,
        "max_user_instances": instances_limit,
        "watches_needed": needed,
        "instances_needed": INSTANCES_PER_DAEMON,
        "watches_in_use": in_use[0] if in_use else None,
        "instances_in_use": in_use[1] if in_use else None,
    }
    used_watches, used_instances = in_use if in_use is not None else (0, 0)
    detail = (
        f"{needed} folder{'s' if needed != 1 else ''} to watch and {INSTANCES_PER_DAEMON}"
        f" instances needed; this user has {used_watches} of {watches_limit} watches and"
        f" {used_instances} of {instances_limit} instances in use"
        + ("" if in_use is not None else " (usage unknown)")
    )
    if used_instances + INSTANCES_PER_DAEMON > instances_limit:
        return Finding(
            "inotify",
            Status.NOTE,
            f"{detail}: too few instances left, so every inbox will be polled",
            fix=sysctl_hint("fs.inotify.max_user_instances", RAISED_INSTANCES),
            facts=facts,
        )
    if used_watches + needed > watches_limit:
        return Finding(
            "inotify",
            Status.NOTE,
            f"{detail}: too few watches left, so some inboxes will be polled",
            fix=sysctl_hint("fs.inotify.max_user_watches", max(RAISED_WATCHES, 2 * needed)),
            facts=facts,
        )
    return Finding("inotify", Status.OK, detail, facts=facts)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _watches_needed(config: Config, mountinfo: str, *, cap: int) -> int:
    """The inotify watches one daemon takes: one per folder of each inbox watched by events
    (every folder beneath a recursive one), and the doorbells' folders, as the daemon
    watches them. Counting stops at `cap`."""
    count = 0
    for watch in inbox_watches(config.rules):
        fstype = filesystem_type(Path(os.path.realpath(watch.inbox)), mountinfo)
        if watch.poll or needs_polling(fstype):
            continue
        count += 1
        if watch.recursive:
            for _folder, subfolders, _files in os.walk(watch.inbox):
                count += len(subfolders)
                if count >= cap:
                    return cap
    return min(cap, count + len(Doorbells.of(config).folders()))


def _inotify_in_use(proc: Path, uid: int) -> tuple[int, int] | None:
    """(watches, instances) of inotify held now by the processes of `uid` (the kernel's
    limits are per user); None when /proc cannot tell."""
    watches = instances = 0
    try:
        processes = [entry for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return None
    for process in processes:
        try:
            if process.stat().st_uid != uid:
                continue
            descriptors = list((process / "fd").iterdir())
        except OSError:
            continue  # gone, or not ours to look at
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) != "anon_inode:inotify":
                    continue
                info = (process / "fdinfo" / descriptor.name).read_text(encoding="ascii")
            except OSError:
                continue
            instances += 1
            watches += sum(1 for line in info.splitlines() if line.startswith("inotify wd:"))
    return watches, instances
