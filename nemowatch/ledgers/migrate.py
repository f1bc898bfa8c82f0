"""`nemowatch ledger migrate --to postgresql://...`: one machine's SQLite ledger copied into
the PostgreSQL database of a fleet, so it keeps its history and its duplicate memory (a
file done before is still skipped), and its unfinished jobs are still its own.

Everything is copied in one transaction: the jobs (each keeps its id, and its node: the
config's `fleet.node` for jobs written before nodes were recorded), their history, and the
operators' control table (pauses). The daemon must be stopped; a database that already has
any of these jobs is refused (migrated already), and nothing is written then. The SQLite
file is left as it is: the config's `ledger:` decides which one is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nemowatch import liveness
from nemowatch.config import Config
from nemowatch.errors import LedgerError
from nemowatch.ledger import Ledger
from nemowatch.ledgers.postgres import PgStore

# the jobs columns both stores have, in the order they are copied
_COPIED = [
    *("id", "rule", "engine", "source", "source_size", "source_mtime_ns", "source_inode"),
    *("claimed", "fingerprint", "size", "state", "attempts", "retryable", "session", "media"),
    *("edits_done", "edit_sent", "edit_token", "draft", "render", "output", "error"),
    *("warnings", "disposed", "timings", "created_at", "updated_at", "finished_at"),
    *("retried_at", "stage", "percent", "progress_at", "in_flight", "crashes"),
    *("crashed_alone", "sidecars", "published", "batch", "revision", "error_kind", "node"),
    "lease_gen",
]


@dataclass(frozen=True)
class Migrated:
    jobs: int
    transitions: int
    controls: int
    source: Path
    target: str


def migrate(config: Config, url: str) -> Migrated:
    """Copy `config`'s SQLite ledger into the database at `url` (see the module)."""
    daemon = liveness.check(config.state_dir)
    if daemon.running:
        raise LedgerError(
            f"a daemon is running on {config.state_dir} (pid {daemon.pid})",
            hint="stop it first (`systemctl stop nemowatch`): jobs it records meanwhile "
            "would not be copied",
        )
    source = Ledger.open_existing(config.state_dir)
    target = PgStore(url, password_file=config.fleet.password_file, outage=0.0)
    try:
        jobs = source._db.execute(f"SELECT {', '.join(_COPIED)} FROM jobs ORDER BY rowid")
        rows = [dict(row) for row in jobs.fetchall()]
        history = source._db.execute(
            "SELECT job_id, from_state, to_state, at, detail FROM transitions ORDER BY id"
        ).fetchall()
        controls = source._db.execute("SELECT key, value FROM control").fetchall()
        node = config.fleet.name
        with target.transaction() as db:
            ids = [row["id"] for row in rows]
            if ids:
                clash = db.execute(
                    f"SELECT id FROM jobs WHERE id IN ({', '.join('?' for _ in ids)}) LIMIT 1",
                    ids,
                ).fetchone()
                if clash is not None:
                    raise LedgerError(
                        f"the database {target.where} already has job {clash['id']} of "
                        f"{source.where}",
                        hint="this ledger was migrated already; nothing was written",
                    )
            placeholders = ", ".join("?" for _ in _COPIED)
            for row in rows:
                row["node"] = row["node"] or node
                db.execute(
                    f"INSERT INTO jobs ({', '.join(_COPIED)}) VALUES ({placeholders})",
                    [row[column] for column in _COPIED],
                )
            for step in history:
                db.execute(
                    "INSERT INTO transitions (job_id, from_state, to_state, at, detail)"
                    " VALUES (?, ?, ?, ?, ?)",
                    tuple(step),
                )
            for key, value in controls:
                db.execute(
                    "INSERT INTO control (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, value),
                )
        return Migrated(len(rows), len(history), len(controls), source.path, target.where)
    finally:
        source.close()
        target.close()


def describe(done: Migrated) -> list[str]:
    return [
        f"copied {done.jobs} jobs, {done.transitions} history rows and {done.controls} "
        f"control entries from {done.source} into {done.target}",
        f"now set `ledger: {done.target}` in the config and start the daemon; "
        f"{done.source} is left as it was",
    ]
