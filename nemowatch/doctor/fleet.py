"""`doctor` on a fleet's node: the PostgreSQL ledger can be reached, its schema is one this
nemowatch knows, and which nodes it has seen (docs/fleet.md)."""

from __future__ import annotations

from typing import Any

from nemowatch.config import Config
from nemowatch.doctor.findings import Finding, Status
from nemowatch.errors import NemowatchError


def fleet_ledger_finding(config: Config) -> Finding:
    """Connects once (no waiting out an outage) and reads the nodes; never writes."""
    assert config.ledger is not None
    facts: dict[str, Any] = {"node": config.fleet.name, "lease": config.fleet.lease}
    try:
        from nemowatch.ledgers.postgres import PgStore, shown_url

        facts["database"] = shown_url(config.ledger)
        store = PgStore(config.ledger, password_file=config.fleet.password_file, outage=0.0)
    except ImportError:
        return Finding(
            "ledger",
            Status.PROBLEM,
            "the config names a PostgreSQL ledger, and the fleet extra is not installed",
            fix="pip install 'nemowatch[fleet]'",
            facts=facts,
        )
    except NemowatchError as error:
        return Finding(
            "ledger", Status.PROBLEM, str(error), fix=error.hint or "see docs/fleet.md", facts=facts
        )
    try:
        facts["schema"] = store.schema_version()
        rows = store.execute("SELECT name FROM nodes ORDER BY name").fetchall()
        facts["nodes"] = [row["name"] for row in rows]
    finally:
        store.close()
    seen = ", ".join(facts["nodes"]) or "none yet"
    return Finding(
        "ledger",
        Status.OK,
        f"{facts['database']} answers (schema {facts['schema']}); this node is "
        f"{config.fleet.name}; nodes seen: {seen}",
        facts=facts,
    )
