"""Benchmark: smart rendering of a cut-only job, against a bare re-encode (the floor).

    python bench/smart_cut.py [--seconds 120] [--size 1920x1080] [--gops 1,2,8]
                              [--b-frames 0] [--work DIR]

For each GOP length (seconds), a generated clip (FFmpeg's test pattern at 30 fps, x264
High profile without B-frames, an IDR frame every GOP: what phones record; speech-like
sound with pauses) is cut by the job "cut out silences" (`quality: high`, the source's
size), run as `nemowatch process` in a child process, three ways side by side:
  - smart: `export: {smart: auto}` (the default);
  - full: `export: {smart: off}` (every frame encoded, as before smart rendering);
  - floor: a bare FFmpeg encode of the same output duration, size and encoder settings.
Reported: the CPU time (user + system) of each whole process tree, the ratios smart/floor
(targets: <= 0.40 at a 1-s GOP, <= 0.60 at 2 s; at 8 s it falls back or still wins) and
full/floor, the seconds copied and encoded (from the job's log), and the FFmpeg used.
Results go to stdout as a table and as one JSON line; record them in docs/benchmarks.md.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_engine import speech_layout  # noqa: E402
from nemowatch.engines.local.arguments import encoder_arguments  # noqa: E402
from nemowatch.engines.local.ffmpeg import choose_ffmpeg  # noqa: E402
from nemowatch.probe import probe  # noqa: E402
from nemowatch.rules import ExportSpec  # noqa: E402
from tests.media import SPEECH  # noqa: E402


def make_source(
    path: Path, ffmpeg: Path, seconds: float, size: str, gop: float, b_frames: int = 0
) -> None:
    """The clip: 30 fps, x264 superfast (High, CABAC), `b_frames` B-frames (x264's pyramid
    from 2 on, closed GOPs), GOP `gop` s."""
    gates = "".join(f"*not(between(t\\,{start}\\,{end}))" for start, end in speech_layout(seconds))
    command = [str(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    command += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}"]
    command += [
        "-f",
        "lavfi",
        "-i",
        f"aevalsrc={SPEECH}{gates}|{SPEECH}{gates}:s=48000:d={seconds}",
    ]
    command += ["-c:v", "libx264", "-preset", "superfast", "-bf", str(b_frames), "-crf", "20"]
    command += ["-g", str(round(gop * 30)), "-keyint_min", str(round(gop * 30))]
    command += ["-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "160k"]
    subprocess.run([*command, str(path)], check=True)


def tree_cpu(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run `command`; the user + system CPU time of it and every process it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(command[:6])} ...")
    return cpu, result


def run_job(work: Path, source: Path, smart: str) -> tuple[float, Path, dict[str, object]]:
    """The cut-only job on `source`; its CPU, output and smart-render log event."""
    folder = work / f"job-{smart}"
    config = folder / "config.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    rule = {
        "name": "cut",
        "inbox": str(folder / "inbox"),
        "outbox": str(folder / "outbox"),
        "instructions": ["cut out silences"],
        "export": {"format": "mp4", "quality": "high", "smart": smart},
        "on_conflict": "overwrite",
    }
    config.write_text(
        json.dumps(
            {"engine": "local", "state_dir": str(folder / "state"), "log_level": "info",
             "rules": [rule]}
        )
    )  # fmt: skip
    command = [sys.executable, "-m", "nemowatch.cli", "process", str(source)]
    cpu, result = tree_cpu([*command, "--rule", "cut", "--config", str(config)])
    event: dict[str, object] = {}
    for line in result.stderr.splitlines():
        if '"render.smart' in line:
            try:
                event = json.loads(line[line.index("{") :])
            except ValueError:
                event = {"line": line}
    return cpu, Path(result.stdout.strip().splitlines()[-1]), event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--gops", default="1,2,8", help="GOP lengths in seconds")
    parser.add_argument("--b-frames", type=int, default=0, help="B-frames of the source")
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nemowatch-smart-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    choice = choose_ffmpeg()
    ffmpeg = choice.ffmpeg.path
    rows = []
    for gop in (float(value) for value in args.gops.split(",")):
        b_frames = f"-bf{args.b_frames}" if args.b_frames else ""
        source = work / f"source-{int(args.seconds)}s-{args.size}-gop{gop:g}{b_frames}.mp4"
        if not source.exists():
            print(f"generating {source.name} ...", file=sys.stderr)
            make_source(source, ffmpeg, args.seconds, args.size, gop, args.b_frames)
        smart_cpu, output, event = run_job(work / source.stem, source, "auto")
        full_cpu, _, _ = run_job(work / source.stem, source, "off")
        facts = probe(output)
        assert facts.video is not None
        floor_command = [str(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        floor_command += ["-t", f"{facts.duration:.3f}", "-i", str(source)]
        floor_command += ["-vf", f"scale={facts.video.width}:{facts.video.height}"]
        floor_command += encoder_arguments(ExportSpec(quality="high"), with_audio=True)  # type: ignore[arg-type]
        floor_cpu, _ = tree_cpu([*floor_command, str(work / "floor.mp4")])
        rows.append(
            {
                "gop_seconds": gop,
                "output_seconds": round(facts.duration, 2),
                "smart": event.get("event", "?"),
                "copied_seconds": event.get("copied_seconds"),
                "encoded_seconds": event.get("encoded_seconds"),
                "fallback_reason": event.get("reason"),
                "smart_cpu_seconds": round(smart_cpu, 2),
                "full_cpu_seconds": round(full_cpu, 2),
                "floor_cpu_seconds": round(floor_cpu, 2),
                "smart_to_floor": round(smart_cpu / floor_cpu, 3),
                "full_to_floor": round(full_cpu / floor_cpu, 3),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    header = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "ffmpeg": f"{choice.ffmpeg.version} ({choice.origin}, {ffmpeg})",
        "source": f"{args.seconds:g} s, {args.size}, 30 fps, x264 superfast, "
        f"{args.b_frames} B-frames",
    }
    for key, value in header.items():
        print(f"{key}: {value}")
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[column]) for column in columns))
    print(json.dumps({**header, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
