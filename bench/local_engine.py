"""Benchmark: the full local-engine job on a generated 2-minute 1080p30 clip.

    python bench/local_engine.py [--seconds 120] [--size 1920x1080] [--work DIR]

The job: cut silences + background music + a 60-second highlight + 9:16 with a blurred
background + a 3-second title + 1080p, run as `nemowatch process` in a child process.
Reported:
  - wall time of the job, and its ratio to the source duration (target <= 0.40), and the
    CPU time of its whole process tree,
  - peak memory of the whole process tree, nemowatch plus its FFmpeg children, sampled
    every 50 ms from /proc (target <= 450 MB, issue 15),
  - the floor: a bare FFmpeg encode of the same output duration at the same size and
    encoder settings, and the job's ratio to it, in wall time and in CPU time (target
    <= 1.20; the CPU ratio is the one that holds on a busy machine),
  - the source's GOP (an IDR frame every second, as `make_clip` encodes it: `-g` = fps).
The cut-only job against its floor, at several GOPs, is `bench/smart_cut.py`.
Results go to stdout as a table and as one JSON line; record them in docs/benchmarks.md
with the machine they ran on. The FFmpeg is chosen as nemowatch chooses it; set
$NEMOWATCH_FFMPEG to compare binaries (the system's 5.1 draws titles line by line).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import tree_rss  # noqa: E402
from nemowatch.engines.local.arguments import encoder_arguments  # noqa: E402
from nemowatch.engines.local.ffmpeg import choose_ffmpeg  # noqa: E402
from nemowatch.probe import probe  # noqa: E402
from nemowatch.rules import ExportSpec  # noqa: E402
from tests.media import make_clip  # noqa: E402

QUALITY = "high"  # the default


def speech_layout(seconds: float) -> list[tuple[float, float]]:
    """Deterministic pauses: phrases of 3-9 s separated by 0.7-2.5 s of silence."""
    silences = []
    position, index = 2.0, 0
    while position < seconds - 4:
        phrase = 3.0 + (index * 37 % 7)
        pause = 0.7 + (index * 13 % 19) / 10
        start = position + phrase
        if start + pause >= seconds - 1:
            break
        silences.append((round(start, 2), round(start + pause, 2)))
        position = start + pause
        index += 1
    return silences


def run_measured(command: list[str]) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    return wall, peak, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nemowatch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    choice = choose_ffmpeg()  # as the job's own: $NEMOWATCH_FFMPEG picks one
    ffmpeg = choice.ffmpeg.path

    source = work / f"source-{int(args.seconds)}s-{args.size}.mp4"
    if not source.exists():
        print(f"generating {source.name} ...", file=sys.stderr)
        make_clip(
            source,
            args.seconds,
            size=args.size,
            fps=30,
            audio="speech_with_silences",
            silences=speech_layout(args.seconds),
            sample_rate=48000,
            channels=2,
        )
    config = work / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "engine": "local",
                "state_dir": str(work / "state"),
                "log_level": "warning",
                "rules": [
                    {
                        "name": "reel",
                        "inbox": str(work / "inbox"),
                        "outbox": str(work / "outbox"),
                        "instructions": [
                            "cut out silences, add background music, and export as a "
                            "60-second highlight reel"
                        ],
                        "edit": {
                            "aspect": "9:16",
                            "fit": "blur",
                            "title": {"text": "Urban Dreams", "duration": 3},
                        },
                        "export": {"format": "mp4", "resolution": "1080p", "quality": QUALITY},
                        "outputs": "{stem}-reel.mp4",
                        "on_conflict": "overwrite",
                    }
                ],
            }
        )
    )
    command = [sys.executable, "-m", "nemowatch.cli", "process", str(source)]
    command += ["--rule", "reel", "--config", str(config)]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, peak, result = run_measured(command)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # nemowatch and the FFmpeg runs it waited for: user + system time of the whole tree
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    output = Path(result.stdout.strip().splitlines()[-1])
    facts = probe(output)
    assert facts.video is not None
    out_seconds = facts.duration

    # The floor: the same output duration, size and encoder settings, nothing else.
    floor_output = work / "floor.mp4"
    spec = ExportSpec(format="mp4", resolution="1080p", quality=QUALITY)
    floor_command = [str(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    floor_command += ["-t", f"{out_seconds:.3f}", "-i", str(source)]
    floor_command += ["-vf", f"scale={facts.video.width}:{facts.video.height}"]
    floor_command += encoder_arguments(spec, with_audio=True)
    floor_command += [str(floor_output)]
    floor_cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    floor_wall, _floor_peak, floor_result = run_measured(floor_command)
    floor_cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    floor_cpu = (floor_cpu_after.ru_utime - floor_cpu_before.ru_utime) + (
        floor_cpu_after.ru_stime - floor_cpu_before.ru_stime
    )
    if floor_result.returncode != 0:
        print(floor_result.stderr, file=sys.stderr)
        return 1

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "ffmpeg": f"{choice.ffmpeg.version} ({choice.origin}, {ffmpeg})",
        "source_seconds": args.seconds,
        "source_size": args.size,
        "source_gop_seconds": 1.0,  # make_clip: x264 with -g = the frame rate (30)
        "output_seconds": round(out_seconds, 3),
        "output_size": f"{facts.video.width}x{facts.video.height}",
        "job_wall_seconds": round(wall, 2),
        "job_to_source_ratio": round(wall / args.seconds, 3),
        "job_cpu_seconds": round(cpu, 2),
        "peak_memory_mb": round(peak / 1e6, 1),
        "floor_wall_seconds": round(floor_wall, 2),
        "job_to_floor_ratio": round(wall / floor_wall, 3),
        # CPU against CPU: the ratio that holds on a busy machine (issue 15)
        "floor_cpu_seconds": round(floor_cpu, 2),
        "job_to_floor_cpu_ratio": round(cpu / floor_cpu, 3),
    }
    width = max(len(key) for key in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
