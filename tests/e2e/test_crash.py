"""The daemon SIGKILLed at random moments, ten times and more, and restarted each time:
every input still ends up processed exactly once (or failed with a report), nothing is
lost, nothing half-written is ever visible, and the ledger agrees with the folders.

The scenario lives in `tests/e2e/crash_scenario.py`; `bench/crash.py` runs it longer. This
file runs it on the local engine, `test_crash_nemo.py` on the nemo engine (files of their
own so that parallel workers run them side by side), and `test_crash_windows.py` puts the
folders and ledger into the narrow windows random kills seldom hit. A failure prints the
seed and each kill: `CRASH_SEED=<seed> pytest tests/e2e/test_crash.py` repeats the same
kill schedule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import crash_scenario
from tests.e2e.crash_scenario import seed
from tests.media import Clips

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_thirty_files_survive_ten_random_sigkills_on_the_local_engine(
    tmp_path: Path, clips: Clips
) -> None:
    plan = crash_scenario.Plan(seed=seed(), engine="local", files=30, kills=10)
    outcome = crash_scenario.run(tmp_path / "run", clips, plan)
    assert not outcome.problems, outcome.report()
