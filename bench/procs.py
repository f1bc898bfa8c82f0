"""What the benchmarks read of processes in /proc (Linux): CPU time and the resident memory
of a process tree, without a dependency such as psutil."""

from __future__ import annotations

import os
from collections.abc import Iterator

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def stat_fields(pid: int) -> list[bytes]:
    """/proc/PID/stat's fields after the command name (which may hold spaces and ")"):
    [0] is the state, [1] the parent, [11] and [12] user and system CPU in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, in seconds."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def processes() -> Iterator[tuple[int, list[bytes]]]:
    """Each live process's id and its stat fields (one that exits meanwhile is skipped)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), stat_fields(int(entry))
            except (OSError, IndexError):
                continue


def tree_rss(root: int) -> int:
    """The resident memory of `root` and all its descendants now, in bytes."""
    children: dict[int, list[int]] = {}
    for pid, fields in processes():
        children.setdefault(int(fields[1]), []).append(pid)
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(pid, []))
    return total


def main() -> int:
    """`python bench/procs.py PID...`: each process's CPU so far and its tree's memory now."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("pids", type=int, nargs="+")
    args = parser.parse_args()
    for pid in args.pids:
        print(f"{pid}: {cpu_seconds(pid):.2f} s of CPU, {tree_rss(pid) / 2**20:.1f} MiB resident")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
