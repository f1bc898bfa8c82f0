"""Benchmark: a fleet of three daemons on one PostgreSQL ledger (issue 17), 1,000 small
jobs through a zero-latency engine: throughput and database round-trips per job.

    python bench/fleet.py [--files 1000] [--nodes 3] [--concurrency 4] [--prefetch 1]
                          [--idle 11] [--runs 1] [--work DIR] [--durable] [--profile]
    python bench/fleet.py --store sqlite      # one node on the default ledger, to compare

A throwaway PostgreSQL cluster (tests/pg.py's PgServer: initdb in a temporary folder, Unix
socket, fsync and synchronous_commit off unless --durable, and here pg_stat_statements
loaded) holds the ledger. The nodes are
separate processes (this file again, `--node NAME`), each a `nemowatch.daemon.Daemon`
with the `Fleet` companion, as `nemowatch run` composes it, but with `InstantEngine`: every
step returns at once and the "render" is a copy of one tiny MP4 (a 1 s 160x120 clip made
once with FFmpeg; the outbox verifies what it publishes). All nodes watch one inbox and
publish to one outbox. The sources are that clip with trailing bytes of their own (so no
two share a content fingerprint; the probe still reads them), staged beside the inbox and
renamed into it one after another as fast as Python can.

Each node counts what it sends to the database (see `Counters`): every statement (reads on
their own, statements inside a transaction), each transaction's BEGIN and COMMIT (two
more), and the empty query the pool sends to check a connection each time one is taken:
each is one round-trip. Each is charged to the outermost `Ledger` method it ran under
(`create_all`, `transition`, `heartbeat`, `knows_source`...). The parent asks every node
for its counts (SIGUSR1) before an idle spell, before the drop and once every file is
done, so the per-job numbers leave out start-up and shutdown; the idle spell gives the
fleet's background rate. Cross-checks on the server: pg_stat_database's xact_commit delta
and pg_stat_statements' calls (which sees BEGIN and COMMIT, not the empty check queries).

Reported per run: wall time from the first rename to the last `outbox.published` (the
nodes' log timestamps) and jobs per second; the jobs each node did; CPU seconds per job of
each node and of the PostgreSQL server processes (/proc of the postmaster and its
children); round-trips per job, in all and by ledger method; and exactly once: one job
per file in the database, all done, every output there, no "(2)" names, no source in
failed/, no error logged, every node stopped with status 0. `--profile` (a run apart:
sampling costs CPU) samples each node's event loop thread with py-spy and says where its
busy time went. Exit status 1 if a run was not exactly once. Record results in
docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.procs import CLOCK_TICKS, cpu_seconds, processes  # noqa: E402
from nemowatch.engines.base import (  # noqa: E402
    EDIT_FRAME,
    Credits,
    Draft,
    EditEvent,
    EditEventKind,
    Frame,
    Job,
    Media,
    Render,
    RenderState,
    RenderStatus,
    Session,
)
from nemowatch.rules import ExportSpec  # noqa: E402

INSTRUCTIONS = ["cut out silences"]
STATS_FLUSH = 11.0  # seconds: an idle backend has sent its counts to pg_stat_database


# -- in each node --------------------------------------------------------------------


class InstantEngine:
    """The Engine protocol with no latency: each step answers at once; the render is a
    copy of `result` (a real MP4, since the outbox verifies what it publishes)."""

    name = "instant"
    shares_sessions = False
    render_deadline = None

    def __init__(self, result: Path, duration: float) -> None:
        self.result = result
        self.duration = duration

    async def open_session(self, job: Job) -> Session:
        return Session(id=f"session-{job.id}")

    async def upload(self, session: Session, source: Path) -> Media:
        return Media(name=source.name, duration=self.duration, has_audio=True)

    async def edit_checkpoint(self, session: Session) -> str | None:
        return None  # sending an instruction again costs nothing

    async def edit_landed(self, session: Session, checkpoint: str) -> bool:
        return True

    async def edit(self, session: Session, instruction: str) -> AsyncIterator[EditEvent]:
        yield EditEvent(EditEventKind.TEXT, f"did: {instruction}")

    async def draft(self, session: Session) -> Draft:
        milliseconds = round(self.duration * 1000)
        return Draft(
            tracks=({"tt": 0, "sg": [{"at": 0, "d": milliseconds}]},), duration_ms=milliseconds
        )

    async def export(
        self, session: Session, draft: Draft, spec: ExportSpec, frame: Frame = EDIT_FRAME
    ) -> Render:
        return Render(id=f"render-{session.id}")

    async def poll(self, render: Render) -> RenderStatus:
        return RenderStatus(RenderState.COMPLETED, progress=100.0)

    async def download(self, render: Render, dest: Path) -> None:
        shutil.copyfile(self.result, dest)  # ~20 kB: cheaper than a thread hop

    async def credits(self) -> Credits | None:
        return None

    async def close(self) -> None:
        return None


class Counters:
    """Round-trips to the database by kind, each charged to the outermost public `Ledger`
    method running on this thread ("(other)" outside them)."""

    def __init__(self) -> None:
        self.counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._local = threading.local()
        self._lock = threading.RLock()  # the SIGUSR1 handler runs on the counting thread

    def method(self) -> str:
        return getattr(self._local, "method", None) or "(other)"

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[self.method()][kind] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {method: dict(kinds) for method, kinds in self.counts.items()}

    @contextlib.contextmanager
    def charged_to(self, name: str) -> Iterator[None]:
        outer = getattr(self._local, "method", None)
        if outer is None:
            self._local.method = name
            self.add("calls")
        try:
            yield
        finally:
            if outer is None:
                self._local.method = None

    def install(self) -> None:
        """Wrap the Ledger's public methods, PgStore's statements and transactions and the
        pool's connection check."""
        from psycopg_pool import ConnectionPool

        from nemowatch.ledger import Ledger
        from nemowatch.ledgers import postgres

        for name in dir(Ledger):
            value = inspect.getattr_static(Ledger, name)
            if name.startswith("_") or not inspect.isfunction(value):
                continue  # properties, class and static methods: no database of their own
            setattr(Ledger, name, self._charging(name, value))

        counters = self
        statement = postgres._Transaction.execute

        def execute(transaction: Any, sql: str, params: Any = ()) -> Any:
            counters.add("transaction statement" if counters._in_transaction() else "statement")
            return statement(transaction, sql, params)

        postgres._Transaction.execute = execute  # type: ignore[method-assign]
        transaction = postgres.PgStore.transaction

        @contextlib.contextmanager
        def counted(store: Any) -> Iterator[Any]:
            counters.add("BEGIN+COMMIT")
            counters.add("BEGIN+COMMIT")
            counters._local.transaction = True
            try:
                with transaction(store) as db:
                    yield db
            finally:
                counters._local.transaction = False

        postgres.PgStore.transaction = counted  # type: ignore[assignment, method-assign]
        check = ConnectionPool.check_connection

        def checked(connection: Any) -> None:
            counters.add("pool check")
            check(connection)

        ConnectionPool.check_connection = staticmethod(checked)  # type: ignore[method-assign, assignment]

    def _in_transaction(self) -> bool:
        return bool(getattr(self._local, "transaction", False))

    def _charging(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def charged(*args: Any, **kwargs: Any) -> Any:
            with self.charged_to(name):
                return method(*args, **kwargs)

        return charged


def run_node(config_path: Path, counts_path: Path, clip: Path) -> int:
    """One node: the daemon as `nemowatch run` composes it for a fleet, on InstantEngine;
    its round-trip counts written to `counts_path` (a JSON list) on SIGUSR1 and at exit."""
    from nemowatch import logs
    from nemowatch.config import load_config
    from nemowatch.daemon import Daemon
    from nemowatch.daemon.fleet import Fleet

    counters = Counters()
    counters.install()
    snapshots: list[dict[str, Any]] = []

    def write(label: str) -> None:
        snapshots.append({"label": label, "at": time.time(), "counts": counters.snapshot()})
        counts_path.write_text(json.dumps(snapshots), encoding="utf-8")

    config = load_config(config_path)
    logs.configure(config.log_level, json=True)
    signal.signal(signal.SIGUSR1, lambda *_: write(f"snapshot {len(snapshots)}"))
    daemon = Daemon(config, engine=InstantEngine(clip, 1.0), companions=[Fleet(config.fleet)])
    try:
        return asyncio.run(daemon.run())
    finally:
        write("exit")


# -- the parent ----------------------------------------------------------------------


def server_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster and its live children (backends, writers). A backend
    that exited is missed: the nodes keep theirs open for the whole run."""
    total = cpu_seconds(postmaster)
    for _, fields in processes():
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


class PgLedger:
    """The fleet's ledger: tests/pg.py's PgServer, started with pg_stat_statements loaded,
    and a database in it."""

    name = "fleetbench"
    joined = "fleet.joined"

    def __init__(self, durable: bool = False) -> None:
        from tests.pg import PgServer, _bin

        # the tests' settings (nothing waits for the disk), or PostgreSQL's defaults
        writes = (
            " -c fsync=on -c synchronous_commit=on -c full_page_writes=on"
            if durable
            else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )

        class Server(PgServer):
            def start(self) -> None:
                options = (
                    f"-c listen_addresses='' -c unix_socket_directories='{self.socket}'"
                    + writes
                    + " -c shared_buffers=16MB -c max_connections=200"
                    " -c shared_preload_libraries=pg_stat_statements"
                    " -c pg_stat_statements.track_utility=on"
                )
                data, log = str(self.data), str(self.folder / "log")
                self._run(_bin("pg_ctl"), "-D", data, "-o", options, "-w", "-l", log, "start")

        self.server = Server()
        self.url: str | None = None

    def start(self) -> None:
        self.server.start()
        query(self.server.url(), f"CREATE DATABASE {self.name}")
        self.url = self.server.url(self.name)
        query(self.url, "CREATE EXTENSION pg_stat_statements")

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        assert self.url is not None
        return query(self.url, sql)

    def counts(self, reset: bool = False) -> dict[str, int]:
        """xact_commit of the bench's database, and pg_stat_statements' calls in it."""
        if reset:
            self._query("SELECT pg_stat_statements_reset()")
        commits = self._query(
            f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{self.name}'"
        )
        calls = self._query(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d"
            f" ON d.oid = s.dbid WHERE d.datname = '{self.name}'"
        )
        return {"xact_commit": int(commits[0][0]), "statement_calls": int(calls[0][0])}

    def cpu(self) -> float:
        postmaster = int((self.server.data / "postmaster.pid").read_text().split()[0])
        return server_cpu(postmaster)

    def jobs(self, work: Path, names: list[str]) -> list[tuple[Any, ...]]:
        """(source, state, node) of every job."""
        return self._query("SELECT source, state, node FROM jobs")

    def remove(self) -> None:
        self.server.remove()


class SqliteLedger:
    """The default ledger, for comparison: SQLite in the one node's state_dir."""

    url = None
    joined = "daemon.started"

    def start(self) -> None:
        return None

    def counts(self, reset: bool = False) -> dict[str, int]:
        return {"xact_commit": 0, "statement_calls": 0}

    def cpu(self) -> float:
        return 0.0

    def jobs(self, work: Path, names: list[str]) -> list[tuple[Any, ...]]:
        from tests.e2e.harness import ledger_jobs

        return [
            (row["source"], row["state"], name)
            for name in names
            for row in ledger_jobs(work / name / "state")
        ]

    def remove(self) -> None:
        return None


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []


def write_config(
    folder: Path, shared: Path, url: str | None, node: str, args: argparse.Namespace
) -> Path:
    fleet = {"ledger": url, "fleet": {"node": node, "lease": args.lease}} if url else {}
    config = {
        "engine": "local",
        "state_dir": str(folder / "state"),
        "concurrency": args.concurrency,
        "prefetch": args.prefetch,
        "scan_interval": 300,
        "grace_period": 10,
        **fleet,
        "rules": [
            {
                "name": "clips",
                "inbox": str(shared / "inbox"),
                "outbox": str(shared / "outbox"),
                "settle_seconds": args.settle,
                "instructions": INSTRUCTIONS,
                "export": {"format": "mp4", "resolution": "source", "quality": "low"},
            }
        ],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def log_events(path: Path, event: str) -> list[dict[str, Any]]:
    found = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if f'"{event}"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == event:
                    found.append(entry)
    return found


def timestamp(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()


def count_files(folder: Path) -> int:
    return sum(
        1 for _root, _dirs, names in os.walk(folder) for name in names if not name.startswith(".")
    )


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Node:
    """A node process and its files."""

    def __init__(self, name: str, folder: Path, config: Path, clip: Path, joined: str) -> None:
        self.name = name
        self.joined_event = joined
        self.log = folder / "node.log"
        self.counts = folder / "counts.json"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--node",
                name,
                "--config",
                str(config),
                "--counts",
                str(self.counts),
                "--clip",
                str(clip),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115 - the child holds it
            cwd=ROOT,
        )

    def joined(self) -> bool:
        if self.process.poll() is not None:
            raise SystemExit(f"node {self.name} exited early ({self.log})")
        return bool(log_events(self.log, self.joined_event))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Ask the node for its counts now (SIGUSR1) and read them."""
        before = len(self._snapshots())
        self.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: len(self._snapshots()) > before, 30, f"node {self.name}'s counts")
        return dict(self._snapshots()[-1]["counts"])

    def _snapshots(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self.counts.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return []

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def difference(
    after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for method, kinds in after.items():
        delta = {kind: count - before.get(method, {}).get(kind, 0) for kind, count in kinds.items()}
        delta = {kind: count for kind, count in delta.items() if count}
        if delta:
            result[method] = delta
    return result


def merged(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    total: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for part in parts:
        for method, kinds in part.items():
            total[method].update(kinds)
    return {method: dict(kinds) for method, kinds in total.items()}


PROFILE_RATE = 100  # py-spy samples per second
# where a sample's innermost frame is (part of its file), first match wins
PROFILE_LEAVES = (
    ("psycopg", "psycopg and its pool (includes waiting for the server)"),
    ("structlog", "logging"),
    ("/logging/", "logging"),
    ("/av/", "PyAV (probes)"),
    ("nemowatch/files.py", "nemowatch/files.py (stat, fingerprint)"),
    ("nemowatch/", "nemowatch, the rest"),
    ("pathlib", "pathlib"),
    ("/asyncio/", "asyncio"),
    ("fleet.py", "the bench (counters, engine)"),
)
# what a sample's stack passes through (a function and part of its file), all that match
PROFILE_CALLERS = (
    ("", "nemowatch/ledger", "a Ledger method"),
    ("check_connection", "psycopg_pool", "  the pool's check of a connection taken"),
    ("_run_job", "daemon/lifecycle.py", "a job's run (pipeline)"),
    ("_settle_loop", "daemon/lifecycle.py", "the settle loop (intake)"),
    ("recheck", "daemon/intake.py", "  Intake.recheck: settling files looked at again"),
    ("beside", "daemon/sidecars.py", "  Sidecars.beside: the inbox listed for sidecars"),
    ("_on_candidate", "daemon/lifecycle.py", "a watch event or scan (Intake.offer)"),
    ("classify", "nemowatch/intake.py", "classify: which rule takes a path (anywhere)"),
)


class Sampler:
    """py-spy sampling the nodes until stopped. Only the event loop's thread is kept, and
    py-spy counts it busy while it waits in psycopg for the server (the ledger's calls are
    synchronous): the shares are of the loop's time not spent idle, CPU or waiting."""

    def __init__(self, nodes: list[Node]) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(binary).exists():
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.outputs = [node.log.with_name("py-spy.txt") for node in nodes]
        self.processes = [
            subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(node.process.pid),
                    "--rate",
                    str(PROFILE_RATE),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for node, output in zip(nodes, self.outputs, strict=True)
        ]

    def stop(self) -> dict[str, dict[str, float]]:
        """Per cent of the loop's busy samples by innermost frame and by what the stack
        passes through; its busy seconds in all."""
        for process in self.processes:
            process.send_signal(signal.SIGINT)  # py-spy writes its file and exits
        for process in self.processes:
            process.wait(timeout=60)
        leaves: Counter[str] = Counter()
        callers: Counter[str] = Counter()
        total = 0
        for output in self.outputs:
            for line in output.read_text(encoding="utf-8", errors="replace").splitlines():
                stack, _, samples = line.rpartition(" ")
                if not samples.isdigit():
                    continue
                frames = stack.split(";")
                if not any(frame.startswith("run_node (") for frame in frames):
                    continue  # another thread: watchdog's, the pool's workers
                total += int(samples)
                leaf = frames[-1]
                leaves[
                    next((title for part, title in PROFILE_LEAVES if part in leaf), "other")
                ] += int(samples)
                for function, file, title in PROFILE_CALLERS:
                    if any(f"{function} (" in frame and file in frame for frame in frames):
                        callers[title] += int(samples)
        return {
            "innermost frame, %": {
                title: round(100 * value / max(1, total), 1)
                for title, value in leaves.most_common()
            },
            "passing through, %": {
                title: round(100 * callers[title] / max(1, total), 1)
                for _function, _file, title in PROFILE_CALLERS
            },
            "busy seconds": {"event loop threads, all nodes": round(total / PROFILE_RATE, 1)},
        }


def round_trips(kinds: dict[str, int]) -> int:
    return sum(count for kind, count in kinds.items() if kind != "calls")


def run_once(
    base: Path, clip: Path, sources: list[Path], args: argparse.Namespace
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    shared = work / "shared"
    staging = shared / "staging"
    staging.mkdir(parents=True)
    for source in sources:  # hard links: the staged copies cost no time to make
        os.link(source, staging / source.name)
    inbox, outbox = shared / "inbox", shared / "outbox"
    count = len(sources)
    ledger = PgLedger(args.durable) if args.store == "postgresql" else SqliteLedger()
    nodes: list[Node] = []
    try:
        ledger.start()
        names = [f"n{index + 1}" for index in range(args.nodes)]
        for name in names:
            folder = work / name
            folder.mkdir()
            config = write_config(folder, shared, ledger.url, name, args)
            nodes.append(Node(name, folder, config, clip, ledger.joined))
        wait_for(lambda: all(node.joined() for node in nodes), 120, "every node joined")
        time.sleep(1.0)

        idle_counts = [node.snapshot() for node in nodes]
        idle_started = time.time()
        time.sleep(args.idle)
        before = [node.snapshot() for node in nodes]
        idle_seconds = time.time() - idle_started
        server_before = ledger.counts(reset=True)
        cpu_before = {node.name: cpu_seconds(node.process.pid) for node in nodes}
        pg_cpu_before = ledger.cpu()
        load_before = os.getloadavg()
        sampler = Sampler(nodes) if args.profile else None

        started = time.time()
        for path in sorted(staging.iterdir()):
            path.rename(inbox / path.name)
        renamed = time.time() - started
        wait_for(
            lambda: count_files(inbox / "done") + count_files(inbox / "failed") >= count,
            3600,
            f"{count} files finished",
            interval=0.5,
        )
        seen_done = time.time() - started
        profiled = sampler.stop() if sampler is not None else {}
        cpu_after = {node.name: cpu_seconds(node.process.pid) for node in nodes}
        pg_cpu_after = ledger.cpu()
        load_after = os.getloadavg()
        # a backend flushes its pg_stat_database counts once idle for up to 10 s
        time.sleep(STATS_FLUSH)
        after = [node.snapshot() for node in nodes]
        server_after = ledger.counts()
        codes = [node.stop() for node in nodes]
        nodes = []

        rows = ledger.jobs(work, names)
        published = [
            timestamp(entry)
            for name in names
            for entry in log_events(work / name / "node.log", "outbox.published")
        ]
        lease_lost = sum(
            len(log_events(work / name / "node.log", "job.lease_lost")) for name in names
        )
        adopted = sum(len(log_events(work / name / "node.log", "job.adopted")) for name in names)
        errors = sum(
            1
            for name in names
            for line in (work / name / "node.log").read_text(errors="replace").splitlines()
            if '"level": "error"' in line or '"level": "critical"' in line
        )
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.stop()
        ledger.remove()

    per_node = [difference(a, b) for a, b in zip(after, before, strict=True)]
    idle = [difference(b, a) for a, b in zip(idle_counts, before, strict=True)]
    window = merged(per_node)
    total_trips = sum(round_trips(kinds) for kinds in window.values())
    by_method = {
        method: {
            "calls": round(kinds.get("calls", 0) / count, 2),
            "round_trips": round(round_trips(kinds) / count, 2),
        }
        for method, kinds in sorted(window.items(), key=lambda item: -round_trips(item[1]))
    }
    by_kind: Counter[str] = Counter()
    for kinds in window.values():
        by_kind.update({kind: value for kind, value in kinds.items() if kind != "calls"})
    outputs = sorted(path.name for path in outbox.rglob("*.mp4"))
    expected = sorted(source.name for source in sources)
    spread = Counter(str(row[2]) for row in rows)
    once = {
        "jobs_in_database": len(rows),
        "distinct_sources": len({row[0] for row in rows}),
        "jobs_done": sum(1 for row in rows if row[1] == "done"),
        "outputs_as_named": int(outputs == expected),
        "archived_sources": count_files(inbox / "done"),
        "failed_sources": count_files(inbox / "failed"),
        "errors_logged": errors,
        "nodes_exit_codes_0": int(codes == [0] * len(codes)),
    }
    wanted = {
        "jobs_in_database": count,
        "distinct_sources": count,
        "jobs_done": count,
        "outputs_as_named": 1,
        "archived_sources": count,
        "failed_sources": 0,
        "errors_logged": 0,
        "nodes_exit_codes_0": 1,
    }
    wrong = {key: (once[key], wanted[key]) for key in once if once[key] != wanted[key]}
    wall = (max(published) - started) if published else float("nan")
    return {
        "profile": profiled,
        "store": args.store + (" (durable)" if args.durable else ""),
        "files": count,
        "nodes": args.nodes,
        "concurrency": args.concurrency,
        "prefetch": args.prefetch,
        "rename_seconds": round(renamed, 3),
        "wall_seconds": round(wall, 2),
        "seen_done_seconds": round(seen_done, 2),
        "jobs_per_second": round(count / wall, 1),
        "jobs_by_node": dict(sorted(spread.items())),
        "node_cpu_per_own_job_ms": {
            node: round(1000 * (cpu_after[node] - cpu_before[node]) / max(1, spread[node]), 2)
            for node in sorted(cpu_after)
        },
        "node_cpu_per_job_ms": round(
            1000 * (sum(cpu_after.values()) - sum(cpu_before.values())) / count, 2
        ),
        "node_cpu_seconds": round(sum(cpu_after.values()) - sum(cpu_before.values()), 2),
        "postgres_cpu_seconds": round(pg_cpu_after - pg_cpu_before, 2),
        "postgres_cpu_per_job_ms": round(1000 * (pg_cpu_after - pg_cpu_before) / count, 2),
        "round_trips_per_job": round(total_trips / count, 2),
        "round_trips_per_job_by_kind": {
            kind: round(value / count, 2) for kind, value in sorted(by_kind.items())
        },
        "round_trips_per_job_by_method": by_method,
        "round_trips_per_node": {
            name: sum(round_trips(kinds) for kinds in part.values())
            for name, part in zip(names, per_node, strict=True)
        },
        "idle_round_trips_per_second": round(
            sum(round_trips(kinds) for part in idle for kinds in part.values()) / idle_seconds, 2
        ),
        "server_xact_commit_per_job": round(
            (server_after["xact_commit"] - server_before["xact_commit"]) / count, 2
        ),
        "server_statement_calls_per_job": round(
            (server_after["statement_calls"] - server_before["statement_calls"]) / count, 2
        ),
        "jobs_adopted": adopted,
        "jobs_lease_lost": lease_lost,
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in load_after],
        "exactly_once": not wrong,
        "wrong": wrong,
    }


def print_run(run: dict[str, Any]) -> None:
    print(
        f"{run['store']}: {run['files']} files, {run['nodes']} nodes, "
        f"concurrency {run['concurrency']}, "
        f"prefetch {run['prefetch']}: {run['wall_seconds']} s, {run['jobs_per_second']} jobs/s, "
        f"exactly once: {run['exactly_once']} {run['wrong'] or ''}"
    )
    print(f"  jobs by node: {run['jobs_by_node']}")
    print(
        f"  CPU per job: nodes {run['node_cpu_per_job_ms']} ms together "
        f"(each per job it did: {run['node_cpu_per_own_job_ms']}), "
        f"PostgreSQL {run['postgres_cpu_per_job_ms']} ms"
    )
    print(
        f"  round-trips per job: {run['round_trips_per_job']} "
        f"(server: {run['server_xact_commit_per_job']} commits, "
        f"{run['server_statement_calls_per_job']} statements); "
        f"idle: {run['idle_round_trips_per_second']}/s for the fleet"
    )
    print(f"  by kind: {run['round_trips_per_job_by_kind']}")
    methods = run["round_trips_per_job_by_method"]
    width = max(len(method) for method in methods)
    print(f"    {'ledger method'.ljust(width)}  calls/job  round-trips/job")
    for method, value in methods.items():
        print(f"    {method.ljust(width)}  {value['calls']:9.2f}  {value['round_trips']:15.2f}")
    for part, shares in run["profile"].items():
        print(f"  the nodes' event loops (py-spy), {part}:")
        for share, value in shares.items():
            print(f"    {share.ljust(56)}  {value:7}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument(
        "--store",
        choices=["postgresql", "sqlite"],
        default="postgresql",
        help="sqlite: one node on the default ledger, for comparison (--nodes is ignored)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="PostgreSQL with fsync, synchronous_commit and full_page_writes on (its "
        "defaults) instead of the tests' settings, which never wait for the disk",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="per node")
    parser.add_argument("--prefetch", type=int, default=1, help="per node")
    parser.add_argument("--settle", type=float, default=0.5, help="settle_seconds of the rule")
    parser.add_argument("--lease", type=float, default=120.0, help="fleet.lease, seconds")
    parser.add_argument(
        "--idle", type=float, default=STATS_FLUSH, help="seconds of idle counted (>= 11)"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="keep files here")
    # a node (this file started by itself)
    parser.add_argument("--node", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--counts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the nodes with py-spy while the files run, and print where their CPU "
        "went (a run apart from the timed ones: the sampling costs CPU too)",
    )
    args = parser.parse_args()
    if args.node:
        return run_node(args.config, args.counts, args.clip)
    if args.store == "sqlite":
        args.nodes = 1

    work = args.work or Path(tempfile.mkdtemp(prefix="nemowatch-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the server runs as `postgres`; it only needs its own folder
        os.chmod(work, 0o755)
    print(f"preparing {args.files} files in {work} ...", file=sys.stderr)
    from bench.load import make_sources  # the same padded copies of one tiny clip

    clip, sources = make_sources(work, args.files)
    runs = []
    for index in range(args.runs):
        print(f"run {index + 1} ...", file=sys.stderr)
        runs.append(run_once(work, clip, sources, args))
        print_run(runs[-1])
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                "python": platform.python_version(),
                "runs": runs,
            }
        )
    )
    return 0 if all(run["exactly_once"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
