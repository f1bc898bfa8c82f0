"""Progress: where reports go, how often the ledger and the log hear of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch import progress
from nemowatch.engines.local.ffmpeg import parse_progress_line
from nemowatch.ledger import JobState, Ledger


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger.in_state_dir(tmp_path)
    ledger.create(
        job_id="j1", rule="clips", engine="local", source=tmp_path / "a.mp4", claimed=None
    )
    return ledger


def test_a_report_outside_a_job_goes_nowhere() -> None:
    progress.report("rendering", 50.0)  # no listener: nothing happens, nothing fails


def test_reports_reach_the_listener_from_tasks_and_threads_and_are_clamped() -> None:
    heard: list[tuple[str, float | None]] = []

    async def job() -> None:
        await asyncio.create_task(asyncio.sleep(0, progress.report("analysing")))
        await asyncio.to_thread(progress.report, "rendering", 120.0)

    with progress.reporting(lambda stage, percent: heard.append((stage, percent))):
        asyncio.run(job())
    progress.report("after", 1.0)

    assert heard == [("analysing", None), ("rendering", 100.0)]


def test_the_ledger_hears_a_new_stage_at_once_and_the_same_stage_once_a_second(
    ledger: Ledger,
) -> None:
    clock = Clock()
    listener = progress.JobProgress(ledger, "j1", clock=clock)

    listener("rendering", 10.0)
    clock.now = 0.5
    listener("rendering", 20.0)  # too soon: not written
    assert (ledger.get("j1").stage, ledger.get("j1").percent) == ("rendering", 10.0)
    clock.now = 1.1
    listener("rendering", 30.04)
    assert ledger.get("j1").percent == 30.0  # rounded to a tenth
    clock.now = 1.2
    listener("joining picture and sound", None)  # a new stage: at once
    assert (ledger.get("j1").stage, ledger.get("j1").percent) == ("joining picture and sound", None)


def test_the_log_hears_a_new_stage_and_then_every_ten_seconds(ledger: Ledger) -> None:
    clock = Clock()
    listener = progress.JobProgress(ledger, "j1", clock=clock)

    with capture_logs() as logs:
        for tenth in range(0, 250):  # 25 s of reports, ten a second
            clock.now = tenth / 10
            listener("rendering", tenth / 2.5)

    lines = [
        (entry["stage"], entry["percent"]) for entry in logs if entry["event"] == "job.progress"
    ]
    assert lines == [("rendering", 0), ("rendering", 40), ("rendering", 80)]


def test_an_observer_hears_every_report(ledger: Ledger) -> None:
    heard: list[tuple[str, float | None]] = []
    listener = progress.JobProgress(
        ledger, "j1", observer=lambda stage, percent: heard.append((stage, percent)), clock=Clock()
    )

    for percent in (1.0, 2.0, 3.0):
        listener("rendering", percent)

    assert heard == [("rendering", 1.0), ("rendering", 2.0), ("rendering", 3.0)]


def test_finishing_a_job_clears_its_stage(ledger: Ledger) -> None:
    ledger.progress("j1", "rendering", 55.0)

    done = ledger.transition("j1", JobState.FAILED, error="boom")

    assert (done.stage, done.percent) == (None, None)


@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        ("out_time_us=2500000\n", 2.5),
        ("out_time_us=N/A", None),  # before the first frame
        ("out_time_us=-23220", 0.0),  # audio priming: a little before zero
        ("out_time=00:00:02.500000", None),  # the same, in another key: one is enough
        ("progress=continue", None),
    ],
)
def test_the_output_time_is_read_from_ffmpegs_progress_report(
    line: str, seconds: float | None
) -> None:
    assert parse_progress_line(line) == seconds


def test_a_ledger_that_cannot_be_written_is_said_once_and_fails_nothing(ledger: Ledger) -> None:
    clock = Clock()
    listener = progress.JobProgress(ledger, "j1", clock=clock)
    ledger.close()  # every write now fails

    with capture_logs() as logs:
        for second in range(3):
            clock.now = float(second)
            listener("rendering", second * 10.0)

    assert [entry["event"] for entry in logs].count("progress.not_written") == 1
