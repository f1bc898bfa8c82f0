"""Fixtures shared by every layer of tests. Keep this small."""

from __future__ import annotations

import compileall
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import Clips, accepted_ffmpegs
from tests.pg import PgServer

# Slowest first: the files marked `slow` (most of a minute or more each), then the layers in
# order. An e2e file runs daemons for seconds to a minute per test; a unit file takes a
# second in all. Handed out in this order (`--no-loadscope-reorder`: xdist's default hands
# out the files with the most tests first, which put the few-test, longest e2e files last),
# the long files start while every worker is fresh and the short ones fill the gaps at the
# end, so the workers finish together.
LAYERS = ("e2e", "integration", "unit")


REPOSITORY = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Before the workers start: learn what each FFmpeg can do (`accepted_ffmpegs`, kept
    where the workers read it), and write nemowatch's bytecode once if Python is told not to.

    With PYTHONDONTWRITEBYTECODE set (as on the shared test machine), every `nemowatch` the
    tests start (a few hundred daemons and commands) compiled the package from source again:
    about 0.2 s of CPU each. compileall writes only the files whose source changed; a stale
    one is never used (Python checks the source's time and size), so what runs is the same."""
    if sys.dont_write_bytecode and os.environ.get("PYTEST_XDIST_WORKER") is None:
        for folder in ("nemowatch", "tests"):
            compileall.compile_dir(REPOSITORY / folder, quiet=2)
        _write_rewritten_tests(config)
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        accepted_ffmpegs()  # probed once here, read by each worker (tests/media.py)


def _write_rewritten_tests(config: pytest.Config) -> None:
    """Write pytest's cache of the test files with their asserts rewritten, once, before
    the workers start. Each worker rewrites every test file it collects unless it finds
    that cache, and does not write it either when Python is told not to write bytecode:
    about 3 s of CPU per worker, every run. The cache is keyed by the source's hash, so a
    stale entry is never used. pytest offers no public way to do this: where its private
    helpers are missing or differ, nothing is written and the workers rewrite as before."""
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        for path in sorted((REPOSITORY / "tests").rglob("*.py")):
            if not (path.name.startswith("test_") or path.name == "conftest.py"):
                continue
            cache = rewrite.get_cache_dir(path)
            written = cache / (path.name[:-3] + rewrite.PYC_TAIL)
            if rewrite._read_pyc(path, written, state.trace) is not None:
                continue
            if not rewrite.try_makedirs(cache):
                return
            source_hash, code = rewrite._rewrite_test(path, config)
            rewrite._write_pyc(state, code, source_hash, written)
    except (AttributeError, ImportError, KeyError, OSError, TypeError):
        return


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests slowest first; a stable sort, so each file's tests stay together."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, _layer(item)))


def _layer(item: pytest.Item) -> int:
    folder = item.path.parent.name
    return LAYERS.index(folder) if folder in LAYERS else len(LAYERS)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """The generated clips, made once per run: pytest-xdist's workers share one folder
    (beside their own temporary folders) instead of each making every clip again."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return Clips(tmp_path_factory.mktemp("clips"))
    shared = tmp_path_factory.getbasetemp().parent / "clips"
    shared.mkdir(exist_ok=True)
    return Clips(shared)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of this worker's, started on first use (tests/pg.py)."""
    server = PgServer()
    server.start()
    yield server
    server.remove()
