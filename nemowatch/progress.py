"""What a running job is doing, told by whoever is doing it.

Engines call `report(stage, percent)` while they work ("rendering", 42.0); the pipeline
decides, with `reporting(listener)` around a job, where that goes: `JobProgress` writes it
to the ledger at most about once a second (what `status` and `jobs` show) and logs it every
10 seconds or so, and `nemowatch process` also draws it on a terminal. The listener rides
in a context variable, so it follows the job into the tasks it starts and the threads it
hands work to, and no engine method needs a parameter for it. Outside `reporting`, a
report goes nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

from nemowatch.ledger import Ledger, LedgerError

log = structlog.get_logger("nemowatch.progress")

Listener = Callable[[str, float | None], None]

LEDGER_INTERVAL = 1.0  # seconds between ledger writes of the same stage
LOG_INTERVAL = 10.0  # seconds between log lines of the same stage

_listener: ContextVar[Listener | None] = ContextVar("nemowatch_progress", default=None)


def report(stage: str, percent: float | None = None) -> None:
    """Tell whoever listens that the current job is at `stage`, `percent` (0-100) through
    it, when that is known."""
    listener = _listener.get()
    if listener is not None:
        listener(stage, None if percent is None else min(100.0, max(0.0, percent)))


@contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Send the reports made inside the block (and its tasks) to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class JobProgress:
    """The pipeline's listener for one job: the ledger, the log, and an optional observer."""

    def __init__(
        self,
        ledger: Ledger,
        job_id: str,
        *,
        observer: Listener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._job_id = job_id
        self._observer = observer
        self._clock = clock
        self._stage: str | None = None
        self._written = -LEDGER_INTERVAL
        self._logged = -LOG_INTERVAL
        self._started = clock()
        self._unwritten = False

    def __call__(self, stage: str, percent: float | None) -> None:
        now = self._clock()
        changed = stage != self._stage
        self._stage = stage
        if changed or now - self._written >= LEDGER_INTERVAL:
            self._written = now
            try:
                self._ledger.progress(self._job_id, stage, percent)
            except LedgerError as error:
                # progress is informative: a busy or full disk must not fail the job, but
                # `status` will show an old stage, so say so (once a job)
                if not self._unwritten:
                    self._unwritten = True
                    log.warning("progress.not_written", error=str(error))
        if changed or now - self._logged >= LOG_INTERVAL:
            self._logged = now
            log.info(
                "job.progress",
                stage=stage,
                percent=None if percent is None else round(percent),
                elapsed_s=round(now - self._started, 1),
            )
        if self._observer is not None:
            self._observer(stage, percent)
