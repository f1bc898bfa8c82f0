"""The worker pool: N tasks that take job ids from one queue and run them, one at a time
each, while no pause holds.

A job whose rule's inbox is missing is parked (it runs when the inbox is back); a job that
runs out of credits pauses all new work and goes back to the queue, to resume from its
checkpoint when credits are back; a job that must wait for another (a byte-identical file
in progress, `WaitForJob`) is set aside, without a worker, and queued again when that one
ends. A job suspected of crashing the daemon runs alone (crash isolation, see
`nemowatch.crashes`): it waits for the running jobs to end, and no other starts until it
has ended. Stopping: idle workers end at once, busy ones get a grace period to reach a
checkpoint and are cancelled after it (the ledger has the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from nemowatch.daemon.pauses import Pauses
from nemowatch.errors import CreditsExhausted, LeaseLost
from nemowatch.steps import WaitForJob

log = structlog.get_logger("nemowatch.daemon")


class WorkerPool:
    """`run_job(job_id)` does the work; `inbox_of(job_id)` is the inbox of the job's rule
    (None when it has no rule); `alone(job_id)` whether it must run with no other job beside
    it; `on_change()` is called when a worker starts or ends a job."""

    def __init__(
        self,
        run_job: Callable[[str], Awaitable[object]],
        pauses: Pauses,
        *,
        inbox_of: Callable[[str], Path | None],
        alone: Callable[[str], bool] = lambda job_id: False,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._run_job = run_job
        self._pauses = pauses
        self._inbox_of = inbox_of
        self._alone = alone
        self._on_change = on_change
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()  # in the queue or being run: never queued twice
        self._workers: dict[asyncio.Task[None], str | None] = {}  # task -> its job
        self._waiting: dict[str, list[str]] = {}  # job id -> the jobs waiting for it to end
        self._taking = True
        self._freed = asyncio.Event()  # set when a worker ends a job: there is room again
        self._isolated: str | None = None  # the job running alone, or waiting to
        self._turn = asyncio.Condition()  # notified when a job ends or an isolation does

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        return tuple(self._workers)

    @property
    def queued(self) -> int:
        """Jobs waiting in the queue (not those parked on a missing inbox)."""
        return self._queue.qsize()

    @property
    def running(self) -> int:
        return sum(1 for job in self._workers.values() if job is not None)

    @property
    def waiting(self) -> int:
        """Jobs set aside until another job ends (`WaitForJob`)."""
        return sum(len(waiters) for waiters in self._waiting.values())

    def room(self, limit: int) -> int:
        """How many more jobs may be taken on while at most `limit` are in hand: running,
        queued or waiting (not those parked on a missing inbox)."""
        return max(0, limit - self.running - self.queued - self.waiting)

    async def freed(self, timeout: float) -> None:
        """Return when a worker ends a job, or after `timeout` seconds."""
        self._freed.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that comes
        # as the event is set, and a daemon stopped just as a job ended never stopped
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._freed.wait()

    def healthy(self) -> bool:
        """Whether every worker is still running."""
        return all(not task.done() for task in self._workers)

    def enqueue(self, job_id: str) -> None:
        """Queue a job, unless it is queued or running already."""
        if job_id not in self._queued:
            self._queued.add(job_id)
            self._queue.put_nowait(job_id)

    def requeue(self, job_id: str) -> None:
        """Queue a job again that left the queue without finishing (it was parked)."""
        self._queued.discard(job_id)
        self.enqueue(job_id)

    def start(self, count: int, on_ended: Callable[[asyncio.Task[None]], None]) -> None:
        """Start `count` workers; `on_ended(task)` is called when one ends."""
        for _ in range(count):
            task = asyncio.create_task(self._work())
            task.add_done_callback(on_ended)
            self._workers[task] = None

    def stop_taking(self) -> None:
        """Start no new job (a stop has begun); running ones go on."""
        self._taking = False

    async def stop(self, grace_period: float) -> None:
        """End the idle workers; give the busy ones `grace_period` seconds, then cancel."""
        self._taking = False
        busy = [task for task, job in self._workers.items() if job is not None]
        for task, job in self._workers.items():
            if job is None:
                task.cancel()
        if busy:
            _done, pending = await asyncio.wait(busy, timeout=grace_period)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while self._taking:
            await self._pauses.resumed.wait()
            job_id = await self._queue.get()
            if not self._pauses.resumed.is_set():  # paused while this worker waited
                self._queue.put_nowait(job_id)
                continue
            if self._pauses.missing and self._pauses.park(job_id, self._inbox_of(job_id)):
                continue  # runs when the inbox is back
            alone = await self._wait_turn(job_id)
            self._workers[task] = job_id
            self._on_change()
            try:
                await self._run_job(job_id)
            except CreditsExhausted as error:
                self._pauses.out_of_credits(error)
                self.requeue(job_id)  # it resumes from its checkpoint with the credits
                continue
            except LeaseLost:
                pass  # another node adopted it and finishes it (logged by the pipeline)
            except WaitForJob as waiting:
                # stays in `_queued` (never queued twice); queued again when that one ends
                self._waiting.setdefault(waiting.job_id, []).append(job_id)
                continue
            finally:
                self._workers[task] = None
                # its waiters decide again: it may have ended, or be waiting itself
                for waiter in self._waiting.pop(job_id, []):
                    self.requeue(waiter)
                self._freed.set()
                self._on_change()
                async with self._turn:
                    if alone:
                        self._isolated = None
                    self._turn.notify_all()
            self._queued.discard(job_id)

    async def _wait_turn(self, job_id: str) -> bool:
        """Wait until `job_id` may start: after any isolated job; if it must run alone, also
        until no other job runs (and none starts meanwhile). Whether it runs alone."""
        alone = self._alone(job_id)
        async with self._turn:
            await self._turn.wait_for(lambda: self._isolated is None)
            if alone:
                self._isolated = job_id
                log.warning(
                    "job.isolating",
                    job_id=job_id,
                    running=self.running,
                    hint="it was running each time the daemon crashed lately, never alone:"
                    " it runs alone now, to tell whether it is the cause",
                )
                try:
                    await self._turn.wait_for(lambda: self.running == 0)
                except asyncio.CancelledError:
                    self._isolated = None  # stopping before its turn came
                    raise
        return alone
