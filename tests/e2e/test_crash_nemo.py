"""The crash scenario of `test_crash.py` on the nemo engine, against the fake NemoVideo:
besides every input ending once, the fake's books show no instruction applied twice and at
most one accepted render per session. `CRASH_SEED=<seed> pytest tests/e2e/test_crash_nemo.py`
repeats a failing kill schedule.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import crash_scenario
from tests.e2e.crash_scenario import seed
from tests.fakes.nemo_server import FakeNemo
from tests.media import Clips

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def fake(clips: Clips, tmp_path: Path) -> Iterator[FakeNemo]:
    video = tmp_path / "rendered.mp4"
    shutil.copy(clips.basic, video)
    # renders take a few polls, so that kills land while one is running
    with crash_scenario.fake_nemo(video) as server:
        yield server


# After the kills, the last daemon may first run a suspect job alone (issue 11's isolation),
# with the others waiting: on a busy machine (the whole suite in four workers) finishing the
# thirty took more than a minute once in six runs (seed 520567: 14 of 30 ended by then,
# every one of them right). The checks are the same; the wait is longer.
@pytest.mark.timeout(300)
def test_thirty_files_survive_ten_random_sigkills_on_the_nemo_engine(
    tmp_path: Path, clips: Clips, fake: FakeNemo
) -> None:
    plan = crash_scenario.Plan(
        seed=seed(), engine="nemo", files=30, kills=10, concurrency=4, finish_timeout=150.0
    )
    outcome = crash_scenario.run(tmp_path / "run", clips, plan, fake=fake)
    assert not outcome.problems, outcome.report()
    assert fake.books.accepted_renders()  # the cloud really rendered
