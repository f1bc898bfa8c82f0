"""Prometheus metrics: how the daemon's work goes, for `/metrics` (docs/metrics.md).

Two kinds of numbers. What happened is counted as it happens, from the daemon's companion
calls: jobs claimed and ended (by rule and state), their durations and their steps'
(histograms), bytes in and out, failures by kind. What is true now is read when Prometheus
scrapes, by a collector that asks the running daemon: jobs in the ledger by state, the
queue, the pauses, the watcher's health and the latest NemoVideo credits balance.

The registry is this object's own (not prometheus-client's global one), so two daemons in
one process (the tests) keep their own numbers. `exposition()` reads the ledger, whose
SQLite connection belongs to the daemon's event loop thread: call it there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from nemowatch import __version__
from nemowatch.daemon.companions import Companion, Host
from nemowatch.daemon.pauses import Reason
from nemowatch.errors import NemowatchError
from nemowatch.ledger import JobRecord, JobState

log = structlog.get_logger("nemowatch.metrics")

# Seconds from claim to end: a short clip takes seconds, a long render hours.
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
# Seconds of one step (upload, edit, export, download, verify).
STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

# The states a job is in the ledger (detected and settling live only in memory).
LEDGER_STATES = tuple(state for state in JobState if state not in ("detected", "settling"))


class Metrics(Companion):
    """The daemon's metrics: a companion that counts, and `exposition()` for `/metrics`."""

    def __init__(self) -> None:
        # no `_created` gauge beside each counter: a series per label set that dashboards
        # never read (a setting of the library, for the whole process)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self._host: Host | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # outputs being measured
        self.claimed = Counter(
            "nemowatch_jobs_claimed",
            "Files claimed from an inbox, each the start of a job.",
            ["rule"],
            registry=self.registry,
        )
        self.ended = Counter(
            "nemowatch_jobs_ended",
            "Jobs that reached an end: done, failed, skipped, or returned to the inbox.",
            ["rule", "state"],
            registry=self.registry,
        )
        self.failures = Counter(
            "nemowatch_job_failures",
            "Failed jobs by the step they failed in and the kind of error.",
            ["rule", "step", "kind", "retryable"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "nemowatch_job_duration_seconds",
            "Seconds from a job's claim to its end.",
            ["rule", "state"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.steps = Histogram(
            "nemowatch_step_duration_seconds",
            "Seconds a job spent in one step (upload, edit, export, download, verify).",
            ["rule", "step"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "nemowatch_input_bytes",
            "Bytes of the sources of the jobs that ended done.",
            ["rule"],
            registry=self.registry,
        )
        self.bytes_out = Counter(
            "nemowatch_output_bytes",
            "Bytes of the outputs published.",
            ["rule"],
            registry=self.registry,
        )
        self.outputs = Counter(
            "nemowatch_outputs_published",
            "Output files published.",
            ["rule"],
            registry=self.registry,
        )
        self.registry.register(_DaemonCollector(self))
        ProcessCollector(namespace="nemowatch", registry=self.registry)

    # -- the companion ---------------------------------------------------------------

    async def run(self, daemon: Host) -> None:
        self._host = daemon

    def job_claimed(self, record: JobRecord) -> None:
        self.claimed.labels(rule=record.rule).inc()

    def job_ended(self, record: JobRecord) -> None:
        rule, state = record.rule, record.state.value
        self.ended.labels(rule=rule, state=state).inc()
        if record.finished_at is not None:
            self.duration.labels(rule=rule, state=state).observe(
                max(0.0, record.finished_at - record.created_at)
            )
        for step, seconds in record.timings.items():
            self.steps.labels(rule=rule, step=step).observe(max(0.0, seconds))
        if record.state is JobState.FAILED:
            self.failures.labels(
                rule=rule,
                step=failed_step(record),
                kind=record.error_kind or "unknown",
                retryable="true" if record.retryable else "false",
            ).inc()
        if record.state is JobState.DONE:
            self.bytes_in.labels(rule=rule).inc(record.size or record.source_size or 0)
            if record.outputs:
                # a stat may hang on a network share: never on the event loop
                task = asyncio.create_task(self._measure(rule, record.outputs))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _measure(self, rule: str, outputs: list[Path]) -> None:
        sizes = await asyncio.to_thread(_sizes, outputs)
        self.outputs.labels(rule=rule).inc(len(outputs))
        self.bytes_out.labels(rule=rule).inc(sum(sizes))

    async def settled(self) -> None:
        """Wait for the outputs being measured (tests, and a scrape that wants them)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the exposition --------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus's text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def failed_step(record: JobRecord) -> str:
    """The step a failed job was in: its error starts with the state it failed in."""
    state = (record.error or "").split(":", 1)[0]
    return state if state in JobState.__members__.values() else "unknown"


def _sizes(paths: list[Path]) -> list[int]:
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(0)  # moved or deleted since: its bytes were published all the same
    return sizes


class _DaemonCollector(Collector):
    """What is true now, read from the running daemon at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # the families depend on the daemon: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("nemowatch", "The nemowatch version and engine.")
        host = self._metrics._host
        engine = host.config.engine if host is not None else ""
        info.add_metric([], {"version": __version__, "engine": engine})
        yield info
        if host is None:
            return  # not started yet: only the counters
        yield from _ledger_families(host)
        yield _gauge(
            "nemowatch_queue_depth", "Jobs claimed and waiting for a worker.", host.workers.queued
        )
        yield _gauge(
            "nemowatch_jobs_running", "Jobs a worker is running now.", host.workers.running
        )
        yield _gauge(
            "nemowatch_jobs_parked",
            "Jobs held until their missing inbox is back.",
            host.pauses.parked,
        )
        paused = GaugeMetricFamily(
            "nemowatch_paused",
            "1 while new work is held back for this reason.",
            labels=["reason"],
        )
        for reason in Reason:
            paused.add_metric([reason.value], float(reason in host.pauses.reasons))
        yield paused
        yield _gauge(
            "nemowatch_inboxes_missing",
            "Inboxes that are not there (unmounted).",
            len(host.pauses.missing),
        )
        yield _gauge(
            "nemowatch_watcher_healthy",
            "1 while the watcher threads and the job scheduler run.",
            float(host.healthy()),
        )
        credits = host.pauses.credits
        if credits is not None:  # the nemo engine, once its balance was read
            yield _gauge(
                "nemowatch_credits_available", "NemoVideo credits left to spend.", credits.available
            )
            yield _gauge(
                "nemowatch_credits_frozen",
                "NemoVideo credits held for work in progress.",
                credits.frozen,
            )
            if host.pauses.credits_at is not None:
                yield _gauge(
                    "nemowatch_credits_checked_timestamp_seconds",
                    "When the credits balance was last read (Unix time).",
                    host.pauses.credits_at,
                )


def _ledger_families(host: Host) -> Iterator[Metric]:
    try:
        counts = host.ledger.counts()
    except (NemowatchError, sqlite3.Error) as error:
        # the ledger lost: the daemon is stopping; the rest of the metrics still tell
        log.warning("metrics.ledger_unreadable", error=str(error))
        return
    jobs = GaugeMetricFamily(
        "nemowatch_jobs", "Jobs in the ledger by state, now.", labels=["state"]
    )
    for state in LEDGER_STATES:
        jobs.add_metric([state.value], counts.get(state, 0))
    yield jobs


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
