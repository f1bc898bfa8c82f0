"""What every doctor check returns (`Finding`) and where the checks look (`Machine`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from nemowatch.mounts import read_mountinfo


class Status(StrEnum):
    """How one check came out."""

    OK = "ok"  # works
    NOTE = "note"  # works, but worth knowing
    PROBLEM = "problem"  # something nemowatch needs does not work: see the finding's fix


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: what was looked at, the verdict, and what to do."""

    name: str  # what was checked: "ffmpeg", "inbox /srv/in", "ledger"
    status: Status
    detail: str
    fix: str | None = None  # what to do; always given for a problem
    facts: Mapping[str, Any] = field(default_factory=dict)  # for --json readers


@dataclass(frozen=True)
class Machine:
    """Where the checks look: the environment and the kernel's tables, as parameters."""

    environ: Mapping[str, str]
    mountinfo: str
    inotify_limits: Path = Path("/proc/sys/fs/inotify")
    proc: Path = Path("/proc")
    uid: int = field(default_factory=os.geteuid)

    @classmethod
    def this_one(cls, environ: Mapping[str, str] | None = None) -> Machine:
        return cls(environ=os.environ if environ is None else environ, mountinfo=read_mountinfo())
