"""Where the test suite's CPU goes: a pytest plugin that writes each test's CPU time, and a
summary of what it wrote (docs/benchmarks.md, "Test suite time").

    CPU_LOG=/tmp/cpu/run PYTHONPATH=bench /usr/bin/time -f '%e s, %U user, %S sys' \\
        .venv/bin/python -m pytest -q -p suite_cpu
    .venv/bin/python bench/suite_cpu.py /tmp/cpu/run        # the top files and tests

Each test's CPU is getrusage of the worker and of its waited-for children (daemons,
commands, FFmpeg) over its setup, call and teardown, so a daemon a test kills with SIGKILL
is counted only as far as it was waited for. Each worker appends to `$CPU_LOG.<worker>`
(one line a test: node id, CPU s, wall s, the worker's own CPU s), and writes its whole
session's CPU to `$CPU_LOG.<worker>.session`. The sum over the tests leaves out
collection and the workers' start (about 15-25 s for the whole suite): `time` of the
pytest command gives the total.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import time
from collections.abc import Generator
from pathlib import Path

import pytest


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _log() -> Path | None:
    path = os.environ.get("CPU_LOG")
    if not path:
        return None
    return Path(f"{path}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")


_SESSION_START: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION_START.append(_cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    own = _cpu(resource.RUSAGE_SELF)
    children = _cpu(resource.RUSAGE_CHILDREN)
    wall = time.monotonic()
    yield
    own = _cpu(resource.RUSAGE_SELF) - own
    spent = own + _cpu(resource.RUSAGE_CHILDREN) - children
    log = _log()
    if log is not None:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"{item.nodeid}\t{spent:.3f}\t{time.monotonic() - wall:.3f}\t{own:.3f}\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    log = _log()
    if log is not None and _SESSION_START:
        total = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
        log.with_name(log.name + ".session").write_text(f"{total - _SESSION_START[0]:.3f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Sum the CPU a suite_cpu run wrote.")
    parser.add_argument("prefix", type=Path, help="the run's $CPU_LOG")
    parser.add_argument("--top", type=int, default=15, help="how many files and tests")
    arguments = parser.parse_args()
    files: collections.Counter[str] = collections.Counter()
    tests: list[tuple[float, str]] = []
    prefix = arguments.prefix
    logs = [*prefix.parent.glob(prefix.name + ".gw*"), *prefix.parent.glob(prefix.name + ".main")]
    for log in sorted(logs):
        if log.name.endswith(".session"):
            continue
        for line in log.read_text(encoding="utf-8").splitlines():
            node, spent, *_ = line.split("\t")
            files[node.split("::")[0]] += float(spent)
            tests.append((float(spent), node))
    print(f"{len(tests)} tests, {sum(spent for spent, _ in tests):.1f} s of CPU in them")
    for name, spent in files.most_common(arguments.top):
        print(f"{spent:7.1f}  {name}")
    for spent, node in sorted(tests, reverse=True)[: arguments.top]:
        print(f"{spent:7.2f}  {node}")


if __name__ == "__main__":
    main()
