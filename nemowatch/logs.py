"""Logging, configured once: a console renderer on a TTY, JSON lines otherwise (journald).

Event names are stable identifiers (`job.claimed`, `render.done`); each job's events carry
`job_id`, `rule` and `source`, bound with `structlog.contextvars` by the pipeline.

JSON lines keep every field in full. The console is for people, so there `readable` turns
each line into something close to a sentence first: the job as `[id rule] file` (the id's
first 8 characters), durations as `39.6 s`, byte counts as `3.1 MB`, paths relative to the
inbox or outbox they are in, floats with two decimals at most, dicts and lists without
Python's quotes and braces.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, Literal, TextIO

from nemowatch.config import format_size
from nemowatch.imports import without_unused

# The first import of structlog in a nemowatch process: without rich (nemowatch/imports.py)
with without_unused():
    import structlog
    from structlog.dev import Column, ConsoleRenderer, plain_traceback
    from structlog.typing import EventDict, WrappedLogger

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

Kind = Literal["seconds", "bytes", "path"]

# Which fields hold what, by name (a dict under such a name holds the same, per key).
_KINDS: dict[str, Kind] = {
    "seconds": "seconds",
    "duration": "seconds",
    "elapsed": "seconds",
    "timings": "seconds",
    "grace_period": "seconds",
    "retry_in": "seconds",
    "size": "bytes",
    "bytes": "bytes",
    "path": "path",
    "source": "path",
    "output": "path",
    "claimed": "path",
    "to": "path",
    "file": "path",
    "folder": "path",
    "inbox": "path",
    "outbox": "path",
    "inboxes": "path",
    "outboxes": "path",
    "config": "path",
}
_SUFFIX_KINDS: tuple[tuple[str, Kind], ...] = (
    ("_s", "seconds"),
    ("_seconds", "seconds"),
    ("_duration", "seconds"),
    ("_size", "bytes"),
    ("_bytes", "bytes"),
    ("_path", "path"),
    ("_dir", "path"),
    ("_folder", "path"),
)

# Left alone: the renderer's own columns, and what it turns into a traceback.
_UNTOUCHED = frozenset({"event", "level", "timestamp", "exc_info", "exception", "stack"})

JOB = "job"  # the field `readable` makes of job_id, rule and source: "[id rule] file"
# Characters of the job id the console shows: enough for `nemowatch retry` and `jobs`,
# which take a unique start of an id (JSON lines have it whole).
SHORT_ID = 8
_JOB_FIELDS = ("job_id", "rule", "source")

# In a dict of seconds (`timings`), steps that took less than this are left out.
_NEGLIGIBLE_SECONDS = 0.05


def readable(
    event_dict: Mapping[str, Any], folders: Sequence[PurePath] = (), home: PurePath | None = None
) -> dict[str, Any]:
    """The fields of one log line as text for people (pure: the console's last step).

    `folders` are the inboxes and outboxes: a path inside one is shown relative to it;
    other paths under `home` start with `~`. Fields without a value (None, empty lists)
    are left out.
    """
    result: dict[str, Any] = {}
    fields = dict(event_dict)
    if "job_id" in fields and JOB not in fields:
        job_id, rule, source = (fields.pop(name, None) for name in _JOB_FIELDS)
        short = str(job_id)[:SHORT_ID]
        tag = f"[{short} {rule}]" if rule is not None else f"[{short}]"
        if source is not None:
            tag += f" {_path(source, folders, home)}"
        result[JOB] = tag
    for key, value in fields.items():
        if key in _UNTOUCHED:
            result[key] = value
            continue
        text = _text(value, _kind(key), folders, home)
        if text is not None:
            result[key] = text
    return result


def _kind(key: str) -> Kind | None:
    if key in _KINDS:
        return _KINDS[key]
    return next((kind for suffix, kind in _SUFFIX_KINDS if key.endswith(suffix)), None)


def _text(
    value: Any, kind: Kind | None, folders: Sequence[PurePath], home: PurePath | None
) -> str | None:
    """One value as text, or None when there is nothing to show."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if kind == "seconds":
            return seconds(value)
        if kind == "bytes" and isinstance(value, int):
            return format_size(value)
        return number(value)
    if isinstance(value, PurePath) or (
        kind == "path" and isinstance(value, str) and value.startswith("/")
    ):
        return _path(value, folders, home)
    if isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            inner = kind or _kind(str(key))
            negligible = (
                inner == "seconds"
                and isinstance(item, int | float)
                and abs(item) < _NEGLIGIBLE_SECONDS
            )
            text = None if negligible else _text(item, inner, folders, home)
            if text is not None:
                parts.append(f"{key}={text}")
        return f"({', '.join(parts)})" if parts else None
    if isinstance(value, list | tuple | set | frozenset):
        items = [_text(item, kind, folders, home) for item in value]
        shown = [item for item in items if item is not None]
        return f"[{', '.join(shown)}]" if shown else None
    if isinstance(value, Enum):
        value = value.value
    return _quoted(str(value))


def seconds(value: float) -> str:
    """A duration for people: "0.7 s", "10 s", "39.6 s", "2 min 05 s", "1 h 02 min"."""
    if not math.isfinite(value) or value < 59.95:
        text = f"{value:.1f}".removesuffix(".0")
        return f"{'0' if text == '-0' else text} s"
    total = round(value)
    if total < 3600:
        minutes, rest = divmod(total, 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(value / 60), 60)
    return f"{hours} h {rest:02d} min"


def number(value: float) -> str:
    """A number with two decimals at most, and no trailing zeros: 6.28, 10, 0.5."""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _path(value: str | PurePath, folders: Sequence[PurePath], home: PurePath | None) -> str:
    path = PurePath(value)
    # the deepest folder first: an outbox may sit inside another rule's folder tree
    for folder in sorted(folders, key=lambda folder: len(folder.parts), reverse=True):
        if path != folder and path.is_relative_to(folder):
            return _quoted(str(path.relative_to(folder)))
    if home is not None and path != home and path.is_relative_to(home):
        return _quoted(f"~/{path.relative_to(home)}")
    return _quoted(str(path))


def _quoted(text: str) -> str:
    """Free text on one line, in double quotes when it has spaces (so `key=` stays clear)."""
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    if not text or any(character.isspace() or character == "=" for character in text):
        return f'"{text}"'
    return text


class Readable:
    """`readable` as a structlog processor, knowing the folders and the home directory."""

    def __init__(self, folders: Sequence[PurePath] = (), home: PurePath | None = None) -> None:
        self.folders = tuple(folders)
        self.home = home

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        return readable(event_dict, self.folders, self.home)


# ANSI styles for a colour terminal.
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_LEVEL_STYLES = {
    "debug": "\x1b[2m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[31;1m",
}


def console_renderer(colors: bool) -> ConsoleRenderer:
    """One line per event: `14:06:17 info  job.done [a1b2c3 clips] talk.mp4 key=value ...`,
    without padding beyond the level's five letters."""

    def styled(style: str, text: str) -> str:
        return f"{style}{text}{_RESET}" if colors and style else text

    def plain(key: str, value: object) -> str:
        return styled(_DIM, str(value))

    def level(key: str, value: object) -> str:
        name = str(value)
        return styled(_LEVEL_STYLES.get(name, ""), f"{name:<5}")

    def event(key: str, value: object) -> str:
        return styled(_BOLD, str(value))

    def job(key: str, value: object) -> str:
        return str(value)

    def pair(key: str, value: object) -> str:
        return f"{styled(_DIM, key + '=')}{value}"

    return ConsoleRenderer(
        columns=[
            Column("timestamp", plain),
            Column("level", level),
            Column("event", event),
            Column(JOB, job),
            Column("", pair),
        ],
        sort_keys=False,  # the event's own order: what it is about comes first
        exception_formatter=plain_traceback,
    )


def configure(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    json: bool | None = None,
    folders: Sequence[Path] = (),
) -> None:
    """Set up structlog for the whole process. `json` defaults to "stream is not a TTY".

    `folders` (the rules' inboxes and outboxes) shorten the paths on the console.
    """
    output = stream if stream is not None else sys.stderr
    if json is None:
        json = not output.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if json:
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        processors += [
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.set_exc_info,
            Readable(folders, home=Path.home()),
            console_renderer(colors=output.isatty()),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger("nemowatch", **initial)
