"""Benchmark: what a durable publish costs (the fsyncs of issue 11).

    python bench/publish.py [--small 100] [--large 20] [--large-mb 50] [--work DIR]

For each size, a fresh result is written (not timed, not synced: as a render leaves it,
its data still in the page cache) under a temporary name in an outbox folder, then given
its final name, timed:
  - durable: `outbox.publish` as nemowatch does it (fsync the file, link it, fsync the
    outbox folder),
  - bare: the link alone (`files.link_no_replace`), what publishing was before.
The archive move of a source (`files.move_no_replace`: link, unlink, fsync both folders)
is timed the same way against a bare link and unlink. `--work` should be on the disk the
outboxes use (a tmpfs makes every fsync free). Results go to stdout as a table and as one
JSON line; record them in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nemowatch.config import OnConflict  # noqa: E402
from nemowatch.files import link_no_replace, move_no_replace  # noqa: E402
from nemowatch.outbox import publish  # noqa: E402


def timed(rounds: int, size: int, folder: Path, act: Callable[[Path, Path], object]) -> list[float]:
    """Seconds each of `rounds` acts took on a freshly written file of `size` bytes."""
    block = os.urandom(min(size, 1 << 20))
    seconds = []
    for index in range(rounds):
        source = folder / f".result-{index}.part"
        with source.open("wb") as handle:
            for _ in range(size // len(block)):
                handle.write(block)
            handle.write(block[: size % len(block)])
        started = time.perf_counter()
        act(source, folder / f"result-{index}.mp4")
        seconds.append(time.perf_counter() - started)
        for leftover in folder.rglob("*"):
            if leftover.is_file():
                leftover.unlink()
    return seconds


def durable_publish(source: Path, final: Path) -> None:
    publish(source, final, OnConflict.RENAME)


def bare_link(source: Path, final: Path) -> None:
    link_no_replace(source, final.parent, final.name)


def durable_archive(source: Path, final: Path) -> None:
    move_no_replace(source, final.parent / "done", final.name)


def bare_move(source: Path, final: Path) -> None:
    (final.parent / "done").mkdir(exist_ok=True)
    os.link(source, final.parent / "done" / final.name)
    os.unlink(source)


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p90_ms": round(sorted(seconds)[int(len(seconds) * 0.9) - 1] * 1000, 2),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100, help="publishes of a small file")
    parser.add_argument("--large", type=int, default=20, help="publishes of a large file")
    parser.add_argument("--small-kb", type=int, default=64)
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nemowatch-publish-", dir=args.work))
    cases = [
        ("publish", "small", args.small, args.small_kb << 10, durable_publish, bare_link),
        ("publish", "large", args.large, args.large_mb << 20, durable_publish, bare_link),
        ("archive", "small", args.small, args.small_kb << 10, durable_archive, bare_move),
    ]
    results = []
    print(f"{platform.node()} {platform.machine()} Linux {platform.release()}; work: {work}")
    print(f"{'what':<8} {'size':>8} {'n':>4} {'durable median/p90':>20} {'bare median/p90':>18}")
    for what, label, rounds, size, durable, bare in cases:
        folder = work / f"{what}-{label}"
        folder.mkdir()
        # alternate the two, so that a busy moment of the disk is shared by both
        durable_seconds: list[float] = []
        bare_seconds: list[float] = []
        for _ in range(rounds):
            durable_seconds += timed(1, size, folder, durable)
            bare_seconds += timed(1, size, folder, bare)
        row = {
            "what": what,
            "bytes": size,
            "rounds": rounds,
            "durable": summary(durable_seconds),
            "bare": summary(bare_seconds),
        }
        results.append(row)
        d, b = row["durable"], row["bare"]
        print(
            f"{what:<8} {size:>8} {rounds:>4} {d['median_ms']:>9.2f}/{d['p90_ms']:<9.2f} ms"
            f" {b['median_ms']:>7.2f}/{b['p90_ms']:<7.2f} ms"
        )
    print(json.dumps({"machine": platform.node(), "results": results}))
    for folder in work.iterdir():
        for path in folder.rglob("*"):
            if path.is_file():
                path.unlink()
    for path in sorted(work.rglob("*"), reverse=True):
        path.rmdir()
    work.rmdir()


if __name__ == "__main__":
    main()
