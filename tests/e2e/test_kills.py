"""Twelve SIGKILLs 1-3 s apart (of work: counted once each daemon is up) cost no good file
anything: each crash counts against the jobs it interrupted only as evidence
(`nemowatch.crashes`), and ten files end with one verified output each (see
`test_restarts.py` for stops and a file that really crashes).

A failure prints the seed: `CRASH_SEED=<seed> pytest tests/e2e/test_kills.py` repeats it.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import crash_scenario
from tests.e2e.crash_scenario import seed
from tests.e2e.harness import Daemon, drop_at_once, rule, write_config
from tests.e2e.test_restarts import every_file_once, finish, logs, ten_files
from tests.fakes.nemo_server import FakeNemo
from tests.media import Clips

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake(clips: Clips, tmp_path: Path) -> Iterator[FakeNemo]:
    video = tmp_path / "rendered.mp4"
    shutil.copy(clips.basic, video)
    # renders take a few polls, so that kills and stops land while jobs run
    with crash_scenario.fake_nemo(video) as server:
        yield server


def test_ten_files_survive_twelve_sigkills_one_to_three_seconds_apart(
    tmp_path: Path, clips: Clips, fake: FakeNemo
) -> None:
    chosen = seed()
    choose = random.Random(chosen)
    config = write_config(
        tmp_path,
        [rule(tmp_path, instructions=["cut out silences"], outputs="{stem}.mp4")],
        engine="nemo",
        # the fake lands an edit at once or never: see crash_scenario.configure
        nemo={"base_url": fake.base_url, "landing_window": 4},
    )  # max_attempts: the default
    dropped = ten_files(tmp_path, clips)
    arrivals = list(dropped.items())
    for number in range(1, 13):
        # two files a cycle over the first five, so that kills find jobs running
        drop_at_once(dict(arrivals[2 * (number - 1) : 2 * number]))
        # 1-3 s of work each time: counted from daemon.started, as starting alone can take
        # that long on a busy machine (a daemon killed as it comes up does no work)
        daemon = Daemon(config, tmp_path / f"daemon-{number:02d}.log").start()
        time.sleep(choose.uniform(1.0, 3.0))
        daemon.kill()
    names = [path.name for path in dropped]
    finish(config, tmp_path, names)
    charged = sum(len(Daemon(config, log).saw("job.crash_counted")) for log in logs(tmp_path))
    assert every_file_once(tmp_path, names, fake) == [], (
        f"seed {chosen}, {charged} crashes charged to jobs"
    )
