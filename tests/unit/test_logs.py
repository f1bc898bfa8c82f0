"""The console's readable fields: what `readable` makes of one log line (JSON keeps all)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path, PurePath

import pytest
import structlog

from nemowatch import logs
from nemowatch.logs import number, readable, seconds

INBOX = PurePath("/srv/video/inbox/reels")
OUTBOX = PurePath("/srv/video/outbox/reels")
HOME = PurePath("/home/ana")


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def shown(**fields: object) -> dict[str, object]:
    return readable(fields, folders=(INBOX, OUTBOX), home=HOME)


def test_a_job_line_names_the_job_by_short_id_rule_and_file_in_its_inbox() -> None:
    assert shown(
        event="job.done",
        job_id="a1b2c3d4e5f6",
        rule="reels",
        source="/srv/video/inbox/reels/trip/clip.mp4",
        output="/srv/video/outbox/reels/clip.mp4",
    ) == {"event": "job.done", "job": "[a1b2c3d4 reels] trip/clip.mp4", "output": "clip.mp4"}


def test_durations_are_rounded_with_their_unit() -> None:
    assert shown(seconds=39.6123, duration=10.0, planned_seconds=6.28, wait_s=0.04) == {
        "seconds": "39.6 s",
        "duration": "10 s",
        "planned_seconds": "6.3 s",
        "wait_s": "0 s",
    }


def test_long_durations_read_in_minutes_and_hours() -> None:
    assert [seconds(value) for value in (59.94, 59.96, 125.4, 3599.4, 3720.0)] == [
        "59.9 s",
        "1 min 00 s",
        "2 min 05 s",
        "59 min 59 s",
        "1 h 02 min",
    ]


def test_timings_are_pairs_of_seconds_without_the_negligible_steps() -> None:
    timings = {"claim": 0.003, "edit": 0.076, "export": 39.61, "verify": 0.01}
    assert shown(timings=timings) == {"timings": "(edit=0.1 s, export=39.6 s)"}


def test_byte_counts_are_sizes() -> None:
    assert shown(size=3_141_592, bytes=512, source_size=2_500_000_000) == {
        "size": "3.14 MB",
        "bytes": "512 bytes",
        "source_size": "2.5 GB",
    }


def test_other_floats_have_two_decimals_at_most() -> None:
    assert shown(progress=41.66666, ratio=0.5, available=12.0, count=7) == {
        "progress": "41.67",
        "ratio": "0.5",
        "available": "12",
        "count": "7",
    }
    assert number(-0.001) == "0"


def test_paths_outside_the_folders_start_with_home_or_stay_whole() -> None:
    assert shown(
        path=Path("/home/ana/Videos/raw.mov"),
        state_dir="/var/lib/nemowatch",
        inbox="/srv/video/inbox/reels",
        to="deleted",
    ) == {
        "path": "~/Videos/raw.mov",
        "state_dir": "/var/lib/nemowatch",
        "inbox": "/srv/video/inbox/reels",  # the folder itself, not "."
        "to": "deleted",
    }


def test_no_python_reprs_for_paths_dicts_lists_or_booleans() -> None:
    assert shown(
        inboxes=[PurePath("/srv/video/inbox/reels"), PurePath("/home/ana/in")],
        rules=["reels", "talks"],
        checks={"ffmpeg": True, "disk": False},
        retryable=False,
    ) == {
        "inboxes": "[/srv/video/inbox/reels, ~/in]",
        "rules": "[reels, talks]",
        "checks": "(ffmpeg=yes, disk=no)",
        "retryable": "no",
    }


def test_free_text_is_quoted_on_one_line_and_empty_values_are_left_out() -> None:
    assert shown(
        error="ffmpeg failed:\n  Invalid data\n",
        hint=None,
        warnings=[],
        name="clip.mp4",
        path="/srv/video/inbox/reels/my clip.mp4",
    ) == {
        "error": '"ffmpeg failed: | Invalid data"',
        "name": "clip.mp4",
        "path": '"my clip.mp4"',
    }


def test_the_renderer_keeps_the_event_level_and_time_and_exceptions() -> None:
    fields = {"event": "x", "level": "info", "timestamp": "12:00:00", "exc_info": True}
    assert shown(**fields) == fields


def test_json_lines_keep_every_field_unchanged() -> None:
    stream = io.StringIO()
    logs.configure("info", stream=stream, json=True, folders=[Path(INBOX)])
    structlog.get_logger().info(
        "job.done", source=str(INBOX / "clip.mp4"), seconds=39.6123, timings={"claim": 0.003}
    )
    line = json.loads(stream.getvalue())
    assert (line["source"], line["seconds"], line["timings"]) == (
        str(INBOX / "clip.mp4"),
        39.6123,
        {"claim": 0.003},
    )


def test_the_console_line_is_one_unpadded_sentence() -> None:
    stream = io.StringIO()
    logs.configure("info", stream=stream, json=False, folders=[Path(INBOX), Path(OUTBOX)])
    with structlog.contextvars.bound_contextvars(
        job_id="a1b2c3d4e5f6", rule="reels", source=str(INBOX / "clip.mp4")
    ):
        structlog.get_logger().info("outbox.published", output=OUTBOX / "clip.mp4", seconds=2.345)
    line = stream.getvalue().rstrip("\n")
    assert line.split(" ", 1)[1] == (
        "info  outbox.published [a1b2c3d4 reels] clip.mp4 output=clip.mp4 seconds=2.3 s"
    )
