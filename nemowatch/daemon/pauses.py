"""Why new work may not start: the daemon's three pauses, and the credits poll.

- `operator`: someone ran `nemowatch pause` (the ledger's control table, read by
  housekeeping); `nemowatch resume` lifts it.
- `credits`: NemoVideo has no credits left for this account; lifted by the credits poll
  when the balance is back.
- a missing inbox (an unmounted share): holds only the jobs of the rules on that inbox,
  which are parked until it is back. The other rules go on.
- a paused rule (`nemowatch pause --rule NAME`, nemowatch/rulepause.py): no new file is
  claimed for it until it is resumed; its files wait in the inbox. The other rules go on.

While the operator or credits pause holds, watching goes on and files settle, but none is
claimed and no job starts; running jobs finish (or, out of credits, stop at a checkpoint).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from pathlib import Path

import structlog

from nemowatch.engines.base import Credits
from nemowatch.errors import CreditsExhausted, NemowatchError

log = structlog.get_logger("nemowatch.daemon")


class Reason(StrEnum):
    """What holds all new work back."""

    OPERATOR = "operator"  # `nemowatch pause`, until `nemowatch resume`
    CREDITS = "credits"  # no NemoVideo credits left, until the balance is back


class Pauses:
    """The pauses in force, and the jobs parked on missing inboxes.

    `resumed` is set while no reason holds; `on_resume` is called when the last one is
    lifted (the daemon then rescans: files arrived meanwhile); `on_pause(reason, detail)`
    when a reason begins to hold.
    """

    def __init__(
        self,
        *,
        on_resume: Callable[[], None] = lambda: None,
        on_pause: Callable[[str, str], None] = lambda reason, detail: None,
        credits_recheck: float = 300.0,
    ) -> None:
        self._reasons: set[Reason] = set()
        self._on_resume = on_resume
        self._on_pause = on_pause
        self._credits_recheck = credits_recheck
        self.resumed = asyncio.Event()
        self.resumed.set()
        self._missing: frozenset[Path] = frozenset()
        self._parked: dict[str, Path] = {}  # job id -> its rule's missing inbox
        self._rules_paused: frozenset[str] = frozenset()  # by an operator, one by one
        # the latest balance the credits poll read (None: not read, or a free engine), and
        # when (epoch seconds): the metrics and the web page show it
        self.credits: Credits | None = None
        self.credits_at: float | None = None

    @property
    def reasons(self) -> frozenset[Reason]:
        return frozenset(self._reasons)

    @property
    def held(self) -> bool:
        """Whether some reason holds all new work back."""
        return bool(self._reasons)

    def pause(self, reason: Reason, detail: str = "") -> bool:
        """Hold new work back for `reason`. True if this reason was not already holding it."""
        if reason in self._reasons:
            return False
        self._reasons.add(reason)
        self.resumed.clear()
        self._on_pause(reason.value, detail)
        return True

    def unpause(self, reason: Reason) -> bool:
        """Lift `reason`. True if it was holding new work back."""
        if reason not in self._reasons:
            return False
        self._reasons.discard(reason)
        if not self._reasons:
            self.resumed.set()
            self._on_resume()
        return True

    def by_operator(self, paused: bool) -> None:
        """Follow the operator's wish, as the ledger's control table says it."""
        if paused and self.pause(Reason.OPERATOR, "paused by an operator"):
            log.info(
                "daemon.paused",
                by="operator",
                hint="watching goes on, no new job starts; `nemowatch resume` to continue",
            )
        elif not paused and self.unpause(Reason.OPERATOR):
            log.info("daemon.resumed", by="operator")

    def rules_by_operator(self, names: Iterable[str]) -> None:
        """Follow the operator's wish for single rules (the control table's paused rules)."""
        names = frozenset(names)
        for name in sorted(names - self._rules_paused):
            log.info("rule.paused", rule=name, hint=f"`nemowatch resume --rule {name}`")
        for name in sorted(self._rules_paused - names):
            log.info("rule.resumed", rule=name)
        self._rules_paused = names

    @property
    def rules_paused(self) -> frozenset[str]:
        return self._rules_paused

    def holds(self, rule: str, inbox: Path) -> bool:
        """Whether no new file may be claimed for `rule` (its inbox is missing, or it is
        paused by an operator). The pauses of all work are `held`."""
        return inbox in self._missing or rule in self._rules_paused

    def out_of_credits(self, error: CreditsExhausted) -> None:
        if self.pause(Reason.CREDITS, f"{error}; {error.hint}" if error.hint else str(error)):
            log.warning(
                "credits.exhausted",
                error=str(error),
                hint=error.hint,
                action="new work is paused; every file stays where it is; "
                "nemowatch resumes by itself when credits are back",
                recheck_seconds=self._credits_recheck,
            )

    def credits_back(self, available: float) -> None:
        if Reason.CREDITS in self._reasons:
            log.info("credits.available", available=available)
            self.unpause(Reason.CREDITS)

    # -- missing inboxes ---------------------------------------------------------------

    @property
    def missing(self) -> frozenset[Path]:
        """The inboxes that are not there now: the rules on them are paused."""
        return self._missing

    @property
    def parked(self) -> int:
        """How many jobs wait for their inbox to be back."""
        return len(self._parked)

    def park(self, job_id: str, inbox: Path | None) -> bool:
        """Hold `job_id` back if `inbox` (its rule's) is missing. True if it was parked."""
        if inbox is None or inbox not in self._missing:
            return False
        self._parked[job_id] = inbox
        return True

    def inboxes_missing(self, missing: Iterable[Path]) -> tuple[frozenset[Path], list[str]]:
        """The inboxes missing now: those back since the last call, and the jobs parked on
        them, which may run again (they are no longer parked)."""
        missing = frozenset(missing)
        back = self._missing - missing
        self._missing = missing
        unparked = [job for job, inbox in self._parked.items() if inbox in back]
        for job_id in unparked:
            del self._parked[job_id]
        return back, unparked

    def describe(self) -> str:
        """The pauses for the status line: "" when none holds."""
        text = ""
        if Reason.OPERATOR in self._reasons:
            text += "; paused (nemowatch resume to continue)"
        if Reason.CREDITS in self._reasons:
            text += "; paused: out of NemoVideo credits"
        if self._rules_paused:
            text += f"; paused rules: {', '.join(sorted(self._rules_paused))}"
        if self._missing:
            count = len(self._missing)
            text += f"; {count} inbox{'es' if count != 1 else ''} missing"
        return text


async def poll_credits(
    balance: Callable[[], Awaitable[Credits | None]],
    pauses: Pauses,
    *,
    interval: float,
    wall: Callable[[], float] = time.time,
) -> None:
    """Check the balance (the engine's `credits`) before work starts, and again every
    `interval` seconds: pause when none is left, resume when it is back. Returns at once
    for an engine that costs nothing (its balance is None)."""
    while True:
        try:
            credits = await balance()
        except CreditsExhausted as error:
            pauses.out_of_credits(error)
        except NemowatchError as error:
            log.warning("credits.unknown", error=str(error))
        else:
            if credits is None:
                return  # this engine costs nothing
            pauses.credits, pauses.credits_at = credits, wall()
            if credits.available > 0:
                pauses.credits_back(credits.available)
            else:
                pauses.out_of_credits(
                    CreditsExhausted("no credits left", hint=top_up_hint(credits))
                )
        await asyncio.sleep(interval)


def top_up_hint(credits: Credits) -> str:
    if credits.anonymous and credits.user_id:
        return (
            "register to get more credits and keep this work: "
            f"https://nemovideo.com/register?bind={credits.user_id}"
        )
    return "top up your NemoVideo credits"
