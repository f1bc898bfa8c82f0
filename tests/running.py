"""A real daemon running in the test's own event loop, with the scripted engine and the
companions a test gives (metrics, notifications), stopped when the test is done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from nemowatch.config import Config, Rule
from nemowatch.daemon import Daemon
from nemowatch.daemon.companions import Companion
from nemowatch.engines.base import Engine


async def no_sleep(seconds: float) -> None:
    return None


def one_rule_config(tmp_path: Path, **settings: object) -> Config:
    """A config with one rule, "clips", from tmp_path/in to tmp_path/out."""
    rule = Rule(name="clips", inbox=tmp_path / "in", outbox=tmp_path / "out", settle_seconds=0.2)
    return Config(state_dir=tmp_path / "state", rules=(rule,), **settings)  # type: ignore[arg-type]


@asynccontextmanager
async def running(
    config: Config, engine: Engine, companions: Sequence[Companion]
) -> AsyncIterator[Daemon]:
    """`config`'s daemon, started (its watchers up) and stopped at the end."""
    daemon = Daemon(config, engine=engine, companions=companions)
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: daemon.watcher is not None or task.done())
        yield daemon
    finally:
        daemon.stop()
        await task


async def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
