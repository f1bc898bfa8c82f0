"""`/metrics`: the exposition parses as Prometheus text, and its counters move as a real
daemon (the scripted engine) finishes jobs."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from nemowatch import __version__
from nemowatch.engines.base import Credits
from nemowatch.errors import (
    EngineError,
    MediaError,
    NemowatchError,
    RateLimited,
    SessionLost,
    SidecarError,
    kind,
)
from nemowatch.ledger import JobState
from nemowatch.metrics import Metrics
from tests.e2e.harness import drop
from tests.fakes.scripted_engine import ScriptedEngine
from tests.media import Clips
from tests.running import no_sleep, one_rule_config, running, wait_until


class PaidEngine(ScriptedEngine):
    """The scripted engine with a balance, as the nemo engine has."""

    async def credits(self) -> Credits | None:
        return Credits(available=42.5, frozen=1.5)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels, parsed as Prometheus does."""
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def ended(metrics: Metrics, state: str) -> float:
    return value(samples(metrics), "nemowatch_jobs_ended_total", rule="clips", state=state)


def test_before_the_daemon_starts_the_exposition_parses_with_the_counters_only() -> None:
    found = samples(Metrics())
    names = {name for name, _ in found}
    assert ("nemowatch_info", frozenset({("version", __version__), ("engine", "")})) in found
    assert "nemowatch_jobs" not in names  # no ledger to read yet
    assert "process_cpu_seconds_total" not in names  # namespaced: nemowatch_process_...


async def test_counters_move_as_jobs_end_and_gauges_tell_the_daemon_now(
    tmp_path: Path, clips: Clips
) -> None:
    config = one_rule_config(tmp_path)
    metrics = Metrics()
    engine = PaidEngine(clips.basic, 3.0, sleep=no_sleep)
    async with running(config, engine, [metrics]) as daemon:
        found = samples(metrics)
        assert value(found, "nemowatch_jobs_ended_total", rule="clips", state="done") == 0
        assert value(found, "nemowatch_watcher_healthy") == 1
        assert value(found, "nemowatch_credits_available") == 42.5
        assert value(found, "nemowatch_credits_frozen") == 1.5

        source = drop(config.rules[0].inbox / "a.mp4", clips.basic)
        size = source.stat().st_size
        await wait_until(lambda: ended(metrics, "done") == 1)
        await metrics.settled()
        [done] = daemon.ledger.jobs(JobState.DONE)
        assert done.output is not None
        found = samples(metrics)
        assert value(found, "nemowatch_jobs_claimed_total", rule="clips") == 1
        assert value(found, "nemowatch_jobs_ended_total", rule="clips", state="done") == 1
        assert value(found, "nemowatch_jobs", state="done") == 1
        assert value(found, "nemowatch_input_bytes_total", rule="clips") == size
        assert value(found, "nemowatch_output_bytes_total", rule="clips") == (
            done.output.stat().st_size
        )
        assert value(found, "nemowatch_outputs_published_total", rule="clips") == 1
        count = value(found, "nemowatch_job_duration_seconds_count", rule="clips", state="done")
        assert count == 1
        for step in ("upload", "edit", "export", "download", "verify"):
            assert (
                value(found, "nemowatch_step_duration_seconds_count", rule="clips", step=step) == 1
            )

        engine.cue("export", EngineError("the render was refused"))
        drop(config.rules[0].inbox / "b.mp4", clips.no_audio)
        await wait_until(lambda: ended(metrics, "failed") == 1)
        found = samples(metrics)
        assert value(found, "nemowatch_jobs_claimed_total", rule="clips") == 2
        assert value(found, "nemowatch_jobs_ended_total", rule="clips", state="failed") == 1
        assert value(found, "nemowatch_jobs_ended_total", rule="clips", state="done") == 1
        assert (
            value(
                found,
                "nemowatch_job_failures_total",
                rule="clips",
                step="exporting",
                kind="engine",
                retryable="false",
            )
            == 1
        )
        assert value(found, "nemowatch_jobs", state="failed") == 1
        assert value(found, "nemowatch_input_bytes_total", rule="clips") == size  # done only
        assert value(found, "nemowatch_queue_depth") == 0
        assert value(found, "nemowatch_paused", reason="operator") == 0


def test_an_errors_kind_is_its_class_in_snake_case_without_error() -> None:
    assert kind(EngineError("x")) == "engine"
    assert kind(MediaError("x")) == "media"
    assert kind(SidecarError([])) == "sidecar"
    assert kind(RateLimited("x")) == "rate_limited"
    assert kind(SessionLost("x")) == "session_lost"
    assert kind(NemowatchError("x")) == "nemowatch"
