"""A real job through the console renderer: the lines a person watching `nemowatch run`
on a terminal reads."""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from nemowatch import logs
from nemowatch.config import Rule, load_config
from nemowatch.engines.local import LocalEngine
from nemowatch.files import claim, snapshot
from nemowatch.ledger import JobState, Ledger, new_job_id
from nemowatch.pipeline import Pipeline
from tests.e2e.harness import rule, write_config
from tests.media import Clips

TIMINGS = re.compile(r" timings=\([^)]*\)")
LONG_FLOAT = re.compile(r"\d\.\d{3,}")


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


async def run_job(tmp_path: Path, data: Path | bytes) -> tuple[JobState, list[str]]:
    """Drop `data` in the inbox, claim it as the daemon does, run it; the console lines."""
    config = load_config(
        write_config(tmp_path, [rule(tmp_path, instructions=["cut out silences"])])
    )
    chosen: Rule = config.rules[0]
    source = chosen.inbox / "talk.mp4"
    source.parent.mkdir(parents=True)
    if isinstance(data, Path):
        shutil.copy(data, source)
    else:
        source.write_bytes(data)
    # written a while ago: a failing file is not watched as a copy still under way (2.5 s;
    # tests/integration/test_stalled_copy.py proves that watch)
    written = time.time() - 3600
    os.utime(source, (written, written))
    current = snapshot(source)
    assert current is not None
    stream = io.StringIO()
    logs.configure("debug", stream=stream, json=False, folders=[chosen.inbox, chosen.outbox])
    job_id = new_job_id()
    with Ledger.in_state_dir(config.state_dir) as ledger:
        claimed = claim(source, chosen.inbox, job_id)
        ledger.create(
            job_id=job_id,
            rule=chosen.name,
            engine="local",
            source=source,
            claimed=claimed,
            source_size=current.size,
            source_mtime_ns=current.mtime_ns,
            source_inode=current.inode,
        )
        record = await Pipeline(LocalEngine(), ledger, state_dir=config.state_dir).run(
            job_id, chosen
        )
    return record.state, stream.getvalue().splitlines()


async def test_a_finished_job_logs_short_lines_without_reprs(tmp_path: Path, clips: Clips) -> None:
    state, lines = await run_job(tmp_path, clips.silences)
    assert state is JobState.DONE
    done = next(line for line in lines if " job.done " in line)
    assert "talk.mp4 output=talk.mp4 " in done  # both relative to their folders
    assert str(tmp_path) not in "\n".join(lines)
    for line in lines:
        # how many steps took a tenth of a second or more depends on the machine's load:
        # the timings are held to their own length
        timings = TIMINGS.search(line)
        assert len(TIMINGS.sub("", line)) <= 150, line
        assert timings is None or len(timings.group()) <= 110, line
        assert not LONG_FLOAT.search(line), line
        assert "PosixPath(" not in line and "{'" not in line, line


async def test_a_failed_job_logs_its_error_as_text(tmp_path: Path) -> None:
    state, lines = await run_job(tmp_path, b"not a video " * 400)
    assert state is JobState.FAILED
    failed = next(line for line in lines if " job.failed " in line)
    assert 'error="talk.mp4 is not a readable video' in failed
    assert "retryable=no" in failed
    assert any(" to=failed/talk.mp4" in line for line in lines)
