"""The daemon's worker pool: jobs run once each, no new job starts while a pause holds, a
job whose inbox is missing waits for it, a job out of credits goes back to the queue, and a
job that waits for another is set aside until that one ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nemowatch.daemon.pauses import Pauses, Reason
from nemowatch.daemon.workers import WorkerPool
from nemowatch.errors import CreditsExhausted
from nemowatch.steps import WaitForJob

SHARE = Path("/srv/share")


class Jobs:
    """What the workers run: records each job; raises or waits when told to."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.raises: dict[str, BaseException] = {}
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, job_id: str) -> None:
        self.ran.append(job_id)
        error = self.raises.pop(job_id, None)
        if error is not None:
            raise error
        await self.hold.wait()


def ended(task: asyncio.Task[None]) -> None:
    pass


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def inbox_of(job_id: str) -> Path | None:
    return SHARE if job_id.startswith("share") else None


async def test_each_job_runs_once_even_if_queued_twice() -> None:
    jobs, pauses = Jobs(), Pauses()
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of)
    pool.start(2, ended)
    for job_id in ("a", "b", "a"):
        pool.enqueue(job_id)
    await until(lambda: sorted(jobs.ran) == ["a", "b"] and pool.running == 0)
    await pool.stop(grace_period=1.0)
    assert sorted(jobs.ran) == ["a", "b"]


async def test_no_job_starts_while_paused() -> None:
    jobs, pauses = Jobs(), Pauses()
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of)
    pauses.pause(Reason.OPERATOR)
    pool.start(1, ended)
    pool.enqueue("a")
    await asyncio.sleep(0.1)
    assert jobs.ran == [] and pool.queued == 1
    pauses.unpause(Reason.OPERATOR)
    await until(lambda: jobs.ran == ["a"])
    await pool.stop(grace_period=1.0)


async def test_a_job_on_a_missing_inbox_waits_until_it_is_back() -> None:
    jobs, pauses = Jobs(), Pauses()
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of)
    pauses.inboxes_missing({SHARE})
    pool.start(1, ended)
    pool.enqueue("share-1")
    pool.enqueue("local-1")
    await until(lambda: jobs.ran == ["local-1"] and pauses.parked == 1)
    _back, unparked = pauses.inboxes_missing(set())
    for job_id in unparked:
        pool.requeue(job_id)
    await until(lambda: jobs.ran == ["local-1", "share-1"])
    await pool.stop(grace_period=1.0)


async def test_a_job_out_of_credits_pauses_the_pool_and_runs_again_when_they_are_back() -> None:
    jobs, pauses = Jobs(), Pauses()
    jobs.raises["a"] = CreditsExhausted("no credits left", hint="top up")
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of)
    pool.start(1, ended)
    pool.enqueue("a")
    await until(lambda: pauses.held)
    assert pool.queued == 1 and jobs.ran == ["a"]
    pauses.credits_back(5)
    await until(lambda: jobs.ran == ["a", "a"])
    await pool.stop(grace_period=1.0)


async def test_stopping_gives_a_running_job_its_grace_period_then_cancels_it() -> None:
    jobs, pauses = Jobs(), Pauses()
    jobs.hold.clear()  # the job never reaches its end by itself
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of)
    pool.start(2, ended)
    pool.enqueue("a")
    await until(lambda: pool.running == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pool.stop(grace_period=0.3)
    assert 0.3 <= loop.time() - started < 3
    assert all(task.done() for task in pool.tasks) and pool.running == 0


async def test_a_worker_that_died_makes_the_pool_unhealthy() -> None:
    pool = WorkerPool(Jobs(), Pauses(), inbox_of=inbox_of)
    pool.start(2, ended)
    assert pool.healthy()
    pool.tasks[0].cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not pool.healthy()
    await pool.stop(grace_period=1.0)


async def test_a_job_waiting_for_another_holds_no_worker_and_runs_again_when_it_ends() -> None:
    jobs, pauses = Jobs(), Pauses()
    jobs.hold.clear()  # jobs run until the test lets them end
    jobs.raises["copy"] = WaitForJob("original")
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of)
    pool.start(2, ended)
    for job_id in ("original", "copy", "other"):
        pool.enqueue(job_id)
    # "copy" is set aside: its worker runs "other"
    await until(lambda: pool.running == 2 and pool.waiting == 1)
    assert jobs.ran == ["original", "copy", "other"]
    assert pool.room(4) == 1  # a waiting job is in hand too
    jobs.hold.set()
    await until(lambda: pool.running == 0 and pool.waiting == 0 and pool.queued == 0)
    assert sorted(jobs.ran) == ["copy", "copy", "original", "other"]
    assert pool.room(4) == 4
    await pool.stop(grace_period=1.0)


class HeldJobs:
    """Jobs that run until released one by one; records who ran beside whom."""

    def __init__(self) -> None:
        self.release: dict[str, asyncio.Event] = {}
        self.running: set[str] = set()
        self.beside: dict[str, set[str]] = {}  # job -> the jobs running at some point with it

    async def __call__(self, job_id: str) -> None:
        self.running.add(job_id)
        for other in self.running:
            self.beside.setdefault(other, set()).update(self.running - {other})
        try:
            await self.release.setdefault(job_id, asyncio.Event()).wait()
        finally:
            self.running.discard(job_id)


async def test_a_suspect_job_waits_for_the_running_ones_and_runs_with_no_other() -> None:
    jobs, pauses = HeldJobs(), Pauses()
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of, alone=lambda job_id: job_id == "suspect")
    pool.start(3, ended)
    pool.enqueue("a")
    await until(lambda: jobs.running == {"a"})
    for job_id in ("suspect", "b", "c"):
        pool.enqueue(job_id)
    await asyncio.sleep(0.1)
    assert jobs.running == {"a"}  # the suspect waits for "a"; "b" and "c" wait behind it

    jobs.release.setdefault("a", asyncio.Event()).set()
    await until(lambda: jobs.running == {"suspect"})
    await asyncio.sleep(0.1)
    assert jobs.running == {"suspect"}  # nothing starts beside it

    jobs.release.setdefault("suspect", asyncio.Event()).set()
    await until(lambda: jobs.running == {"b", "c"})
    assert jobs.beside.get("suspect", set()) == set()
    for job_id in ("b", "c"):
        jobs.release[job_id].set()
    await pool.stop(grace_period=1.0)


async def test_stopping_while_a_suspect_waits_for_its_turn_ends_every_worker() -> None:
    jobs, pauses = HeldJobs(), Pauses()
    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of, alone=lambda job_id: job_id == "suspect")
    pool.start(2, ended)
    pool.enqueue("a")
    await until(lambda: jobs.running == {"a"})
    pool.enqueue("suspect")
    await asyncio.sleep(0.05)
    await pool.stop(grace_period=0.1)
    assert all(task.done() for task in pool.tasks) and jobs.running == set()


async def test_a_stop_that_comes_as_a_job_ends_is_not_lost() -> None:
    # The daemon's settle loop waits in `freed`; a stop cancels it. When the cancel comes
    # in the same turn of the event loop as a job's end, it must still end the wait:
    # asyncio.wait_for on Python 3.11 returned the job's end instead, the settle loop went
    # on claiming files and the daemon never stopped (seen in test_restarts.py).
    jobs, pauses = Jobs(), Pauses()
    waiting: list[asyncio.Task[None]] = []

    def stop_as_the_job_ends() -> None:
        if pool.running == 0 and jobs.ran:  # called just after the end is announced
            waiting[0].cancel()

    pool = WorkerPool(jobs, pauses, inbox_of=inbox_of, on_change=stop_as_the_job_ends)
    waiting.append(asyncio.create_task(pool.freed(timeout=30.0)))
    await asyncio.sleep(0)  # it is waiting now
    pool.start(1, ended)
    pool.enqueue("a")

    done, _ = await asyncio.wait(waiting, timeout=5.0)
    await pool.stop(grace_period=1.0)

    assert jobs.ran == ["a"]
    assert done == set(waiting) and waiting[0].cancelled()
