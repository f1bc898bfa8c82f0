"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest

from nemowatch.ledger import Ledger

# Files whose subject is nemowatch's own work around a render (the pipeline's steps, the
# engine's sessions and restarts, several outputs of one job, sidecars), not what FFmpeg
# makes: they render with the bundled static binary, as the e2e daemons do
# (tests/e2e/conftest.py). Debian's FFmpeg 5.1 costs about 60 ms more CPU at each start
# (200 shared libraries) and these files start it about 150 times: 32 -> 20 s of CPU for
# the four. A test marked `default_ffmpeg` keeps the FFmpeg nemowatch chooses (the
# system's where there is one), so each feature still renders once with it. The files
# about FFmpeg's work (renders, effects, inputs, loudness, analysis, the smart render)
# keep the default choice, and test_local_render.py runs with each accepted FFmpeg.
BUNDLED_FFMPEG_FILES = frozenset(
    {
        "test_local_engine.py",
        "test_pipeline.py",
        "test_pipeline_sidecars.py",
        "test_several_outputs.py",
    }
)


@pytest.fixture(autouse=True)
def bundled_ffmpeg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin $NEMOWATCH_FFMPEG to the bundled binary in `BUNDLED_FFMPEG_FILES`."""
    if request.path.name in BUNDLED_FFMPEG_FILES and not request.node.get_closest_marker(
        "default_ffmpeg"
    ):
        monkeypatch.setenv("NEMOWATCH_FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A fresh ledger in the test's own state folder (a test file may define its own)."""
    ledger = Ledger.in_state_dir(tmp_path / "state")
    yield ledger
    ledger.close()
