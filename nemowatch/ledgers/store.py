"""What the ledger writes through: a database it can `execute` SQL on and open a
`transaction` in (`ledgers.sqlite.SqliteStore`, `ledgers.postgres.PgStore`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Rows(Protocol):
    """What a statement gives back: sqlite3.Cursor, or `ledgers.postgres.Result`."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Executor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Rows: ...


class Store(Executor, Protocol):
    """The database under the ledger (`ledgers.sqlite`, `ledgers.postgres`)."""

    shared: bool  # written by several daemons
    lock_rows: str  # appended to a SELECT inside a transaction to hold its rows
    where: str  # for messages: the file, or the database's URL without a password

    def transaction(self) -> AbstractContextManager[Executor]: ...
    def close(self) -> None: ...
