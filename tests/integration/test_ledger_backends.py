"""The rest of the ledger's interface, against both stores (SQLite, a real PostgreSQL), and
what only the shared store does: migrations once under concurrent starts, one job per file
across nodes, node-scoped recovery, leases, adoption and fencing, outages."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from nemowatch import liveness
from nemowatch.config import Config, FleetSettings
from nemowatch.doctor.findings import Status
from nemowatch.doctor.fleet import fleet_ledger_finding
from nemowatch.errors import AlreadyClaimed, LeaseLost, LedgerError
from nemowatch.jobs import Batch
from nemowatch.ledger import JobState, Ledger, NewJob
from nemowatch.ledgers.migrate import describe, migrate
from nemowatch.ledgers.postgres import MIGRATIONS, PgStore, shown_url
from tests.ledgers import BACKENDS, backend_ledger, walk_to
from tests.pg import PgServer

Reopen = Callable[[], Ledger]


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, Reopen]]:
    ledger, reopen = backend_ledger(request, tmp_path / "state", node="n1")
    yield ledger, reopen
    ledger.close()


@pytest.fixture
def ledger(opened: tuple[Ledger, Reopen]) -> Ledger:
    return opened[0]


def new(ledger: Ledger, job_id: str, source: str = "", **extra: object) -> None:
    ledger.create(
        job_id=job_id,
        rule=str(extra.pop("rule", "reels")),
        engine="local",
        source=Path(source or f"/in/{job_id}.mp4"),
        claimed=Path(f"/in/processing/{job_id}"),
        source_size=10,
        source_mtime_ns=1_700_000_000_123_456_789,  # nanoseconds: past 32 bits
        source_inode=2**40,
        **extra,  # type: ignore[arg-type]
    )


# -- the interface, on both stores --------------------------------------------------------


def test_jobs_are_listed_newest_first_by_state_rule_and_retried(ledger: Ledger) -> None:
    for job_id in ("a", "b", "c"):
        new(ledger, job_id, rule="other" if job_id == "c" else "reels")
    walk_to(ledger, "a", JobState.FAILED)
    ledger.mark_retried("a")
    with pytest.raises(LedgerError, match="already retried"):
        ledger.mark_retried("a")

    assert [job.id for job in ledger.jobs(limit=None)] == ["c", "b", "a"]
    assert [job.id for job in ledger.jobs(limit=2)] == ["c", "b"]
    assert [job.id for job in ledger.jobs(rule="reels", limit=None)] == ["b", "a"]
    assert [job.id for job in ledger.jobs(JobState.FAILED, retried=True)] == ["a"]
    assert [job.id for job in ledger.jobs(retried=False)] == ["c", "b"]
    assert ledger.counts() == {JobState.FAILED: 1, JobState.CLAIMED: 2}
    assert [job.id for job in ledger.find("b")] == ["b"]
    record = ledger.get("b")
    assert (record.source_mtime_ns, record.source_inode) == (1_700_000_000_123_456_789, 2**40)
    assert record.node == "n1"


def test_batches_revisions_and_claimed_paths_are_found(ledger: Ledger) -> None:
    batch = Batch(
        id="b1",
        folder=Path("/in/trip"),
        claimed=Path("/in/processing/b1__trip"),
        identity=(1, 2, 3),
        mode="each",
        files=("x.mp4", "y.mp4"),
    )
    ledger.create_all(
        [
            NewJob("m1", "reels", "local", Path("/in/trip/x.mp4"), None, batch=batch),
            NewJob("m2", "reels", "local", Path("/in/trip/y.mp4"), None, batch=batch),
        ]
    )
    assert [job.id for job in ledger.batch_jobs("b1")] == ["m1", "m2"]
    assert ledger.knows_batch(Path("/in/trip"), (1, 2, 3))
    assert not ledger.knows_batch(Path("/in/trip"), (1, 2, 4))
    assert Path("/in/processing/b1__trip") in ledger.claimed_paths()


def test_progress_discard_and_control_round_trip(ledger: Ledger) -> None:
    new(ledger, "a")
    ledger.progress("a", "rendering", 41.26)
    assert (ledger.get("a").stage, ledger.get("a").percent) == ("rendering", 41.3)
    ledger.discard("a")
    assert not ledger.exists("a")
    assert ledger.history("a") == []

    assert not ledger.control().paused
    assert ledger.set_paused(True).paused
    ledger.request_scan()
    first = ledger.control().scan_requested
    ledger.request_scan()
    assert ledger.control().scan_requested > first > 0
    ledger.set_control("rule_paused:reels", "1")
    assert ledger.control_values("rule_paused:") == {"rule_paused:reels": "1"}
    ledger.set_control("rule_paused:reels", None)
    assert ledger.control_values("rule_paused:") == {}


def test_undisposed_and_fingerprints(ledger: Ledger) -> None:
    new(ledger, "a")
    walk_to(ledger, "a", JobState.DONE, fingerprint="f")
    assert [job.id for job in ledger.undisposed()] == ["a"]
    ledger.update("a", disposed="archived")
    assert ledger.undisposed() == []
    new(ledger, "b")
    ledger.update("b", fingerprint="f", retryable=True)
    assert ledger.get("b").retryable is True
    assert [job.id for job in ledger.unfinished_with_fingerprint("f", "reels")] == ["b"]
    assert ledger.done_with_fingerprint("f", "reels").id == "a"  # type: ignore[union-attr]


# -- only the shared store ------------------------------------------------------------------


@pytest.fixture
def database(pg_server: PgServer) -> str:
    return pg_server.database()


def node(database: str, tmp_path: Path, name: str | None) -> Ledger:
    return Ledger.shared(PgStore(database), tmp_path / (name or "cli"), node=name)


def silence(database: str, name: str, seconds: float) -> None:
    """As if the node `name` had not beaten for `seconds`."""
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "UPDATE nodes SET heartbeat_at = heartbeat_at - %s WHERE name = %s", (seconds, name)
        )


def test_two_daemons_starting_at_once_apply_each_migration_once(database: str) -> None:
    stores: list[PgStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PgStore(database))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(database) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM nemowatch_schema")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    for store in stores:
        store.close()


def test_two_nodes_never_record_one_file_twice(database: str, tmp_path: Path) -> None:
    first, second = node(database, tmp_path, "a"), node(database, tmp_path, "b")
    new(first, "j1", "/in/clip.mp4")
    with pytest.raises(AlreadyClaimed):
        new(second, "j2", "/in/clip.mp4")
    assert second.knows_source(Path("/in/clip.mp4"), 10, 1_700_000_000_123_456_789, 2**40)
    walk_to(first, "j1", JobState.FAILED)
    first.mark_retried("j1")  # sent back by an operator: work again, for anyone
    new(second, "j2", "/in/clip.mp4")
    first.close()
    second.close()


def test_each_node_recovers_its_own_jobs_only(database: str, tmp_path: Path) -> None:
    first, second = node(database, tmp_path, "a"), node(database, tmp_path, "b")
    new(first, "mine")
    new(second, "theirs")
    first.update("mine", in_flight="x")
    second.update("theirs", in_flight="x")
    assert [job.id for job in first.unfinished()] == ["mine"]
    assert [job.id for job in first.count_crash()] == ["mine"]
    assert [job.id for job in second.count_crash()] == ["theirs"]
    assert first.mine("mine") and not first.mine("theirs")
    viewer = node(database, tmp_path, None)  # `status` from any machine sees every job
    assert {job.id for job in viewer.unfinished()} == {"mine", "theirs"}
    for ledger in (first, second, viewer):
        ledger.close()


def test_a_lost_lease_is_adopted_once_and_fences_the_old_node(
    database: str, tmp_path: Path
) -> None:
    old, a, b = (node(database, tmp_path, name) for name in ("old", "a", "b"))
    for ledger in (old, a, b):
        ledger.register("host", 1, "test", ["local"], 2)
    for job_id in ("j1", "j2", "j3"):
        new(old, job_id)
    old.update("j1", in_flight=old.get("j1").checkpoint)  # running when it died
    assert a.adopt(lease=60.0, limit=5, rules=["reels"]) == []  # its heartbeat is fresh

    silence(database, "old", 120)
    taken_by_a = a.adopt(lease=60.0, limit=2, rules=["reels"])
    taken_by_b = b.adopt(lease=60.0, limit=5, rules=["reels"])

    assert [job.id for job in taken_by_a] == ["j1", "j2"]
    assert [job.id for job in taken_by_b] == ["j3"]
    assert {job.node for job in taken_by_a + taken_by_b} == {"a", "b"}
    assert all(job.lease_gen == 1 for job in taken_by_a + taken_by_b)
    assert (taken_by_a[0].crashes, taken_by_a[0].crashed_alone) == (1, True)  # died with it
    assert taken_by_a[1].crashes == 0
    assert "adopted by a from old" in (a.history("j1")[-1][3] or "")

    with pytest.raises(LeaseLost, match="adopted by the node a"):
        old.transition("j1", JobState.UPLOADING)
    with pytest.raises(LeaseLost):
        old.progress("j2", "rendering", 50.0)
    with pytest.raises(LeaseLost):
        old.fence("j3")
    a.transition("j1", JobState.UPLOADING)  # the adopter goes on
    b.fence("j3")
    for ledger in (old, a, b):
        ledger.close()


def test_adoption_skips_rows_another_adopter_holds(database: str, tmp_path: Path) -> None:
    old, a = node(database, tmp_path, "old"), node(database, tmp_path, "a")
    old.register("host", 1, "test", ["local"], 1)
    new(old, "j1")
    old.signed_off()  # stopped: still its own until its lease runs out
    assert a.adopt(lease=60.0, limit=5, rules=["reels"]) == []
    silence(database, "old", 120)
    with psycopg.connect(database) as holder:
        holder.execute("SELECT 1 FROM jobs WHERE id = 'j1' FOR UPDATE")  # mid-adoption
        assert a.adopt(lease=60.0, limit=5, rules=["reels"]) == []  # skipped, not waited for
    assert [job.id for job in a.adopt(lease=60.0, limit=5, rules=["reels"])] == ["j1"]
    assert [node.name for node in a.nodes()] == ["old"]
    old.close()
    a.close()


def test_the_nodes_table_shows_heartbeats_by_the_databases_clock(
    database: str, tmp_path: Path
) -> None:
    a = node(database, tmp_path, "a")
    a.register("render-1", 4242, "1.2.3", ["local", "nemo"], 3)
    assert a.heartbeat()
    (seen,) = a.nodes()
    assert (seen.name, seen.host, seen.pid, seen.engines, seen.concurrency) == (
        "a",
        "render-1",
        4242,
        ("local", "nemo"),
        3,
    )
    assert seen.age < 5 and seen.alive(lease=60.0)
    assert seen.as_json(60.0)["state"] == "alive"
    a.signed_off()
    assert a.nodes()[0].as_json(60.0)["state"] == "stopped"
    a.close()


def test_the_database_going_away_is_waited_for_with_a_log_line_per_try(
    pg_server: PgServer, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    restarted = threading.Event()
    tries: list[float] = []

    def sleep(seconds: float) -> None:
        tries.append(seconds)
        if not restarted.is_set():
            pg_server.start()
            restarted.set()

    ledger = Ledger.shared(PgStore(database, sleep=sleep), tmp_path, node="a")
    new(ledger, "j1")
    pg_server.stop()
    try:
        record = ledger.transition("j1", JobState.UPLOADING)  # waits, then goes on
    finally:
        if not restarted.is_set():
            pg_server.start()
    assert record.state is JobState.UPLOADING
    assert tries  # it did wait
    assert "ledger.unreachable" in capsys.readouterr().out
    ledger.close()


def test_an_unreachable_database_gives_up_after_the_outage_with_a_clear_error(
    tmp_path: Path,
) -> None:
    missing = f"postgresql://nobody@/none?host={tmp_path}"  # no server listens there
    with pytest.raises(LedgerError, match="cannot reach the ledger's database"):
        PgStore(missing, outage=0.0)


def test_the_password_never_appears_in_messages(
    pg_server: PgServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert shown_url("postgresql://nw:s3cr3t@db.lan/nw") == "postgresql://nw@db.lan/nw"
    secret = tmp_path / "password"
    secret.write_text("s3cr3t-pw\n")
    caplog.set_level(logging.DEBUG)  # psycopg's pool logs each failed connection
    for host in (tmp_path, pg_server.socket):  # no server there; a server refusing the user
        with pytest.raises(LedgerError) as raised:
            PgStore(f"postgresql://nobody@/postgres?host={host}", password_file=secret, outage=0)
        said = str(raised.value) + str(raised.value.hint)
        assert "cannot reach the ledger's database" in said and "s3cr3t" not in said
    assert "nobody" in caplog.text  # the refusals were logged...
    assert "s3cr3t" not in caplog.text + capsys.readouterr().out  # ...without the password


def test_a_database_written_by_a_newer_nemowatch_is_refused(database: str) -> None:
    PgStore(database).close()
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("INSERT INTO nemowatch_schema (version) VALUES (99)")
    with pytest.raises(LedgerError, match="written by a newer nemowatch"):
        PgStore(database)


def test_json_columns_read_back_the_same(database: str, tmp_path: Path) -> None:
    ledger = node(database, tmp_path, "a")
    new(ledger, "a")
    draft = {"segments": [[0.0, 1.5], [2.0, 3.25]], "name": "a 100% cut"}
    assert ledger.update("a", draft=draft).draft == draft
    with psycopg.connect(database) as connection:
        (stored,) = connection.execute("SELECT draft FROM jobs WHERE id = 'a'").fetchone()
    assert json.loads(stored) == draft
    ledger.close()


# -- one machine grows into a fleet ------------------------------------------------------------


def test_a_sqlite_ledger_is_migrated_with_its_history_and_duplicate_memory(
    database: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with Ledger.in_state_dir(state) as old:  # written before nodes were recorded
        new(old, "done1")
        walk_to(old, "done1", JobState.DONE, fingerprint="f1", output=Path("/out/a.mp4"))
        new(old, "half")
        walk_to(old, "half", JobState.EDITING)
        old.set_paused(True)
    config = Config(state_dir=state, fleet=FleetSettings(node="box1"))

    done = migrate(config, database)

    assert (done.jobs, done.controls) == (2, 2) and done.transitions >= 7
    assert "now set `ledger: " in "\n".join(describe(done))
    fleet = node(database, tmp_path, "box1")
    assert fleet.done_with_fingerprint("f1", "reels").id == "done1"  # type: ignore[union-attr]
    assert [job.id for job in fleet.unfinished()] == ["half"]  # still this machine's
    assert [to for _, to, _, _ in fleet.history("half")][-1] == "editing"
    assert fleet.control().paused
    with pytest.raises(LedgerError, match="already has job done1") as refused:
        migrate(config, database)
    assert "migrated already; nothing was written" in str(refused.value.hint)
    assert len(fleet.jobs(limit=None)) == 2  # nothing written twice
    fleet.close()


def test_migrating_while_the_daemon_runs_is_refused(database: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    Ledger.in_state_dir(state).close()
    lock = liveness.hold(state)  # what a running daemon holds
    try:
        with pytest.raises(LedgerError, match="a daemon is running"):
            migrate(Config(state_dir=state), database)
    finally:
        lock.release()


def test_doctor_says_whether_the_fleets_database_answers_and_which_nodes_it_saw(
    database: str, tmp_path: Path
) -> None:
    seen = node(database, tmp_path, "render-1")
    seen.register("box", 1, "test", ["local"], 2)
    seen.close()
    config = Config(state_dir=tmp_path / "state", ledger=database, fleet=FleetSettings(node="x"))
    finding = fleet_ledger_finding(config)
    assert finding.status is Status.OK
    assert "schema 1" in finding.detail and "nodes seen: render-1" in finding.detail
    gone = config.model_copy(update={"ledger": f"postgresql://nobody@/none?host={tmp_path}"})
    finding = fleet_ledger_finding(gone)
    assert finding.status is Status.PROBLEM and "cannot reach" in finding.detail
    assert finding.fix is not None and "PostgreSQL server runs" in finding.fix
