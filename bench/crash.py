"""Crash bench: the daemon SIGKILLed at random moments while it works, longer than the test.

    python bench/crash.py [--engine local|nemo|both] [--files 60] [--kills 30]
                          [--runs 1] [--seed N] [--concurrency N] [--keep DIR]

The scenario of `tests/e2e/test_crash.py` (see `tests/e2e/crash_scenario.py`): files
dropped into two rules' inboxes, the daemon killed and restarted `--kills` times, then
every input checked for exactly one output or one failed/ record, nothing lost, nothing
half-written in sight, the ledger agreeing with the folders (and, for `nemo`, the fake
server's books showing nothing charged twice). Each run prints its kills, what the
daemon was doing at each, and every problem; then one JSON line per run. The exit status
is 1 when any run found a problem. `--seed` repeats a run (consecutive runs use seed+1...).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e import crash_scenario  # noqa: E402
from tests.media import Clips  # noqa: E402


def run_once(plan: crash_scenario.Plan, work: Path, clips: Clips) -> crash_scenario.Outcome:
    """One run of the scenario in `work/<engine>-<seed>`."""
    folder = work / f"{plan.engine}-{plan.seed}"
    if plan.engine != "nemo":
        return crash_scenario.run(folder, clips, plan)
    video = work / "rendered.mp4"
    shutil.copy(clips.basic, video)
    with crash_scenario.fake_nemo(video) as fake:
        return crash_scenario.run(folder, clips, plan, fake=fake)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("local", "nemo", "both"), default="local")
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None, help="2 local, 4 nemo")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    arguments = parser.parse_args(argv)
    engines = ("local", "nemo") if arguments.engine == "both" else (arguments.engine,)
    first = arguments.seed if arguments.seed is not None else random.randrange(1_000_000)
    work = arguments.keep or Path(tempfile.mkdtemp(prefix="nemowatch-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    clips_folder = work / "clips"
    clips_folder.mkdir(exist_ok=True)
    clips = Clips(clips_folder)
    failures = 0
    try:
        for index in range(arguments.runs):
            for engine in engines:
                plan = crash_scenario.Plan(
                    seed=first + index,
                    engine=engine,
                    files=arguments.files,
                    kills=arguments.kills,
                    concurrency=arguments.concurrency or (4 if engine == "nemo" else 2),
                    finish_timeout=60.0 + 3.0 * arguments.files,
                )
                outcome = run_once(plan, work, clips)
                failures += bool(outcome.problems)
                print(outcome.report(), flush=True)
                print(json.dumps(summary(outcome)), flush=True)
    finally:
        if arguments.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def summary(outcome: crash_scenario.Outcome) -> dict[str, object]:
    """The run as one JSON object."""
    return {
        "engine": outcome.plan.engine,
        "seed": outcome.plan.seed,
        "files": outcome.plan.files,
        "kills": len(outcome.kills),
        "kills_before_up": sum(not kill.up for kill in outcome.kills),
        "kills_while_jobs_ran": sum(
            any(state not in ("done", "failed", "skipped") for state in kill.states)
            for kill in outcome.kills
        ),
        "done": outcome.done,
        "failed": len(outcome.failed),
        "problems": len(outcome.problems),
        "seconds": round(outcome.seconds, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
