"""Pausing one rule: `nemowatch pause --rule NAME`, or the web page's pause button.

Kept in the ledger's control table, beside the pause of all new work (ledger.py), one
entry a rule: `paused_rule:NAME` = the epoch seconds of the pause. The daemon reads them
with the rest of the control table (daemon/housekeeping.py) and claims no new file for a
paused rule: its files wait in the inbox, and are taken when it is resumed. Its jobs
already claimed, and the other rules, go on.
"""

from __future__ import annotations

from nemowatch.ledger import Ledger

_PREFIX = "paused_rule:"


def paused_rules(ledger: Ledger) -> dict[str, float]:
    """The paused rules by name, each with when it was paused (epoch seconds)."""
    paused = {}
    for key, value in ledger.control_values(_PREFIX).items():
        try:
            paused[key.removeprefix(_PREFIX)] = float(value)
        except ValueError:
            paused[key.removeprefix(_PREFIX)] = 0.0  # written by hand: paused all the same
    return paused


def pause_rule(ledger: Ledger, name: str, paused: bool, now: float) -> bool:
    """Pause or resume rule `name`. False when it already was as asked (a pause keeps the
    time it began)."""
    if (name in paused_rules(ledger)) == paused:
        return False
    ledger.set_control(_PREFIX + name, repr(now) if paused else None)
    if not paused:
        ledger.request_scan()  # what waited in its inbox is taken now
    return True
