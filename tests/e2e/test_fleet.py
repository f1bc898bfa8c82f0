"""A fleet: three daemons (separate processes standing for three machines) on one real
PostgreSQL ledger (tests/pg.py) and the same inboxes and outboxes, on the fake NemoVideo
server (the cloud does the work, so the machine's two cores are not the bottleneck).

Each file is processed exactly once and the work is spread; a node SIGKILLed mid-render has
its jobs finished by the others once its lease runs out, and publishes nothing twice when
it comes back; the database restarting while jobs run loses and doubles nothing; `status`
from a fourth process shows the three nodes and each job's node.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.harness import (
    Daemon,
    drop_at_once,
    files,
    free_port,
    nemowatch,
    rule,
    wait_for,
    write_config,
)
from tests.fakes.nemo_server import FakeNemo, Variants
from tests.media import Clips
from tests.pg import PgServer

pytestmark = pytest.mark.e2e

NODES = ("a", "b", "c")


class Fleet:
    """Three nodes' configs on one database and one set of folders."""

    def __init__(
        self, tmp_path: Path, url: str, fake: FakeNemo, lease: float, engine: str = "nemo"
    ) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.rules = [rule(tmp_path, instructions=["cut out silences"])]
        self.inbox = tmp_path / "inbox" / "clips"
        self.outbox = tmp_path / "outbox" / "clips"
        self.engine = engine
        self.settings: dict[str, Any] = {
            "engine": engine,
            "nemo": {"base_url": fake.base_url},
            "concurrency": 2,
            "prefetch": 1,
            "ledger": url,
            "grace_period": 2,  # shorter than the shortest lease here (check insists)
        }
        self.lease = lease
        # one account for the fleet (docs/fleet.md): a node can resume another's session and
        # render only with the same token; anonymous tokens are each node's own
        self.env = {"NEMO_TOKEN": fake.mint_token()}
        self.daemons = {
            name: Daemon(self.config(name), self.folder(name) / "daemon.log", self.env)
            for name in NODES
        }

    def folder(self, name: str) -> Path:
        folder = self.tmp_path / name
        folder.mkdir(exist_ok=True)
        return folder

    def config(self, name: str, **extra: Any) -> Path:
        return write_config(
            self.folder(name),
            self.rules,
            state_dir=str(self.folder(name) / "state"),
            fleet={"node": name, "lease": self.lease},
            **{**self.settings, **extra},
        )

    def drop(self, clips: Clips, count: int) -> list[str]:
        names = [f"clip{index:02d}.mp4" for index in range(count)]
        sources = clips.distinct(count)
        drop_at_once(
            {self.inbox / name: source for name, source in zip(names, sources, strict=True)}
        )
        return names

    def jobs(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.url) as connection:
            cursor = connection.execute(
                "SELECT id, source, state, node, output, lease_gen FROM jobs"
            )
            columns = [column.name for column in cursor.description or ()]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def finished(self, count: int) -> bool:
        return len(files(self.inbox / "done", "*.mp4")) == count and not files(
            self.inbox / "processing"
        )

    def stop(self) -> list[int]:
        return [daemon.stop() for daemon in self.daemons.values() if daemon.running]

    def assert_each_exactly_once(self, names: list[str], fake: FakeNemo) -> list[dict[str, Any]]:
        jobs = self.jobs()
        assert sorted(Path(job["source"]).name for job in jobs) == names  # one job per file
        assert {job["state"] for job in jobs} == {"done"}
        assert sorted(path.name for path in files(self.outbox, "*.mp4")) == names  # no "(2)"
        assert sorted(path.name for path in files(self.inbox / "done")) == names
        assert not [path for path in self.outbox.rglob(".*")]  # nothing half-written left
        if self.engine == "nemo":
            assert len(fake.books.accepted_renders()) == len(names)  # one render each
        return jobs


@pytest.fixture
def database(pg_server: PgServer) -> str:
    return pg_server.database()


def test_three_nodes_process_thirty_files_exactly_once_spread_evenly_and_status_shows_them(
    tmp_path: Path, clips: Clips, fake: FakeNemo, database: str
) -> None:
    fleet = Fleet(tmp_path, database, fake, lease=30.0)
    port = free_port()
    page = fleet.daemons["a"]
    fleet.daemons["a"] = Daemon(
        fleet.config("a", http={"listen": f"127.0.0.1:{port}"}), page.log, fleet.env
    )
    try:
        for daemon in fleet.daemons.values():
            daemon.start()
        names = fleet.drop(clips, 30)
        wait_for(lambda: fleet.finished(30), timeout=150, what="every file done")
        # node a's web page shows the whole fleet too
        overview = httpx.get(f"http://127.0.0.1:{port}/api/overview").json()
        home = httpx.get(f"http://127.0.0.1:{port}/").text
        # a fourth process, with the config and no daemon of its own, sees the whole fleet
        viewer = fleet.folder("viewer")
        config = write_config(
            viewer, fleet.rules, state_dir=str(viewer / "state"), **fleet.settings
        )
        shown = nemowatch(config, "status", "--json", "--limit", "50")
        text = nemowatch(config, "status")
        jobs_text = nemowatch(config, "jobs", "--limit", "50")
    finally:
        statuses = fleet.stop()
    assert statuses == [0, 0, 0]
    jobs = fleet.assert_each_exactly_once(names, fake)
    spread = Counter(job["node"] for job in jobs)
    print("spread over nodes:", dict(sorted(spread.items())))  # quoted in docs/fleet.md
    assert set(spread) == set(NODES), spread
    assert all(5 <= count <= 15 for count in spread.values()), spread  # ±50 % of 10

    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert [(node["name"], node["state"]) for node in status["nodes"]] == [
        (name, "alive") for name in NODES
    ]
    assert status["done"] == 30
    assert Counter(job["node"] for job in status["recent"]) == spread
    assert "daemon: not running on this machine (the fleet's nodes are below)" in text.stdout
    for name in NODES:
        assert f"node {name} (" in text.stdout and ": alive, 0 unfinished jobs" in text.stdout
    assert sum(f"@{name}" in line for line in jobs_text.stdout.splitlines() for name in NODES) == 30
    assert [(node["name"], node["state"]) for node in overview["nodes"]] == [
        (name, "alive") for name in NODES
    ]
    assert "<h2>Nodes</h2>" in home and all(f"@{name}</span>" in home for name in NODES)


@pytest.mark.parametrize("engine", ["nemo", "local"])
def test_a_node_killed_mid_render_has_its_jobs_finished_by_the_others_exactly_once(
    tmp_path: Path, clips: Clips, fake: FakeNemo, database: str, engine: str
) -> None:
    """nemo: the adopters resume the cloud renders by their ids; local: they render again
    from the claimed sources."""
    fake.variants = Variants(render_polls=5)  # renders of ~7 s: time to be killed during one
    fleet = Fleet(tmp_path, database, fake, lease=3.0, engine=engine)
    # node a runs one job at a time, so that it is killed while that one renders and the
    # other waits, claimed: never between recording an instruction as sent and sending it,
    # which the adopter cannot tell from a sent one and looks for over nemo.landing_window
    # (5 minutes) instead of sending it again (steps.edit)
    fleet.daemons["a"] = Daemon(fleet.config("a", concurrency=1), fleet.daemons["a"].log, fleet.env)
    a, b, c = (fleet.daemons[name] for name in NODES)
    try:
        a.start()
        names = fleet.drop(clips, 6)
        # node a alone takes what it can start soon (1 + prefetch 1), and starts rendering
        wait_for(
            lambda: any(job["state"] == "exporting" for job in fleet.jobs() if job["node"] == "a"),
            timeout=60,
            what="a render on node a",
        )
        a.kill()
        killed_in = {job["id"]: job["state"] for job in fleet.jobs() if job["node"] == "a"}
        killed_with = set(killed_in)
        b.start()
        c.start()
        wait_for(lambda: fleet.finished(6), timeout=150, what="every file done")
        adopted = [entry["job_id"] for node in (b, c) for entry in node.saw("job.adopted")]
        # restarted late, node a finds nothing of its own to resume and publishes nothing
        a = fleet.daemons["a"] = Daemon(a.config, a.log.with_name("again.log"), fleet.env).start()
        wait_for(lambda: a.saw("fleet.joined"), what="node a back")
        unfinished = [job for job in fleet.jobs() if job["state"] != "done"]
    finally:
        statuses = fleet.stop()
    assert statuses == [0, 0, 0]
    # one rendering, and the other waiting, claimed (the local engine's job can render
    # before node a claims a second one)
    assert set(killed_in.values()) - {"claimed"} == {"exporting"}
    assert sorted(adopted) == sorted(killed_with)  # each adopted once, by b or c
    jobs = fleet.assert_each_exactly_once(names, fake)
    for job in jobs:
        if job["id"] in killed_with:
            assert job["node"] in ("b", "c") and job["lease_gen"] == 1
    assert unfinished == []
    assert not a.saw("job.resuming") and not a.saw("outbox.published")
    assert not a.saw("daemon.crash_found")  # its crash was charged by the adopters


def test_the_database_restarting_while_jobs_run_loses_and_doubles_nothing(
    tmp_path: Path, clips: Clips, fake: FakeNemo, pg_server: PgServer, database: str
) -> None:
    fake.variants = Variants(render_polls=4)
    fleet = Fleet(tmp_path, database, fake, lease=20.0)  # longer than the outage
    try:
        for name in ("a", "b"):
            fleet.daemons[name].start()
        names = fleet.drop(clips, 8)
        wait_for(
            lambda: any(job["state"] == "exporting" for job in fleet.jobs()),
            timeout=60,
            what="a render running",
        )
        pg_server.restart(down_for=2.0)
        wait_for(lambda: fleet.finished(8), timeout=150, what="every file done")
    finally:
        statuses = fleet.stop()
    assert statuses == [0, 0]
    fleet.assert_each_exactly_once(names, fake)
    waited = [
        entry for daemon in fleet.daemons.values() for entry in daemon.saw("ledger.unreachable")
    ]
    assert waited  # they noticed, and said so
    assert not any(daemon.saw("job.adopted") for daemon in fleet.daemons.values())


def test_pause_resume_retry_from_another_machine_reach_every_node_and_nodes_tie_a_rule(
    tmp_path: Path, clips: Clips, fake: FakeNemo, database: str
) -> None:
    """The commands write the shared control table and ring only their own machine's
    doorbell: each node hears them at its next heartbeat."""
    fleet = Fleet(tmp_path, database, fake, lease=8.0)  # beats every 2 s
    fleet.rules[0]["max_size"] = 100_000  # the clips are ~46 kB: a larger file fails
    fleet.rules[0]["nodes"] = ["b"]  # and only node b takes this rule's files
    fleet.daemons = {
        name: Daemon(fleet.config(name), daemon.log, fleet.env)
        for name, daemon in fleet.daemons.items()
    }
    viewer = fleet.folder("viewer")
    config = write_config(viewer, fleet.rules, state_dir=str(viewer / "state"), **fleet.settings)
    nodes = [fleet.daemons[name] for name in ("a", "b")]
    try:
        for daemon in nodes:
            daemon.start()
        assert nemowatch(config, "pause").returncode == 0
        wait_for(
            lambda: all(daemon.saw("daemon.paused") for daemon in nodes),
            timeout=20,
            what="both nodes paused",
        )
        names = fleet.drop(clips, 2)
        broken = fleet.inbox / "broken.mp4"
        broken.write_bytes(b"\0" * 200_000)  # too large for the rule
        assert nemowatch(config, "resume").returncode == 0
        wait_for(
            lambda: (
                len(files(fleet.inbox / "done", "*.mp4")) == 2
                and files(fleet.inbox / "failed", "*.mp4")
            ),
            timeout=60,
            what="the clips done, the broken file failed",
        )
        shutil.copy(clips.distinct(3)[2], fleet.inbox / "failed" / "broken.mp4")  # mended
        retried = nemowatch(config, "retry", "--failed")
        assert retried.returncode == 0, retried.stderr
        wait_for(lambda: fleet.finished(3), timeout=60, what="the mended file done")
        # a node whose row someone removed registers again at its next beat (else its
        # jobs could never be adopted, and `status` would not show it)
        with psycopg.connect(fleet.url, autocommit=True) as connection:
            connection.execute("DELETE FROM nodes WHERE name = 'a'")
        wait_for(lambda: nodes[0].saw("fleet.node_missing"), timeout=20, what="a back")
        with psycopg.connect(fleet.url) as connection:
            registered = [row[0] for row in connection.execute("SELECT name FROM nodes ORDER BY 1")]
    finally:
        statuses = fleet.stop()
    assert statuses == [0, 0]
    states = Counter(job["state"] for job in fleet.jobs())
    assert states == {"done": 3, "failed": 1}  # the failed one lives on as its retry
    assert {job["node"] for job in fleet.jobs()} == {"b"}  # `nodes: [b]`
    assert registered == ["a", "b"]
    assert sorted(path.name for path in files(fleet.outbox, "*.mp4")) == sorted(
        [*names, "broken.mp4"]
    )
