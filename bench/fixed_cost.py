"""Benchmark: the fixed cost of a small job, stage by stage (issue 15, item 4).

    python bench/fixed_cost.py [--seconds 45] [--size 1280x720] [--runs 2] [--work DIR]
    python bench/fixed_cost.py --reel --source SOURCE [--runs 2] [--work DIR]

The job: "cut out silences" on a generated 45-second 720p30 clip with speech-like audio
(44.1 kHz mono, as phones and cameras often record) and pauses, the default export (MP4,
loudness normalised), run as `nemowatch process` in this process, so each stage's CPU
can be told apart:

  - start-up: importing nemowatch and reading the config, before the job;
  - each FFmpeg run, by what it does (from a wrapper that logs its arguments and the
    user + system time `/usr/bin/time` measured), grouped into stages;
  - nemowatch's own Python work in the job (probes, the ledger, planning, verification),
    with the probes (PyAV) and the verification timed on their own.

With `--reel`, the job is bench/local_engine.py's reel (silences cut, music, a 60-second
highlight, 9:16 with a blurred background, a title, 1080p) on `--source` (its generated
2-minute 1080p clip), broken down the same way.

Each run is a new job (a new state folder) after one run that warms the caches (the
FFmpeg capability probe, the page cache). Results go to stdout as a table and as one
JSON line per run; record them in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import shutil
import stat
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_STARTED = time.process_time()

import nemowatch.cli  # noqa: E402
from nemowatch import outbox  # noqa: E402
from nemowatch.engines.local import engine as local_engine  # noqa: E402
from nemowatch.engines.local.ffmpeg import choose_ffmpeg  # noqa: E402
from tests.media import make_clip  # noqa: E402

_IMPORTED = time.process_time()

# (stage, a word in the FFmpeg arguments that tells it), first match wins
STAGES = (
    ("music loop (made once, then cached)", "aevalsrc"),
    ("render: picture", "-progress"),
    ("render: joining", "-c copy"),
    ("render: sound, measuring pass", "-f null"),  # after the analysis's own -f null
    ("render: sound", "-c:a"),
)


def stage_of(arguments: str) -> str:
    if {"-version", "-h", "-encoders", "-filters"} & set(arguments.split()):
        return "ffmpeg capability probe"
    if "silencedetect" in arguments or "biquad" in arguments:
        return "analysis: sound pass"
    if "-skip_frame" in arguments:
        return "analysis: scene pass"
    for stage, word in STAGES:
        if word in arguments:
            return stage
    return "other ffmpeg"


LOG_VARIABLE = "NEMOWATCH_BENCH_LOG"


def wrapper(folder: Path, ffmpeg: Path) -> Path:
    """An `ffmpeg` that logs its arguments and its CPU time to $NEMOWATCH_BENCH_LOG (one
    file for every run: nemowatch keeps what it probed of a binary by its path and inode)."""
    script = folder / "ffmpeg"
    if not script.exists():
        script.write_text(
            "#!/bin/sh\n"
            "measured=$(mktemp)\n"
            f'/usr/bin/time -o "$measured" -f "cpu %U %S" {ffmpeg} "$@"\n'
            "status=$?\n"
            # arguments and time in one append: runs at once do not interleave
            f'{{ printf "%s\\n" "$*"; cat "$measured"; }} >> "${LOG_VARIABLE}"\n'
            'rm -f "$measured"\n'
            "exit $status\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def read_runs(log: Path) -> dict[str, float]:
    """CPU seconds by stage, from the wrapper's log (arguments line, then `cpu U S`)."""
    totals: dict[str, float] = defaultdict(float)
    arguments = ""
    for line in log.read_text().splitlines():
        if line.startswith("cpu "):
            _, user, system = line.split()
            totals[stage_of(arguments)] += float(user) + float(system)
        else:
            arguments = line
    return dict(totals)


def timed(table: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, adding the process's CPU time while it runs to `table[name]`."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        before = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            table[name] += time.process_time() - before

    return run


CUT = {"instructions": ["cut out silences"], "outputs": "{stem}-cut.mp4"}
REEL = {  # as bench/local_engine.py's
    "instructions": [
        "cut out silences, add background music, and export as a 60-second highlight reel"
    ],
    "edit": {"aspect": "9:16", "fit": "blur", "title": {"text": "Urban Dreams", "duration": 3}},
    "export": {"format": "mp4", "resolution": "1080p", "quality": "high"},
    "outputs": "{stem}-reel.mp4",
}


def config_for(work: Path, run: int, rule: dict[str, object]) -> Path:
    config = work / f"config-{run}.yaml"
    named = {"name": "job", "inbox": str(work / "inbox"), "outbox": str(work / "outbox")}
    config.write_text(
        json.dumps(
            {
                "engine": "local",
                # one state folder, as a daemon's: the music loops stay in its cache
                "state_dir": str(work / "state"),
                "log_level": "warning",
                "rules": [{**named, **rule, "on_conflict": "overwrite"}],
            }
        )
    )
    return config


def one_job(
    source: Path, work: Path, run: int, ffmpeg: Path, rule: dict[str, object]
) -> dict[str, float]:
    folder = work / f"run-{run}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["NEMOWATCH_FFMPEG"] = str(wrapper(work, ffmpeg))
    os.environ[LOG_VARIABLE] = str(folder / "runs.log")
    python: dict[str, float] = defaultdict(float)
    patched = {
        (local_engine, "probe"): "python: probes (PyAV)",
        (local_engine, "kind_of"): "python: probes (PyAV)",
        (local_engine, "_is_turned"): "python: probes (PyAV)",
        (outbox, "verify"): "python: verification (PyAV)",
    }
    originals = {key: getattr(*key) for key in patched}
    for (module, name), stage in patched.items():
        setattr(module, name, timed(python, stage, originals[(module, name)]))
    config = config_for(work, run, rule)
    arguments = ["process", str(source), "--rule", "job", "--config", str(config)]
    before = time.process_time()
    children_before = os.times()
    wall = time.perf_counter()
    try:
        status = nemowatch.cli.main(arguments)
    finally:
        for (module, name), original in originals.items():
            setattr(module, name, original)
        asyncio.set_event_loop(asyncio.new_event_loop())
    wall = time.perf_counter() - wall
    own = time.process_time() - before
    children = os.times()
    if status != 0:
        raise SystemExit(f"the job failed (exit status {status})")
    stages = {"start-up (imports)": _IMPORTED - _STARTED}
    stages.update(read_runs(folder / "runs.log"))
    stages.update(python)
    stages["python: the rest (config, ledger, planning, steps)"] = own - sum(python.values())
    ffmpeg_total = (children.children_user - children_before.children_user) + (
        children.children_system - children_before.children_system
    )
    stages["(total of the FFmpeg runs, by rusage)"] = ffmpeg_total
    stages["(job wall seconds)"] = wall
    return stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    parser.add_argument("--reel", action="store_true", help="the reel job, on --source")
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nemowatch-fixed-"))
    work.mkdir(parents=True, exist_ok=True)
    choice = choose_ffmpeg()
    ffmpeg = choice.ffmpeg.path
    rule = REEL if args.reel else CUT
    source = args.source or work / f"talk-{int(args.seconds)}s-{args.size}.mp4"
    if not source.exists():
        pauses = [(start, start + 1.2) for start in range(5, int(args.seconds) - 3, 7)]
        make_clip(
            source, args.seconds, size=args.size, fps=30, audio="speech_with_silences",
            silences=pauses, ffmpeg=ffmpeg,
        )  # fmt: skip
    one_job(source, work, 0, ffmpeg, rule)  # warms the caches
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"ffmpeg: {choice.ffmpeg.version} ({choice.origin}, {ffmpeg})")
    results = [one_job(source, work, run, ffmpeg, rule) for run in range(1, args.runs + 1)]
    names = list(dict.fromkeys(name for result in results for name in result))
    width = max(len(name) for name in names)
    for name in names:
        values = " / ".join(f"{result.get(name, 0.0):6.2f}" for result in results)
        print(f"{name:<{width}}  {values}")
    for result in results:
        counted = sum(value for name, value in result.items() if not name.startswith("("))
        rounded = {name: round(value, 3) for name, value in result.items()}
        print(json.dumps({"cpu_seconds": round(counted, 2), **rounded}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
