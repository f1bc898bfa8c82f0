"""`nemowatch ledger check` and `nemowatch ledger recover`: a damaged ledger's way out.

`check` reports what SQLite's `PRAGMA integrity_check` finds and how many rows of each
table can still be read. `recover` (with the daemon stopped) moves the damaged file aside
(with its -wal and -shm, so the copy stays whole), makes a new ledger, copies into it every
row that can still be read (row by row: Python's sqlite3 has no `.recover`), then adds what
the folders show: a claimed file in an inbox's processing/ that no recovered job names
becomes a claimed job again (its id is in its name), and outputs in the outboxes that no
job names are listed. Nothing is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nemowatch import liveness
from nemowatch.config import Config
from nemowatch.errors import LedgerError
from nemowatch.ledger import JobState, Ledger
from nemowatch.ledgerfile import ledger_expected, ledger_path

TABLES = ("jobs", "transitions", "control")  # in the order they are copied
JSON_COLUMNS = ("session", "media", "draft", "render", "warnings", "timings", "published")
CLAIM_NAME = re.compile(r"^(?P<job_id>[0-9a-f]{12})__(?P<name>.+)$")  # files.claim_path
PROBE = 2000  # row ids tried one by one past a damaged stretch before giving up on a table
SIDE_FILES = ("", "-wal", "-shm")  # the ledger and SQLite's files beside it


@dataclass(frozen=True)
class Report:
    """What `nemowatch ledger check` says about a ledger."""

    path: Path
    exists: bool
    expected: bool  # a daemon ran on the state directory (so a missing ledger was lost)
    problems: list[str]  # from PRAGMA integrity_check; [] when the ledger is sound
    readable: dict[str, int]  # rows that can still be read, per table

    @property
    def sound(self) -> bool:
        return self.exists and not self.problems


@dataclass
class Recovered:
    """What `nemowatch ledger recover` did."""

    path: Path
    aside: list[Path] = field(default_factory=list)  # the damaged files, moved aside
    copied: dict[str, int] = field(default_factory=dict)  # rows copied, per table
    skipped: int = 0  # job rows read but unusable (garbage in their fields)
    adopted: list[Path] = field(default_factory=list)  # claimed files made jobs again
    unknown_outputs: list[Path] = field(default_factory=list)  # outputs no job names


def _open_existing(path: Path) -> sqlite3.Connection:
    """A connection to an existing file, creating nothing (mode=rw), rows by name."""
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


def check(state_dir: Path) -> Report:
    """Check the ledger of `state_dir` thoroughly (reads every page; writes nothing)."""
    path = ledger_path(state_dir)
    expected = ledger_expected(state_dir)
    if not path.is_file():
        return Report(path, exists=False, expected=expected, problems=[], readable={})
    try:
        db = _open_existing(path)
    except sqlite3.Error as exc:
        return Report(path, exists=True, expected=expected, problems=[str(exc)], readable={})
    with contextlib.closing(db):
        try:
            lines = [str(row[0]) for row in db.execute("PRAGMA integrity_check(100)")]
            problems = [] if lines == ["ok"] else lines
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        readable = {table: len(readable_rows(db, table)) for table in TABLES}
    return Report(path, exists=True, expected=expected, problems=problems, readable=readable)


def readable_rows(db: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    """Every row of `table` that can be read, by rowid: forward until a damaged page, then
    one rowid at a time past it, and backward from the end; [] if the table is unreadable."""
    rows: dict[int, dict[str, Any]] = {}
    query = f"SELECT rowid AS rowid_, * FROM {table} WHERE rowid {{}} ? ORDER BY rowid {{}}"
    last = 0
    for _stretch in range(1000):  # bounded: garbage must not make this loop forever
        try:
            for row in db.execute(query.format(">", "ASC"), (last,)):
                rows[row["rowid_"]] = dict(row)
                last = row["rowid_"]
            break
        except sqlite3.DatabaseError:
            found = _next_readable(db, table, last)
            if found is None:
                break
            last = found - 1
    with contextlib.suppress(sqlite3.DatabaseError):
        for row in db.execute(query.format(">", "DESC"), (last,)):
            rows.setdefault(row["rowid_"], dict(row))
    for row in rows.values():
        row.pop("rowid_", None)
    return [rows[key] for key in sorted(rows)]


def _next_readable(db: sqlite3.Connection, table: str, after: int) -> int | None:
    for rowid in range(after + 1, after + 1 + PROBE):
        with contextlib.suppress(sqlite3.DatabaseError):
            if db.execute(f"SELECT 1 FROM {table} WHERE rowid = ?", (rowid,)).fetchone():
                return rowid
    return None


def usable_job(row: dict[str, Any]) -> bool:
    """Whether a job row read from a damaged ledger holds what a job needs."""
    try:
        JobState(str(row.get("state")))
        for column in JSON_COLUMNS:
            if row.get(column):
                json.loads(row[column])
    except (ValueError, TypeError):
        return False
    return all(row.get(column) is not None for column in ("id", "rule", "engine", "source"))


def recover(config: Config, *, clock: Callable[[], float] = time.time) -> Recovered:
    """Move the ledger aside and rebuild it from what can be read and from the folders.

    Refused (LedgerError) while a daemon runs on the state directory.
    """
    state_dir = config.state_dir
    daemon = liveness.check(state_dir)
    if daemon.running:
        raise LedgerError(
            f"a daemon (pid {daemon.pid}) runs on {state_dir}",
            hint="stop it first (`systemctl stop nemowatch`), then recover",
        )
    path = ledger_path(state_dir)
    result = Recovered(path)
    rows: dict[str, list[dict[str, Any]]] = {}
    # a -wal left by a deleted ledger must go too: beside a new file it reads as I/O errors
    present = [suffix for suffix in SIDE_FILES if Path(f"{path}{suffix}").exists()]
    stamp = datetime.fromtimestamp(clock()).strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in present:
        source, target = Path(f"{path}{suffix}"), Path(f"{aside}{suffix}")
        if target.exists():
            raise LedgerError(f"{target} exists; not moving {source} over it")
        os.rename(source, target)
        result.aside.append(target)
    if "" in present:
        with contextlib.suppress(sqlite3.Error), contextlib.closing(_open_existing(aside)) as db:
            rows = {table: readable_rows(db, table) for table in TABLES}
    jobs = [row for row in rows.get("jobs", []) if usable_job(row)]
    result.skipped = len(rows.get("jobs", [])) - len(jobs)
    Ledger(path).close()  # a new, empty ledger with the current schema
    with contextlib.closing(_open_existing(path)) as db:
        db.execute("BEGIN IMMEDIATE")
        for table, table_rows in (("jobs", jobs), *((t, rows.get(t, [])) for t in TABLES[1:])):
            result.copied[table] = _insert(db, table, table_rows)
        db.execute("COMMIT")
    with Ledger(path) as ledger:
        result.adopted = _adopt_claimed(ledger, config)
        named = {output for record in ledger.jobs(limit=None) for output in record.outputs}
    result.unknown_outputs = [item for item in _outputs(config) if item not in named]
    return result


def _insert(db: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> int:
    """Insert what fits the new schema; rows that break a constraint are left out."""
    columns = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
    copied = 0
    for row in rows:
        names = [name for name in row if name in columns]
        sql = (
            f"INSERT OR IGNORE INTO {table} ({', '.join(names)})"
            f" VALUES ({', '.join('?' for _ in names)})"
        )
        with contextlib.suppress(sqlite3.Error):
            copied += db.execute(sql, [row[name] for name in names]).rowcount
    return copied


def _adopt_claimed(ledger: Ledger, config: Config) -> list[Path]:
    """Claimed files no job names become claimed jobs again, under the id in their name."""
    known = ledger.claimed_paths()
    adopted = []
    for rule in config.rules:
        for path in _listing(rule.inbox / "processing"):
            match = CLAIM_NAME.match(path.name)
            if path in known or match is None or ledger.exists(match["job_id"]):
                continue
            ledger.create(
                job_id=match["job_id"],
                rule=rule.name,
                engine=config.engine,
                source=rule.inbox / match["name"],
                claimed=path,
            )
            known.add(path)
            adopted.append(path)
    return adopted


def _outputs(config: Config) -> Iterator[Path]:
    for outbox in sorted({rule.outbox for rule in config.rules}):
        yield from _listing(outbox)


def _listing(folder: Path) -> list[Path]:
    """The visible files directly in `folder`, sorted; [] when it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")
            )
    except OSError:
        return []


def describe_report(report: Report) -> list[str]:
    """`nemowatch ledger check`'s lines."""
    if not report.exists:
        if report.expected:
            return [f"{report.path}: missing, though a daemon ran here: `nemowatch ledger recover`"]
        return [f"{report.path}: no ledger yet (the daemon makes it when it first runs)"]
    readable = ", ".join(f"{count} {table}" for table, count in report.readable.items())
    if report.sound:
        return [f"{report.path}: ok ({readable})"]
    return [
        f"{report.path}: damaged",
        *(f"  {problem}" for problem in report.problems),
        f"readable: {readable}",
        "`nemowatch ledger recover` (with the daemon stopped) moves it aside and rebuilds "
        "the ledger from what can be read and from the folders; nothing is deleted",
    ]


def describe_recovered(result: Recovered) -> list[str]:
    """`nemowatch ledger recover`'s lines."""
    lines = [f"moved aside: {path}" for path in result.aside]
    copied = ", ".join(f"{count} {table}" for table, count in result.copied.items())
    lines.append(f"rebuilt {result.path}: copied {copied}")
    if result.skipped:
        lines.append(f"left out {result.skipped} unreadable job rows (kept in the file aside)")
    lines += [f"claimed again: {path}" for path in result.adopted]
    lines += [f"output no job names (left as it is): {path}" for path in result.unknown_outputs]
    lines.append("start the daemon: it resumes the unfinished jobs")
    return lines
