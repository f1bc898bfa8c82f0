"""Benchmark: captions on a two-minute talk (issue 12): transcription time and peak memory.

    python bench/captions.py [--rounds 2] [--work DIR]

The talk is tests/speech_clips.TALK, spoken by espeak-ng over a 192x108 test picture
(about two minutes). Each round, in a fresh child process (so the model is loaded cold
and the memory is the whole process's):
  - transcribe: the bundled model (Whisper tiny.en, int8, faster-whisper) hears the clip
    with word times, as the local engine does;
  - process: `nemowatch process` of the clip under a rule asking for soft captions (probe,
    silence pass, transcription, render, subtitle track, publish).
Wall time, CPU time (user + system, the child and its FFmpeg children) and the peak
resident memory of the whole process tree (sampled) are printed as a table and as one
JSON line, with the word error rate of the captions against the script. Record them in
docs/benchmarks.md with the machine they ran on.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import imageio_ffmpeg  # noqa: E402
import yaml  # noqa: E402

from bench.procs import tree_rss  # noqa: E402
from tests.speech_clips import TALK, spoken_clip, srt_cues, word_error_rate  # noqa: E402

TRANSCRIBE = """
import sys
from pathlib import Path
from nemowatch.engines.local.speech import Transcriber
heard = Transcriber().transcribe(Path(sys.argv[1]), language=None, fillers=False)
print(' '.join(word.text.strip() for word in heard.words))
"""


def measured(arguments: list[str]) -> tuple[dict[str, float], str]:
    """Run `arguments` as a child: wall s, CPU s (it and its children), the peak of the
    whole process tree's resident memory (sampled every 50 ms) in MiB, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    peak = 0
    with subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True) as child:
        while child.poll() is None:
            peak = max(peak, tree_rss(child.pid))
            time.sleep(0.05)
        stdout = child.stdout.read() if child.stdout is not None else ""
    if child.returncode != 0:
        raise SystemExit(f"{arguments[:3]} failed with exit status {child.returncode}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "peak_mib": peak / 2**20}, stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nemowatch-captions-", dir=options.work))
    ffmpeg = Path(imageio_ffmpeg.get_ffmpeg_exe())
    clip = spoken_clip(work / "clip", [("say", line) for line in TALK], ffmpeg=ffmpeg, gap=0.5)
    rows = []
    for round_number in range(1, options.rounds + 1):
        transcribe, heard = measured([sys.executable, "-c", TRANSCRIBE, str(clip.path)])
        folder = work / f"round-{round_number}"
        (folder / "in").mkdir(parents=True)
        config = folder / "config.yaml"
        rule = {
            "name": "talks",
            "inbox": str(folder / "in"),
            "outbox": str(folder / "out"),
            "edit": {"captions": {"burn": False}},
            "export": {"quality": "low"},
        }
        config.write_text(
            yaml.safe_dump(
                {"engine": "local", "state_dir": str(folder / "state"), "rules": [rule]}
            ),
            encoding="utf-8",
        )
        process, said = measured(
            [sys.executable, "-m", "nemowatch.cli", "process", str(clip.path), "-c", str(config)]
        )
        output = Path(said.strip().splitlines()[-1])
        captions = " ".join(
            " ".join(lines)
            for *_, lines in srt_cues(output.with_suffix(".srt").read_text(encoding="utf-8"))
        )
        rows.append(
            {
                "round": round_number,
                "clip_s": round(clip.duration, 1),
                "transcribe": {key: round(value, 2) for key, value in transcribe.items()},
                "process": {key: round(value, 2) for key, value in process.items()},
                "wer_transcript": round(word_error_rate(clip.script, heard), 3),
                "wer_captions": round(word_error_rate(clip.script, captions), 3),
            }
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print("round  clip s  transcribe wall/cpu/peak MiB   process wall/cpu/peak MiB   WER")
    for row in rows:
        t, p = row["transcribe"], row["process"]
        print(
            f"{row['round']:>5}  {row['clip_s']:>6}  {t['wall_s']:>6} / {t['cpu_s']:>6} / "
            f"{t['peak_mib']:>6}   {p['wall_s']:>6} / {p['cpu_s']:>6} / {p['peak_mib']:>6}"
            f"   {row['wer_captions']}"
        )
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
