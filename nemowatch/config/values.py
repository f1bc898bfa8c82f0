"""Values as people write them in the config: paths with `~` and `$VARS`, sizes such as
"500MB". Pure."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def expand_path(
    value: str | Path, base: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """`~` and `$VARS` expanded; a relative path is taken relative to `base` (the config's folder).

    `environ` defaults to `os.environ`; an unset variable is left as written.
    """
    environ = os.environ if environ is None else environ
    text = str(value)
    if text == "~" or text.startswith("~/"):
        text = (environ.get("HOME") or os.path.expanduser("~")) + text[1:]
    else:
        text = os.path.expanduser(text)  # "~user/..."
    text = VARIABLE.sub(lambda found: environ.get(variable_name(found), found[0]), text)
    expanded = Path(text)
    if not expanded.is_absolute() and base is not None:
        expanded = base / expanded
    return Path(os.path.normpath(expanded))


def variable_name(found: re.Match[str]) -> str:
    return found[1] or found[2]


# Decimal units as disks and cameras count (1 MB = 1,000,000 bytes), binary ones as
# operating systems often show sizes (1 MiB = 1,048,576 bytes).
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(value: object) -> object:
    """A size as written in a rule ("500MB", "2GiB", "1.5 GB", or bytes) in bytes.

    None and plain integers pass through (validation checks their range); anything else
    that is not a size raises ValueError.
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    found = _SIZE.match(value) if isinstance(value, str) else None
    factor = _SIZE_UNITS.get(found[2].lower() or "b") if found else None
    if found is None or factor is None:
        raise ValueError("expected a size such as 500MB, 2GB or 2GiB, or a number of bytes")
    return int(float(found[1]) * factor)


def format_size(size: int) -> str:
    """A byte count for people: "3.1 MB", "512 bytes" (decimal units)."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"
