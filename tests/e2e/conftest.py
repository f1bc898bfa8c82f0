"""The end-to-end tests' FFmpeg: the bundled one, except where the FFmpeg is the subject;
and the fake NemoVideo server as most files of many jobs want it (a file that wants other
variants defines its own `fake`)."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from tests.fakes.nemo_server import FakeNemo, Variants
from tests.media import Clips

# The daemons and commands these tests start render with the bundled FFmpeg (a static
# binary): Debian's FFmpeg 5.1 spends about 66 ms of CPU loading its 200 shared libraries
# at every start, against 10 ms, and a local job on the tests' tiny clips starts FFmpeg
# five times, so the system's binary made each job cost 0.99 s of CPU instead of 0.72 s
# (seven of the heaviest e2e files: 157 s of CPU -> 100-106 s). What these tests check
# (each file processed once, crashes, kills, the ledger, the CLI) does not depend on the
# FFmpeg version; what a render holds with each FFmpeg is checked in
# tests/integration/test_local_render.py.
BUNDLED_FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
# Files that keep the FFmpeg nemowatch chooses by itself: burned captions are pictures
# drawn by FFmpeg; the others test the choice itself (and set the variable as they need).
DEFAULT_CHOICE = frozenset({"test_captions.py", "test_doctor.py", "test_ffmpeg_choice.py"})


LOG_TAIL = 25  # lines of each daemon log shown with a failed test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the last lines of the logs its daemons wrote in
    its temporary folder: the one clue a CI run gives of a wait that timed out."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    folder = funcargs.get("tmp_path")
    if report.failed and call.when == "call" and isinstance(folder, Path):
        for log in sorted(folder.rglob("*.log"))[:6]:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            tail = "\n".join(line[:300] for line in lines[-LOG_TAIL:])
            report.sections.append((f"{log.relative_to(folder)} (last lines)", tail))
    return report


@pytest.fixture(autouse=True)
def bundled_ffmpeg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin $NEMOWATCH_FFMPEG (inherited by the daemons) to the bundled binary."""
    if request.path.name not in DEFAULT_CHOICE:
        monkeypatch.setenv("NEMOWATCH_FFMPEG", BUNDLED_FFMPEG)


# The real FFmpeg, its render passes reading their source no faster than `rate` times real
# time (-readrate, FFmpeg 5.0 and later): a render that lasts seconds without spending them.
# Tests that must see a render running (its percent rising, a stop in the middle of it) used
# to upscale their clip to 1080p so the encoder took that long: 5-10 s of CPU each. A pass
# that reports its progress (`-progress`) is a render pass; probes and analyses run as fast
# as they can. FFmpeg 9's (the bundled one) reads at about twice real time when asked for
# more than 5 times: ask for 5 at most.
PACED = """#!/bin/sh
case " $* " in
  *" -progress "*) exec {real} -readrate {rate} "$@" ;;
esac
exec {real} "$@"
"""


@pytest.fixture
def paced_ffmpeg(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Callable[[float], Path]:
    """`paced_ffmpeg(rate)` points $NEMOWATCH_FFMPEG (inherited by the daemons and
    commands the test starts) at the bundled FFmpeg, paced to `rate` times real time."""

    def pace(rate: float) -> Path:
        assert 0 < rate <= 5, "FFmpeg 9 does not read faster than 5 times real time"
        folder = tmp_path_factory.getbasetemp() / "paced-ffmpeg"
        folder.mkdir(exist_ok=True)
        script = folder / f"ffmpeg-x{rate:g}"
        if not script.exists():
            script.write_text(PACED.format(real=shlex.quote(BUNDLED_FFMPEG), rate=f"{rate:g}"))
            script.chmod(0o755)
        monkeypatch.setenv("NEMOWATCH_FFMPEG", str(script))
        return script

    return pace


@pytest.fixture
def fake(clips: Clips, tmp_path: Path) -> Iterator[FakeNemo]:
    """The fake NemoVideo server, rendering at the first poll; no server error allowed."""
    video = tmp_path / "rendered.mp4"
    shutil.copy(clips.basic, video)
    with FakeNemo(video=video, variants=Variants(render_polls=1)) as server:
        yield server
    assert not server.books.server_errors
