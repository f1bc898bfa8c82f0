"""Configuration: parse -> expand shorthands -> validate -> frozen objects -> report every error.

`config.yaml` holds daemon settings and rules, inline (`rules:`) or in `rules_dir:` (every
`*.yaml` there holds one rule or a list of rules). Nothing else in nemowatch reads YAML.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from nemowatch.rules import EditSpec, ExportSpec, Frozen

EX_CONFIG = 78  # sysexits.h: configuration error; systemd's RestartPreventExitStatus uses it

DEFAULT_MATCH = ("*.mp4", "*.mov", "*.m4v", "*.mkv", "*.webm", "*.avi")

# Names people's tools give files that are still being written, and OS litter.
DEFAULT_IGNORE = (
    ".*",
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.tmp",
    "~$*",
    "Thumbs.db",
    "desktop.ini",
    ".DS_Store",
)

# The daemon's own folders inside each inbox; never watched, never matched.
WORK_FOLDERS = ("processing", "done", "failed")


class OnConflict(StrEnum):
    RENAME = "rename"  # keep both: "name (2).mp4"
    OVERWRITE = "overwrite"  # replace the existing output
    SKIP = "skip"  # keep the existing output, discard the new one


class AfterSuccess(StrEnum):
    ARCHIVE = "archive"  # move the source to done/YYYY-MM-DD/
    KEEP = "keep"  # leave the source where it was dropped
    DELETE = "delete"  # delete the source (only after the output is published)


class AfterFailure(StrEnum):
    QUARANTINE = "quarantine"  # move the source to failed/ beside <name>.error.json
    KEEP = "keep"  # leave the source where it was dropped (error.json still in failed/)


class After(Frozen):
    success: AfterSuccess = AfterSuccess.ARCHIVE
    failure: AfterFailure = AfterFailure.QUARANTINE


RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def expand_path(value: str | Path, base: Path | None = None) -> Path:
    """`~` and `$VARS` expanded; a relative path is taken relative to `base` (the config's folder)."""
    expanded = Path(os.path.expandvars(os.path.expanduser(str(value))))
    if not expanded.is_absolute() and base is not None:
        expanded = base / expanded
    return Path(os.path.normpath(expanded))


class Rule(Frozen):
    """One inbox -> outbox mapping with what to do to each file."""

    name: str
    inbox: Path
    outbox: Path
    match: tuple[str, ...] = DEFAULT_MATCH
    ignore: tuple[str, ...] = ()  # extra patterns, on top of DEFAULT_IGNORE
    recursive: bool = False
    poll: bool = False  # force polling (network shares, where events do not arrive)
    settle_seconds: float = Field(default=2.0, ge=0.0, le=3600.0)
    instructions: tuple[str, ...] = ()
    edit: EditSpec = EditSpec()
    export: ExportSpec = ExportSpec()
    outputs: str = "{stem}.mp4"
    on_conflict: OnConflict = OnConflict.RENAME
    after: After = After()
    reprocess_duplicates: bool = False  # a byte-identical file dropped again is skipped

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RULE_NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @property
    def all_ignore(self) -> tuple[str, ...]:
        return DEFAULT_IGNORE + self.ignore


class Config(Frozen):
    """The daemon's settings and its validated rules."""

    engine: Literal["local", "nemo"] = "local"
    state_dir: Path = Path("~/.local/state/nemowatch")
    concurrency: int = Field(default=2, ge=1, le=64)
    scan_interval: float = Field(default=300.0, gt=0.0)  # seconds between reconciliation scans
    grace_period: float = Field(default=30.0, ge=0.0)  # seconds running jobs get on stop
    max_attempts: int = Field(default=3, ge=1, le=20)  # per job, for retryable failures
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    rules_dir: Path | None = None
    rules: tuple[Rule, ...] = ()
    source: Path | None = None  # the config file this was loaded from
    rule_files: tuple[Path, ...] = ()  # every file the rules came from (watched for edits)


def load_config(path: Path) -> Config:
    """Load and validate `path` and its rule files; raise ConfigError listing every problem."""
    raise NotImplementedError


def default_config_path() -> Path:
    """`$NEMOWATCH_CONFIG`, else `$XDG_CONFIG_HOME/nemowatch/config.yaml`."""
    explicit = os.environ.get("NEMOWATCH_CONFIG")
    if explicit:
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(config_home) / "nemowatch" / "config.yaml"
