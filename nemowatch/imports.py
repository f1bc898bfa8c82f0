"""Third-party imports without the parts of them nemowatch never uses.

structlog imports rich whenever rich is installed (for rich tracebacks and pretty-printed
locals), and httpx imports rich, click and pygments (for its command line). nemowatch
formats its own tracebacks (`plain_traceback`, `format_exc_info`) and has no use for
httpx's command line; rich draws only `process`'s progress line on a terminal, and
nemowatch/terminal.py imports it then. Those imports cost every nemowatch process about
70 ms of CPU at start (rich 40, attrs 13 through rich.pretty, click 9, pygments 8): a
command like `status` took 0.45 s, and the test suite starts a few hundred of them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# What structlog and httpx import only for features nemowatch does not use.
UNUSED = ("rich", "click", "pygments")


@contextmanager
def without_unused() -> Iterator[None]:
    """Within the block, importing an `UNUSED` package fails as if it were not installed
    (both libraries then leave out what needs it); one already imported is left alone. Out
    of the block, each imports as usual (uvicorn needs click, the progress line rich)."""
    blocked = [name for name in UNUSED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
