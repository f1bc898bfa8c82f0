"""Benchmark: an idle daemon watching 20 inboxes: its CPU use, and what wakes it.

    python bench/idle.py [--inboxes 20] [--seconds 60] [--scan-interval 300] [--work DIR]

The daemon runs as a child process (`nemowatch run`, `engine: local`, JSON log at the
default level `info`) with one rule per inbox, every inbox empty and on a local
filesystem (so watched by inotify, not polled). After `daemon.started` and a few seconds
of settling, nothing happens for `--seconds`; the process is read from /proc at the start
and the end of that window only (reading /proc does not wake it).

Reported:
  - CPU (user + system, all threads) over the window, as % of one core (target < 1 %),
  - wakeups: per thread, the voluntary context switches (each time the thread slept and
    was woken: a timer or an event) and the involuntary ones (preempted while running),
    per second and in total, with the thread's CPU,
  - what each thread is: the main thread is the asyncio loop; the others are named from
    their Python stacks when `py-spy` is installed (`pip install py-spy`, looked for on
    PATH and beside this Python), else by the system call they are blocked in.
Results go to stdout as a table and as one JSON line; record them in docs/benchmarks.md
with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.procs import CLOCK_TICKS, cpu_seconds  # noqa: E402
from tests.e2e.harness import Daemon  # noqa: E402

# x86_64 system call numbers a sleeping thread of this daemon is found in
SYSCALLS = {"7": "poll", "202": "futex", "219": "restart_syscall", "232": "epoll_wait"}


@dataclass(frozen=True)
class ThreadLook:
    cpu_seconds: float
    voluntary: int
    involuntary: int


def look_at(pid: int) -> dict[int, ThreadLook]:
    """Every thread of `pid`: its CPU and context switches so far."""
    found = {}
    for entry in os.listdir(f"/proc/{pid}/task"):
        tid = int(entry)
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            switches = {}
            with open(f"/proc/{pid}/task/{tid}/status") as handle:
                for line in handle:
                    if "ctxt_switches:" in line:
                        key, _, value = line.partition(":")
                        switches[key] = int(value)
        except OSError:
            continue  # ended meanwhile
        found[tid] = ThreadLook(
            cpu_seconds=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            voluntary=switches.get("voluntary_ctxt_switches", 0),
            involuntary=switches.get("nonvoluntary_ctxt_switches", 0),
        )
    return found


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


# What a thread is, from the frames of its Python stack (first match wins).
ROLES = (
    ("InotifyFD.", "watchdog inotify reader (blocks in poll on the inotify fd)"),
    ("InotifyEmitter.", "watchdog inotify emitter, one per inbox (blocks on its queue)"),
    ("PollingEmitter.", "watchdog polling emitter (wakes every poll interval)"),
    ("dispatch_events", "watchdog observer dispatcher (blocks on its event queue)"),
    ("concurrent/futures/thread.py", "asyncio.to_thread worker (scans, probes)"),
    ("EpollSelector.select", "asyncio event loop (the daemon's own timers)"),
)


def thread_roles(pid: int) -> dict[int, str]:
    """tid -> what the thread is, from `py-spy dump` when available, else its syscall."""
    roles: dict[int, str] = {}
    binary = py_spy()
    if binary is not None:
        result = subprocess.run(
            [binary, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60
        )
        for block in re.split(r"\n(?=Thread )", result.stdout):
            match = re.match(r"Thread (\d+|0x[0-9A-Fa-f]+) \(\w+\): \"([^\"]*)\"", block)
            if not match or not match[1].isdigit():
                continue
            role = next((text for key, text in ROLES if key in block), None)
            roles[int(match[1])] = f"{match[2]}: {role or 'other'}"
    for entry in os.listdir(f"/proc/{pid}/task"):
        tid = int(entry)
        if tid in roles:
            continue
        try:
            number = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0]
        except (OSError, IndexError):
            number = "?"
        where = SYSCALLS.get(number, f"syscall {number}")
        roles[tid] = "main: asyncio event loop" if tid == pid else f"blocked in {where}"
    return roles


def write_config(work: Path, inboxes: int, scan_interval: float | None) -> Path:
    config: dict[str, Any] = {
        "engine": "local",
        "state_dir": str(work / "state"),
        "rules": [
            {
                "name": f"inbox{index:02d}",
                "inbox": str(work / "inboxes" / f"inbox{index:02d}"),
                "outbox": str(work / "outboxes" / f"inbox{index:02d}"),
                "instructions": ["cut out silences"],
            }
            for index in range(inboxes)
        ],
    }
    if scan_interval is not None:
        config["scan_interval"] = scan_interval
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--inboxes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after start-up")
    parser.add_argument(
        "--scan-interval", type=float, default=None, help="seconds (default: the config's)"
    )
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nemowatch-idle-"))
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work, args.inboxes, args.scan_interval)
    daemon = Daemon(config, work / "daemon.log").start()
    assert daemon.process is not None
    pid = daemon.process.pid
    try:
        time.sleep(args.warmup / 2)
        roles = thread_roles(pid)  # py-spy pauses the process: done before the window
        time.sleep(args.warmup / 2)
        before, cpu_before, started = look_at(pid), cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        after, cpu_after, ended = look_at(pid), cpu_seconds(pid), time.monotonic()
        running = daemon.running
    finally:
        code = daemon.stop()
    window = ended - started
    threads: list[dict[str, Any]] = []
    for tid in sorted(set(before) | set(after)):
        first = before.get(tid, ThreadLook(0.0, 0, 0))
        last = after.get(tid)
        if last is None:
            continue  # ended during the window; its switches are lost with it
        voluntary = last.voluntary - first.voluntary
        involuntary = last.involuntary - first.involuntary
        threads.append(
            {
                "tid": tid,
                "role": roles.get(tid, "started during the window"),
                "voluntary": voluntary,
                "involuntary": involuntary,
                "wakeups_per_second": round((voluntary + involuntary) / window, 3),
                "cpu_ms": round(1000 * (last.cpu_seconds - first.cpu_seconds), 1),
            }
        )
    ended_threads = sorted(set(before) - set(after))
    total_voluntary = sum(thread["voluntary"] for thread in threads)
    total_involuntary = sum(thread["involuntary"] for thread in threads)
    errors = [entry for entry in daemon.events() if entry.get("level") in ("error", "critical")]
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "inboxes": args.inboxes,
        "scan_interval": args.scan_interval or "config default",
        "window_seconds": round(window, 1),
        "cpu_seconds": round(cpu_after - cpu_before, 3),
        "cpu_percent_of_one_core": round(100 * (cpu_after - cpu_before) / window, 3),
        "cpu_resolution_ms": round(1000 / CLOCK_TICKS, 1),  # /proc counts in clock ticks
        "threads": len(after),
        "threads_ended_in_window": len(ended_threads),
        "wakeups_total": total_voluntary + total_involuntary,
        "wakeups_per_second": round((total_voluntary + total_involuntary) / window, 3),
        "ran_throughout": running,
        "errors_logged": len(errors),
        "daemon_exit_code": code,
    }
    width = max(len(key) for key in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print()
    print(f"{'tid':>8}  {'vol':>5}  {'invol':>5}  {'per s':>6}  {'CPU ms':>7}  thread")
    for thread in threads:
        print(
            f"{thread['tid']:>8}  {thread['voluntary']:>5}  {thread['involuntary']:>5}"
            f"  {thread['wakeups_per_second']:>6}  {thread['cpu_ms']:>7}  {thread['role']}"
        )
    print(json.dumps({**results, "per_thread": threads}))
    return 0 if running and code == 0 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
