"""Benchmark: 1,000 small files dropped at once, through the daemon and the fake NemoVideo.

    python bench/load.py [--files 1000] [--concurrency 4 8 16] [--serial 40] [--batches 1]
                         [--work DIR]

The fake server (tests/fakes/nemo_server.py) runs in this process with no latency: renders
complete on the first poll, SSE events come without gaps. The daemon runs as a child
process (`nemowatch run`, `engine: nemo`, JSON log at the default level `info`), once per
concurrency. Each run starts with fresh folders, ledger and fake; the files (a 1 s
160x120 clip, each copy given its own trailing bytes so that no two have the same content
fingerprint) are written to a sibling folder of the inbox and then renamed into the inbox
one after another as fast as Python can.

Reported per run:
  - wall time from the first rename to the last `outbox.published` (the log's timestamps),
    and jobs per second over it,
  - daemon CPU seconds (user + system, from /proc) per job, and the fake's CPU per job
    (this process, fake threads and sampler together), and HTTP requests per job,
  - the daemon's resident memory before, at its peak (VmHWM, target < 150 MB) and after
    the last job, and whether it ever had a child process (the nemo path probes with PyAV
    in-process, so it should not),
  - exactly once: outputs, archived sources, ledger rows in `done`, the fake's sessions,
    uploads, applied instructions and accepted renders all equal the number of files, and
    no session saw an instruction applied twice or a second accepted render.
A serial run (concurrency 1, `--serial` files) gives the per-job wall and its split into
steps (medians of the per-step timings that `job.done` logs). `--batches N` drops the
files in N parts instead, each when the one before has finished, and reports the daemon's
resident memory after each part: memory that keeps growing from part to part is memory
kept per job (wall time and jobs per second then include the pauses between parts).
Results go to stdout as a table and as one JSON line (exit status 1 if any run was not
exactly once); record them in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.procs import cpu_seconds  # noqa: E402
from nemowatch.probe import probe  # noqa: E402
from tests.e2e.harness import Daemon, ledger_states, wait_for  # noqa: E402
from tests.fakes.nemo_server import FakeNemo, Variants  # noqa: E402
from tests.media import make_clip  # noqa: E402

INSTRUCTIONS = ["cut out silences", "add background music"]


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rusage_cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def children_of(pid: int) -> list[str]:
    """Names of the direct children of `pid`."""
    names = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                text = handle.read()
        except OSError:
            continue
        head, _, tail = text.rpartition(b")")
        if int(tail.split()[1]) == pid:
            names.append(head.partition(b"(")[2].decode(errors="replace"))
    return names


class Sampler:
    """Samples the daemon's resident memory and children until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.children: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        looks = 0
        while not self._done.is_set():
            try:
                self.peak_rss_kb = max(self.peak_rss_kb, status_kb(self.pid, "VmRSS"))
                if looks % 5 == 0:  # the /proc walk costs more: every 0.5 s
                    self.children.update(children_of(self.pid))
            except OSError:
                return
            looks += 1
            time.sleep(self.interval)


def make_sources(work: Path, count: int) -> tuple[Path, list[Path]]:
    """The rendered video the fake serves, and `count` distinct small sources (staged)."""
    clip = work / "clip.mp4"
    if not clip.exists():
        make_clip(clip, 1, size="160x120", audio="tone")
    payload = clip.read_bytes()
    staging = work / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    sources = []
    for index in range(count):
        path = staging / f"clip{index:04d}.mp4"
        # trailing bytes after the MP4's last box: the content differs, the clip still plays
        path.write_bytes(payload + f"nemowatch-load-{index:08d}".encode())
        sources.append(path)
    facts = probe(sources[-1])  # the padded copy is still a valid video
    assert facts.video is not None and facts.duration > 0.9
    return clip, sources


def write_config(work: Path, base_url: str, concurrency: int) -> Path:
    config = {
        "engine": "nemo",
        "state_dir": str(work / "state"),
        "concurrency": concurrency,
        "nemo": {"base_url": base_url},
        "rules": [
            {
                "name": "load",
                "inbox": str(work / "inbox"),
                "outbox": str(work / "outbox"),
                "instructions": INSTRUCTIONS,
                "export": {"format": "mp4", "resolution": "source", "quality": "low"},
            }
        ],
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def timestamp(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()


def count_files(folder: Path) -> int:
    total = 0
    for _root, _dirs, names in os.walk(folder):
        total += sum(1 for name in names if not name.startswith("."))
    return total


def run_once(
    base: Path, video: Path, payloads: list[Path], concurrency: int, batches: int = 1
) -> dict[str, Any]:
    """One daemon, one fake, every staged file renamed into the inbox at once (or in
    `batches` equal parts, each dropped when the one before has finished)."""
    work = Path(tempfile.mkdtemp(prefix=f"c{concurrency}-", dir=base))
    staging = work / "staging"
    staging.mkdir()
    for source in payloads:  # hard links: the staged copies cost no time to make
        os.link(source, staging / source.name)
    count = len(payloads)
    inbox, outbox = work / "inbox", work / "outbox"
    variants = Variants(render_polls=1)  # no latency: the render is done when first asked
    with FakeNemo(video=video, variants=variants, credits=1e9) as fake:
        config = write_config(work, fake.base_url, concurrency)
        daemon = Daemon(config, work / "daemon.log").start()
        assert daemon.process is not None
        pid = daemon.process.pid
        try:
            wait_for(lambda: fake.books.tokens, what="the daemon's start-up credits check")
            time.sleep(1.0)
            cpu_before = cpu_seconds(pid)
            rss_before = status_kb(pid, "VmRSS")
            own_before = resource.getrusage(resource.RUSAGE_SELF)
            staged = sorted(staging.iterdir())
            size = -(-count // batches)
            rss_by_batch: list[float] = []
            renamed = 0.0
            with Sampler(pid) as sampler:
                started = time.time()
                for first in range(0, count, size):
                    for path in staged[first : first + size]:
                        path.rename(inbox / path.name)
                    if first == 0:
                        renamed = time.time() - started
                    finished = min(count, first + size)

                    def done(target: int = finished) -> bool:
                        return count_files(inbox / "done") + count_files(inbox / "failed") >= target

                    wait_for(
                        done,
                        timeout=3600,
                        interval=0.5,
                        what=f"{finished} files finished",
                    )
                    rss_by_batch.append(round(status_kb(pid, "VmRSS") / 1024, 1))
                cpu_after = cpu_seconds(pid)
                peak_kb = status_kb(pid, "VmHWM")
                rss_after = status_kb(pid, "VmRSS")
            own_after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            code = daemon.stop(timeout=60)
        published = [timestamp(entry) for entry in daemon.saw("outbox.published")]
        books = fake.books
        requests = len(books.requests)
        sessions = books.sessions
        uploads = books.uploads
        instructions = books.instructions
        renders = books.renders
        twice = [
            session
            for session, records in instructions.items()
            if len([r.text for r in records if r.applied]) != len({r.text for r in records})
        ]
        two_renders = [
            session
            for session, records in renders.items()
            if len([r for r in records if r.accepted]) > 1
        ]
        states = list(ledger_states(work / "state").values())
        outputs = sorted(path.name for path in outbox.rglob("*.mp4"))
        timings = [entry.get("timings", {}) for entry in daemon.saw("job.done")]
        once = {
            "outputs": len(outputs),
            "distinct_outputs": len(set(outputs)),
            "archived_sources": count_files(inbox / "done"),
            "failed_sources": count_files(inbox / "failed"),
            "ledger_done": states.count("done"),
            "ledger_rows": len(states),
            "claims_logged": len(daemon.saw("job.claimed")),
            "fake_sessions": len(sessions),
            "fake_uploads": sum(len(items) for items in uploads.values()),
            "fake_applied_instructions": sum(
                1 for items in instructions.values() for r in items if r.applied
            ),
            "fake_accepted_renders": len(books.accepted_renders()),
            "sessions_with_an_instruction_twice": len(twice),
            "sessions_with_two_renders": len(two_renders),
            "fake_server_errors": len(books.server_errors),
            "errors_logged": sum(
                1 for entry in daemon.events() if entry.get("level") in ("error", "critical")
            ),
            "daemon_exit_code": code,
        }
    expected = {
        "outputs": count,
        "distinct_outputs": count,
        "archived_sources": count,
        "failed_sources": 0,
        "ledger_done": count,
        "ledger_rows": count,
        "claims_logged": count,
        "fake_sessions": count,
        "fake_uploads": count,
        "fake_applied_instructions": count * len(INSTRUCTIONS),
        "fake_accepted_renders": count,
        "sessions_with_an_instruction_twice": 0,
        "sessions_with_two_renders": 0,
        "fake_server_errors": 0,
        "errors_logged": 0,
        "daemon_exit_code": 0,
    }
    wrong = {key: (value, expected[key]) for key, value in once.items() if value != expected[key]}
    wall = (max(published) - started) if published else float("nan")
    own_cpu = rusage_cpu(own_after) - rusage_cpu(own_before)
    steps: dict[str, float] = {}
    for step in ("claim", "upload", "edit", "export", "download", "verify"):
        values = [entry[step] for entry in timings if step in entry]
        if values:
            steps[step] = round(statistics.median(values), 4)
    return {
        "concurrency": concurrency,
        "files": count,
        "rename_seconds": round(renamed, 3),
        "wall_seconds": round(wall, 2),
        "jobs_per_second": round(count / wall, 2),
        "wall_per_job_ms": round(1000 * wall / count, 1),
        "daemon_cpu_per_job_ms": round(1000 * (cpu_after - cpu_before) / count, 2),
        "fake_cpu_per_job_ms": round(1000 * own_cpu / count, 2),
        "requests_per_job": round(requests / count, 2),
        "daemon_rss_before_mb": round(rss_before / 1024, 1),
        "daemon_peak_rss_mb": round(peak_kb / 1024, 1),
        "daemon_rss_after_mb": round(rss_after / 1024, 1),
        "daemon_rss_after_each_batch_mb": rss_by_batch,
        "daemon_children": sorted(sampler.children),
        "step_medians_seconds": steps,
        "exactly_once": not wrong,
        "wrong": wrong,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--serial", type=int, default=40, help="files at concurrency 1 (0: none)")
    parser.add_argument(
        "--batches", type=int, default=1, help="drop the files in this many parts, one by one"
    )
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nemowatch-load-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"preparing {args.files} files in {work} ...", file=sys.stderr)
    video, sources = make_sources(work, max(args.files, args.serial))

    runs = []
    plan = ([(1, args.serial)] if args.serial else []) + [
        (concurrency, args.files) for concurrency in args.concurrency
    ]
    for concurrency, count in plan:
        print(f"concurrency {concurrency}, {count} files ...", file=sys.stderr)
        batches = args.batches if concurrency != 1 else 1
        runs.append(run_once(work, video, sources[:count], concurrency, batches))

    columns = [
        ("concurrency", "conc"),
        ("files", "files"),
        ("wall_seconds", "wall s"),
        ("jobs_per_second", "jobs/s"),
        ("wall_per_job_ms", "wall/job ms"),
        ("daemon_cpu_per_job_ms", "daemon CPU/job ms"),
        ("fake_cpu_per_job_ms", "fake CPU/job ms"),
        ("daemon_peak_rss_mb", "peak RSS MB"),
        ("exactly_once", "exactly once"),
    ]
    widths = [max(len(title), 8) for _key, title in columns]
    titles = [title for _key, title in columns]
    print("  ".join(title.rjust(width) for title, width in zip(titles, widths, strict=True)))
    for run in runs:
        cells = [str(run[key]) for key, _title in columns]
        print("  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True)))
    for run in runs:
        if run["wrong"]:
            print(f"concurrency {run['concurrency']}: NOT exactly once: {run['wrong']}")
        if run["daemon_children"]:
            print(f"concurrency {run['concurrency']}: children seen: {run['daemon_children']}")
        print(f"concurrency {run['concurrency']}: step medians (s): {run['step_medians_seconds']}")
    load = os.getloadavg()
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                "python": platform.python_version(),
                "load_average_after": [round(value, 2) for value in load],
                "runs": runs,
            }
        )
    )
    return 0 if all(run["exactly_once"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
