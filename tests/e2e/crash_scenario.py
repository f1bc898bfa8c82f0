"""The crash scenario: files dropped into two rules' inboxes while the daemon is SIGKILLed
at random moments and restarted, then every input accounted for.

Shared by `tests/e2e/test_crash.py` (a short run per engine) and `bench/crash.py` (longer
runs, a summary printed). One run:

1. Write a config with two rules (`talks`, `reels`), each with its own inbox and outbox.
2. Cycle `kills` times: start the daemon, drop the next batch of files (renamed into place
   all at once), wait a random moment (seeded: before the daemon is up, during its
   recovery, while it claims, renders, publishes, disposes), SIGKILL it, and check that no
   FFmpeg it started lives on.
3. Start it once more, let it finish, stop it with SIGTERM.
4. `inspect`: every input has exactly one output (and its source exactly once in done/)
   or exactly one failed/ record beside its error.json; nothing in processing/; no hidden
   file in any outbox; the ledger's jobs and the folders agree one to one; with the nemo
   engine, the fake's books show no instruction applied twice and at most one accepted
   render per session.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemowatch.outbox import TEMP_SUFFIX
from tests.e2e.harness import (
    Daemon,
    drop_at_once,
    files,
    ledger_jobs,
    processes_mentioning,
    rule,
    wait_for,
    write_config,
)
from tests.fakes.nemo_server import FakeNemo, Variants
from tests.media import Clips

RULES = {
    # several instructions each, so that jobs spend a while in every step
    "talks": ["cut out silences", "speed it up 1.5x"],
    "reels": ["make it vertical for TikTok", 'add the title "Crash" for 1 second'],
}
# How the fake NemoVideo answers in the scenario: turns and renders that take a moment,
# so that kills land while an instruction is streamed or a render polled.
NEMO_VARIANTS = Variants(render_polls=3, event_gap=0.05)
EARLY_KILLS = 0.2  # share of kills aimed before the daemon is up (start, recovery)
ON_EVENT_KILLS = 0.5  # share of the others aimed just after one of these events
KILL_AFTER = (
    "job.claimed",  # the next files are being claimed
    "upload.done",  # an edit is starting
    "edit.done",  # a render is starting
    "render.submitted",  # a result is being fetched, verified and published
    "outbox.published",  # a source is being archived
)
ORPHAN_WAIT = 10.0  # seconds a killed daemon's FFmpeg may take to die with it


def seed() -> int:
    """CRASH_SEED when set (to repeat a failure), else a new one each run."""
    chosen = os.environ.get("CRASH_SEED")
    return int(chosen) if chosen else random.SystemRandom().randrange(1_000_000)


@dataclass(frozen=True)
class Plan:
    """What one run does; the same plan and seed kill at the same moments."""

    seed: int
    engine: str = "local"  # local | nemo
    files: int = 30
    kills: int = 10
    concurrency: int = 2
    max_delay: float = 2.0  # seconds of work before a kill, at most
    finish_timeout: float = 60.0  # seconds the last daemon may take to finish everything


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when it came and what the daemon was doing."""

    number: int
    aim: str  # "starting", "random", or the event it came right after
    after_start: float  # seconds after the process was started
    up: bool  # whether the daemon had logged daemon.started
    last_event: str | None  # the last line it logged
    states: dict[str, int]  # jobs per ledger state at that moment


@dataclass
class Outcome:
    """What a run did and every problem `inspect` found (none: it passed)."""

    plan: Plan
    kills: list[Kill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    done: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # input -> error, for failed ones
    seconds: float = 0.0

    def report(self) -> str:
        """A readable account of the run, with the seed to reproduce it."""
        lines = [
            f"crash scenario: engine={self.plan.engine} files={self.plan.files}"
            f" kills={len(self.kills)} seed={self.plan.seed} ({self.seconds:.1f} s)",
            f"  outcome: {self.done} done, {len(self.failed)} failed",
        ]
        for name, error in sorted(self.failed.items()):
            lines.append(f"  failed {name}: {error}")
        for kill in self.kills:
            states = ", ".join(f"{state} {count}" for state, count in sorted(kill.states.items()))
            lines.append(
                f"  kill {kill.number} ({kill.aim}): {kill.after_start:.2f} s after start"
                f" ({'up' if kill.up else 'starting'}), last event {kill.last_event}"
                f" [{states or 'no jobs'}]"
            )
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        if self.problems:
            lines.append(f"  reproduce with seed {self.plan.seed}")
        return "\n".join(lines)


def fake_nemo(video: Path) -> FakeNemo:
    """The fake NemoVideo of the scenario (not started), with credits for any number of
    files: the scenario is about crashes, not about running out."""
    return FakeNemo(video=video, variants=NEMO_VARIANTS, credits=1e9)


def inputs_for(plan: Plan) -> dict[str, str]:
    """Input file name -> rule name, alternating between the rules."""
    names = list(RULES)
    return {
        f"{names[index % len(names)][:-1]}{index:03d}.mp4": names[index % len(names)]
        for index in range(plan.files)
    }


def configure(folder: Path, plan: Plan, fake: FakeNemo | None) -> Path:
    rules = [
        rule(folder, name, instructions=instructions, outputs="{stem}.mp4")
        for name, instructions in RULES.items()
    ]
    settings: dict[str, Any] = {"concurrency": plan.concurrency, "grace_period": 5}
    if plan.engine == "nemo":
        assert fake is not None, "the nemo engine needs the fake server"
        # the fake lands an edit as the request arrives, before it streams anything, or
        # never: 4 s of looking (two reads) for one that a kill cut off is plenty. The
        # default window, 300 s, is for the service's real edit times; 45 s, as it was,
        # made each job whose instruction a kill stopped before it was sent wait that long,
        # one after another when the last daemon ran them alone (a run of 181 s, not 30)
        settings |= {
            "engine": "nemo",
            "nemo": {"base_url": fake.base_url, "landing_window": 4},
        }
    return write_config(folder, rules, **settings)


def run(folder: Path, clips: Clips, plan: Plan, fake: FakeNemo | None = None) -> Outcome:
    """Run the scenario in `folder` (empty) and inspect the result."""
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(plan)
    choose = random.Random(plan.seed)
    config = configure(folder, plan, fake)
    inputs = inputs_for(plan)
    sources = dict(zip(inputs, clips.distinct(plan.files), strict=True))
    # the files arrive over the first two thirds of the cycles, some while it is down
    batches = max(1, (plan.kills * 2) // 3)
    names = list(inputs)
    batch_of = {name: index * batches // len(names) for index, name in enumerate(names)}
    try:
        for number in range(1, plan.kills + 1):
            daemon = Daemon(config, folder / f"daemon-{number:02d}.log").spawn()
            batch = [name for name in names if batch_of[name] == number - 1]
            if batch:
                drop_at_once(
                    {folder / "inbox" / inputs[name] / name: sources[name] for name in batch}
                )
            outcome.kills.append(_kill_at_random(daemon, number, plan, choose, folder))
            if processes_mentioning(str(folder)):
                outcome.problems.append(
                    f"kill {number}: processes on {folder} outlived the daemon by"
                    f" {ORPHAN_WAIT:.0f} s: {processes_mentioning(str(folder))}"
                )
        last = Daemon(config, folder / "daemon-last.log").spawn()
        try:
            wait_for(lambda: last.saw("daemon.started"), what="the last daemon up")
            wait_for(
                lambda: _all_accounted(folder, inputs),
                timeout=plan.finish_timeout,
                interval=0.2,
                what="every input to end in done/ or failed/",
            )
        except AssertionError as error:
            outcome.problems.append(str(error))
        status = last.stop(timeout=60)
        if status != 0:
            outcome.problems.append(f"the last daemon exited with status {status}")
        if processes_mentioning(str(folder)):
            outcome.problems.append(f"processes left on {folder} after the last stop")
    finally:
        for pid in processes_mentioning(str(folder)):
            _kill(pid)
    outcome.problems += inspect(folder, inputs, fake=fake)
    jobs = ledger_jobs(folder / "state")
    outcome.done = sum(job["state"] == "done" for job in jobs)
    outcome.failed = {
        Path(job["source"]).name: job["error"] or "" for job in jobs if job["state"] == "failed"
    }
    outcome.seconds = time.monotonic() - started
    return outcome


def _kill_at_random(
    daemon: Daemon, number: int, plan: Plan, choose: random.Random, folder: Path
) -> Kill:
    """SIGKILL `daemon` at a random moment: early (before it is up), at a random time
    while it works, or right after a random one of KILL_AFTER."""
    assert daemon.process is not None
    spawned = time.monotonic()
    if choose.random() < EARLY_KILLS:
        aim = "starting"
        time.sleep(choose.uniform(0.0, 0.6))  # importing, opening the ledger, recovering
    else:
        wait_for(lambda: daemon.saw("daemon.started") or not daemon.running, interval=0.02)
        if choose.random() < ON_EVENT_KILLS:
            aim = choose.choice(KILL_AFTER)
            with contextlib.suppress(AssertionError):  # no such event this time: kill anyway
                wait_for(lambda: daemon.saw(aim), timeout=plan.max_delay, interval=0.01)
            time.sleep(choose.uniform(0.0, 0.05))
        else:
            aim = "random"
            time.sleep(choose.uniform(0.0, plan.max_delay))
    states = Counter(job["state"] for job in ledger_jobs(folder / "state"))
    daemon.kill()
    events = list(daemon.events())
    kill = Kill(
        number=number,
        aim=aim,
        after_start=time.monotonic() - spawned,
        up=any(event.get("event") == "daemon.started" for event in events),
        last_event=events[-1].get("event") if events else None,
        states=dict(states),
    )
    # the kill must take the daemon's FFmpeg with it (the caller reports any that stay)
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not processes_mentioning(str(folder)), timeout=ORPHAN_WAIT, interval=0.05)
    return kill


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _all_accounted(folder: Path, inputs: dict[str, str]) -> bool:
    """Whether every input is in done/ or failed/ and nothing is left in processing/."""
    for name, rule_name in inputs.items():
        inbox = folder / "inbox" / rule_name
        if not files(inbox / "done", name) and not (inbox / "failed" / name).exists():
            return False
    return not any(files(folder / "inbox" / name / "processing") for name in RULES)


def inspect(
    folder: Path,
    inputs: dict[str, str],
    *,
    fake: FakeNemo | None = None,
    rules: tuple[str, ...] = tuple(RULES),
) -> list[str]:
    """Every way the folders, the ledger and the fake's books disagree with "each input
    processed exactly once, nothing lost, nothing half-written in sight". `inputs` maps
    each input's name to its rule; the rules' folders are under `folder`, as `rule` makes
    them."""
    problems: list[str] = []
    jobs = ledger_jobs(folder / "state")
    jobs_by_input: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for job in jobs:
        jobs_by_input.setdefault((job["rule"], Path(job["source"]).name), []).append(job)
    published: set[Path] = set()
    for rule_name in rules:
        inbox, outbox = folder / "inbox" / rule_name, folder / "outbox" / rule_name
        published |= {path for path in files(outbox, "*.mp4") if not path.name.startswith(".")}
        hidden = [path for path in outbox.rglob(".*")] if outbox.exists() else []
        hidden += [path for path in outbox.rglob(f"*{TEMP_SUFFIX}")] if outbox.exists() else []
        if hidden:
            problems.append(f"hidden or partial files in {outbox}: {sorted(set(hidden))}")
        if files(inbox / "processing"):
            problems.append(f"left in processing/: {files(inbox / 'processing')}")
        expected = {name for name, owner in inputs.items() if owner == rule_name}
        leftovers = [path.name for path in files(inbox) if path.parent == inbox]
        if leftovers:
            problems.append(f"never taken from {inbox}: {leftovers}")
        unexpected = {
            path.name
            for path in files(outbox)
            if not path.name.startswith(".")
            and path.name.removesuffix(".json").removesuffix(".mp4") + ".mp4" not in expected
        }
        if unexpected:
            problems.append(f"outputs no input explains in {outbox}: {sorted(unexpected)}")
        for name in sorted(expected):
            problems += _inspect_input(name, rule_name, inbox, outbox, jobs_by_input)
    done_outputs = {Path(job["output"]) for job in jobs if job["state"] == "done" and job["output"]}
    if done_outputs != published:
        problems.append(
            "the ledger's outputs and the outboxes disagree:"
            f" only in the ledger {sorted(map(str, done_outputs - published))},"
            f" only on disk {sorted(map(str, published - done_outputs))}"
        )
    for job in jobs:
        if job["state"] not in ("done", "failed"):
            problems.append(f"job {job['id']} ({job['source']}) ended {job['state']}")
        elif job["disposed"] is None:
            problems.append(f"job {job['id']} ({job['source']}) was never disposed")
        elif job["disposed"] == "missing":
            problems.append(f"job {job['id']} ({job['source']}) lost its source")
    if fake is not None:
        problems += books_problems(fake)
        for job in jobs:
            session = json.loads(job["session"])["id"] if job["session"] else None
            applied = fake.books.applied_instructions(session) if session else []
            if job["state"] == "done" and applied != list(RULES.get(job["rule"], applied)):
                problems.append(f"job {job['id']} is done, but its session got {applied}")
    return problems


def _inspect_input(
    name: str,
    rule_name: str,
    inbox: Path,
    outbox: Path,
    jobs_by_input: dict[tuple[str, str], list[dict[str, Any]]],
) -> list[str]:
    stem = name.removesuffix(".mp4")
    outputs = [path for path in files(outbox, f"{stem}*.mp4") if not path.name.startswith(".")]
    archived = files(inbox / "done", f"{stem}*.mp4")
    failed = files(inbox / "failed", f"{stem}*.mp4")
    reports = files(inbox / "failed", f"{stem}*.error.json")
    jobs = jobs_by_input.get((rule_name, name), [])
    where = f"{rule_name}/{name}"
    if len(jobs) != 1:
        states = [job["state"] for job in jobs]
        return [f"{where}: {len(jobs)} jobs in the ledger, expected 1 ({states})"]
    (job,) = jobs
    if job["state"] == "done":
        problems = []
        if [path.name for path in outputs] != [name]:
            problems.append(f"{where}: outputs {[path.name for path in outputs]}, expected one")
        if [path.name for path in archived] != [name]:
            problems.append(f"{where}: in done/ as {[path.name for path in archived]}")
        if failed or reports:
            problems.append(f"{where}: done, yet in failed/: {failed + reports}")
        if job["output"] != str(outbox / name):
            problems.append(f"{where}: the ledger says the output is {job['output']}")
        return problems
    if job["state"] == "failed":
        problems = []
        if [path.name for path in failed] != [name] or len(reports) != 1:
            problems.append(f"{where}: failed, but failed/ holds {failed + reports}")
        elif "error" not in json.loads(reports[0].read_text()):
            problems.append(f"{where}: its error report says no error")
        if outputs or archived:
            problems.append(f"{where}: failed, yet has outputs {outputs} or archive {archived}")
        return problems
    return [f"{where}: its job ended {job['state']}"]


def books_problems(fake: FakeNemo) -> list[str]:
    """What the fake NemoVideo saw that would have been charged twice."""
    problems = []
    for session, records in fake.books.instructions.items():
        applied = [record.text for record in records if record.applied]
        if len(applied) != len(set(applied)):
            problems.append(f"session {session}: instructions applied twice: {applied}")
    for session, records in fake.books.renders.items():
        accepted = [record.render_id for record in records if record.accepted]
        if len(accepted) > 1:
            problems.append(f"session {session}: {len(accepted)} renders accepted: {accepted}")
    if fake.books.server_errors:
        problems.append(f"the fake server failed: {fake.books.server_errors[:1]}")
    return problems
