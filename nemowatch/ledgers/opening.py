"""Which ledger a config names: SQLite in `state_dir` (one machine, the default) or the
PostgreSQL database of `ledger:` (a fleet). Commands and the daemon open it here."""

from __future__ import annotations

from nemowatch.config import Config
from nemowatch.errors import StateDirUnwritable
from nemowatch.ledger import Ledger


def open_ledger(config: Config, *, existing: bool = False, daemon: bool = False) -> Ledger:
    """The config's ledger. `existing`: for commands that only look (never a new SQLite
    file). `daemon`: opened by a daemon, which is a node (`fleet.node`): its jobs carry
    its name and, in a fleet, its recovery and writes are its own (`Ledger` docs)."""
    node = config.fleet.name if daemon else None
    if config.ledger is None:
        if existing:
            return Ledger.open_existing(config.state_dir, node=node)
        return Ledger.in_state_dir(config.state_dir, node=node)
    from nemowatch.ledgers.postgres import PgStore  # psycopg: the `fleet` extra

    if not existing:  # the node's own files live there still: its pid file, its doorbell
        try:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StateDirUnwritable(
                f"cannot make the state directory {config.state_dir}: {error.strerror}",
                hint="check that state_dir is writable by the user running nemowatch",
            ) from error

    store = PgStore(
        config.ledger, password_file=config.fleet.password_file, outage=config.fleet.outage
    )
    return Ledger.shared(store, config.state_dir, node=node)
