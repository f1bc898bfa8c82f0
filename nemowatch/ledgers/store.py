"""What the ledger writes through: a database it can `execute` SQL on and open a
`transaction` in (`ledgers.sqlite.SqliteStore`, `ledgers.postgres.PgStore`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


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
    returning: str  # appended to an UPDATE to have the row back: no read after it
    where: str  # for messages: the file, or the database's URL without a password

    def write(self, sql: str, params: Sequence[Any] = (), /) -> Rows: ...  # one, atomic
    def transaction(self) -> AbstractContextManager[Executor]: ...
    def patiently(self, work: Callable[[], T]) -> T: ...
    def close(self) -> None: ...


class HasStore(Protocol):
    _db: Store


S = TypeVar("S", bound=HasStore)


def patient(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """A ledger write done again, whole, while its database cannot be reached (the
    transaction was rolled back); see `PgStore.patiently`. SQLite: done once."""

    @functools.wraps(method)
    def again(ledger: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return ledger._db.patiently(lambda: method(ledger, *args, **kwargs))

    return again
