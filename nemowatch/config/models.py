"""The config's schema: frozen pydantic models of `config.yaml` and its rules, with their
defaults and shorthands, and which rule takes a file (`rule_for`)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path, PurePath
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Discriminator, Field, SecretStr, Tag, field_validator

from nemowatch import __version__
from nemowatch.config.notify import Notify
from nemowatch.config.targets import OutputTarget
from nemowatch.config.values import parse_size
from nemowatch.rules import EditSpec, ExportSpec, Frozen, matches

# ---- the default `match`: what the engine takes (issue 13) --------------------------------
# The local engine: videos, photos (GIF and WebP may be animated) and sound files.
DEFAULT_MATCH = (
    "*.mp4", "*.mov", "*.m4v", "*.mkv", "*.webm", "*.avi",
    "*.jpg", "*.jpeg", "*.png", "*.gif", "*.webp",
    "*.mp3", "*.wav", "*.m4a", "*.aac", "*.flac", "*.ogg", "*.opus",
)  # fmt: skip
# The nemo engine: the types NemoVideo's upload accepts (engines/formats.py).
NEMO_DEFAULT_MATCH = (
    "*.mp4", "*.mov", "*.avi", "*.webm", "*.mkv",
    "*.jpg", "*.png", "*.gif", "*.webp",
    "*.mp3", "*.wav", "*.m4a", "*.aac",
)  # fmt: skip


def default_match(engine: str) -> tuple[str, ...]:
    """The `match` a rule without one gets under `engine`."""
    return NEMO_DEFAULT_MATCH if engine == "nemo" else DEFAULT_MATCH


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


class BatchMode(StrEnum):
    """What a folder dropped into an inbox becomes (issue 13)."""

    EACH = "each"  # each file its own job and output (the nemo engine: in one session)
    COMBINE = "combine"  # one video of its files in name order (the local engine)


class After(Frozen):
    success: AfterSuccess = AfterSuccess.ARCHIVE
    failure: AfterFailure = AfterFailure.QUARANTINE


# -- several outputs: `outputs` is a template or a list of targets -----------------------
TEMPLATE_TAG, TARGETS_TAG = "template", "targets"  # left out of error paths (messages.py)


def _outputs_form(value: object) -> str:
    return TARGETS_TAG if isinstance(value, list | tuple) else TEMPLATE_TAG


# --------------------------------------------------------------------------------------
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _reject_empty_path(value: object) -> object:
    # pydantic reads "" as Path("."), which would silently mean "the current folder"
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


class Rule(Frozen):
    """One inbox -> outbox mapping with what to do to each file."""

    name: str
    inbox: Path
    outbox: Path
    match: tuple[str, ...] = DEFAULT_MATCH
    ignore: tuple[str, ...] = ()  # extra patterns, on top of DEFAULT_IGNORE
    recursive: bool = False
    # a folder dropped into the inbox (when not `recursive`) is one batch of its files
    batch: BatchMode = BatchMode.EACH
    poll: bool = False  # force polling (network shares, where events do not arrive)
    settle_seconds: float = Field(default=2.0, ge=0.0, le=3600.0)
    instructions: tuple[str, ...] = ()
    # a phrase of `instructions` the local engine does not understand is a config error
    # (exit 78) unless this is true: then `check` warns and the engine ignores the phrase
    allow_unknown_instructions: bool = False
    edit: EditSpec = EditSpec()
    export: ExportSpec = ExportSpec()
    # a file name template, or several outputs (config/targets.py)
    outputs: Annotated[
        Annotated[str, Tag(TEMPLATE_TAG)] | Annotated[tuple[OutputTarget, ...], Tag(TARGETS_TAG)],
        Discriminator(_outputs_form),
    ] = "{stem}.mp4"
    on_conflict: OnConflict = OnConflict.RENAME
    after: After = After()
    reprocess_duplicates: bool = False  # a byte-identical file dropped again is skipped
    report: bool = False  # write <output>.json beside each output: spec, plan, warnings, timings
    # bytes; larger files fail before any work. None: no limit (NemoVideo has its own 500 MB)
    max_size: int | None = Field(default=None, gt=0)
    # notifications for this rule's jobs, instead of the global `notify` (config/notify.py)
    notify: Notify | None = None
    # in a fleet: the nodes (`fleet.node`) that take this rule's files; empty: every node
    nodes: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RULE_NAME.match(value):
            raise ValueError(
                "use letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("inbox", "outbox", mode="before")
    @classmethod
    def _folder(cls, value: object) -> object:
        return _reject_empty_path(value)

    @field_validator("match", "ignore", "instructions", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        # shorthand: `match: "*.mp4"` means a list of one
        return (value,) if isinstance(value, str) else value

    @field_validator("match")
    @classmethod
    def _some_pattern(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one pattern (leave it out for the defaults)")
        return value

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value)

    @property
    def all_ignore(self) -> tuple[str, ...]:
        return DEFAULT_IGNORE + self.ignore


class NemoSettings(Frozen):
    """How to reach the NemoVideo cloud API (`engine: nemo`). The token is never written
    here: it comes from $NEMO_TOKEN, or an anonymous one is requested and kept (mode 0600)
    in the state directory."""

    base_url: str = "https://mega-api-prod.nemovideo.ai"
    # attribution headers: without them the backend refuses exports once free credits end
    skill_source: str = "nemowatch"
    skill_version: str = __version__
    skill_platform: str = "auto"  # "auto": the operating system nemowatch runs on
    language: str = "en"
    request_timeout: float = Field(default=60.0, gt=0.0)  # seconds, one ordinary request
    edit_timeout: float = Field(default=900.0, gt=0.0)  # seconds, one edit's event stream
    # bytes of one line or event of an edit's stream; over it the stream is abandoned
    max_event_bytes: int = Field(default=1 << 20, ge=1024)
    # seconds the draft is watched for an edit whose stream ended without an answer
    landing_window: float = Field(default=300.0, gt=0.0)
    render_deadline: float = Field(default=3600.0, gt=0.0)  # seconds, one render
    credits_check_interval: float = Field(default=300.0, gt=0.0)  # seconds, while paused

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError('expected a URL starting with "https://"')
        return value.rstrip("/")


# ---- the web page (nemowatch/web, docs/http.md) ----------------------------------------
def split_listen(value: str) -> tuple[str, int]:
    """ "127.0.0.1:8765" -> ("127.0.0.1", 8765), "[::1]:8765" -> ("::1", 8765);
    ValueError saying what is expected."""
    host, colon, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError('expected HOST:PORT, e.g. "127.0.0.1:8765"')
    return host, int(port)


class FleetSettings(Frozen):
    """This daemon as one node of a fleet sharing a PostgreSQL `ledger` (docs/fleet.md)."""

    node: str | None = None  # its name in the fleet; unset: the machine's host name
    lease: float = Field(default=120.0, ge=2.0, le=86400.0)  # seconds without a heartbeat
    password_file: Path | None = None  # the database password (else $PGPASSWORD, ~/.pgpass)
    outage: float = Field(default=300.0, ge=0.0)  # seconds to wait for an unreachable database

    @field_validator("node")
    @classmethod
    def _node(cls, value: str | None) -> str | None:
        if value is not None and not RULE_NAME.match(value):
            raise ValueError("use letters, digits, '-', '_' and '.' (a name like render-1)")
        return value

    @property
    def name(self) -> str:
        return self.node or socket.gethostname()


class HttpSettings(Frozen):
    """The daemon's web page and JSON API. Only loopback may listen without `token` or
    `password_file` (`check` refuses the rest)."""

    listen: str = "127.0.0.1:8765"
    # a bearer token (header `Authorization: Bearer ...`, or typed into the login form);
    # never logged, never shown in an error
    token: SecretStr | None = None
    password_file: Path | None = None  # a file holding the login form's password

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        # a number written unquoted is still a token; never echo it in an error
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and len(value.strip()) < 16:
            raise ValueError("too short: use at least 16 characters (`openssl rand -hex 16`)")
        return value

    @field_validator("password_file", mode="before")
    @classmethod
    def _file(cls, value: object) -> object:
        return _reject_empty_path(value)


class Config(Frozen):
    """The daemon's settings and its validated rules."""

    engine: Literal["local", "nemo"] = "local"
    state_dir: Path = Path("~/.local/state/nemowatch")
    concurrency: int = Field(default=2, ge=1, le=64)
    # files claimed beyond `concurrency`, ready for the next free worker; the rest stay in
    # the inbox, for another nemowatch sharing it (or this one, once a worker is free)
    prefetch: int = Field(default=1, ge=0, le=64)
    scan_interval: float = Field(default=300.0, gt=0.0)  # seconds between reconciliation scans
    grace_period: float = Field(default=30.0, ge=0.0)  # seconds running jobs get on stop
    # crashes of the daemon a job may be running for before it is blamed: then it fails if
    # it ran alone in one of them, else it runs alone once and fails if that crashes too (a
    # graceful stop never counts; see crashes.py); NemoVideo requests retry apart (client.py)
    max_attempts: int = Field(default=5, ge=1, le=20)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    rules_dir: Path | None = None
    # the FFmpeg binary for the local engine (a path or a command name); unset: chosen by
    # what it can do ($NEMOWATCH_FFMPEG, the system's, the bundled one)
    ffmpeg: str | None = None
    nemo: NemoSettings = NemoSettings()
    http: HttpSettings | None = None  # the web page: off unless set (or `run --http`)
    # the job ledger: unset, SQLite in state_dir (one machine); postgresql://user@host/db,
    # a database several daemons share (a fleet, `fleet:`); never holds the password
    ledger: str | None = None
    fleet: FleetSettings = FleetSettings()
    rules: tuple[Rule, ...] = ()
    # notifications: a job done or failed, work paused for credits (config/notify.py)
    notify: Notify | None = None
    source: Path | None = None  # the config file this was loaded from
    rule_files: tuple[Path, ...] = ()  # every file the rules came from (watched for edits)

    @field_validator("state_dir", "rules_dir", mode="before")
    @classmethod
    def _folder(cls, value: object) -> object:
        return _reject_empty_path(value)

    @field_validator("ledger")
    @classmethod
    def _ledger(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "a PostgreSQL URL (postgresql://user@host/database); leave it out for the "
                "SQLite ledger in state_dir"
            )
        if parts.password is not None:
            raise ValueError(
                "keep the password out of the config: put it in `fleet.password_file`, "
                "$PGPASSWORD or ~/.pgpass"
            )
        return value

    @field_validator("ffmpeg")
    @classmethod
    def _binary(cls, value: str | None) -> str | None:
        # a path with ~ is the user's; a bare name is looked up on PATH when used
        return os.path.expanduser(value) if value else None


SECRET_FIELDS = ("token", "ledger")  # their values are never shown in an error
INTERNAL_FIELDS = ("source", "rule_files")  # set by load_config, never written by people
TEMPLATE_FIELDS = ("stem", "ext", "rule", "date")  # what an `outputs` template may name


def rule_for(path: PurePath, rules: Sequence[Rule]) -> Rule | None:
    """The first rule whose inbox holds `path` and whose `match` accepts its name.

    A rule that is not recursive only takes files directly inside its inbox.
    """
    for rule in rules:
        try:
            relative = path.relative_to(rule.inbox)
        except ValueError:
            continue
        if len(relative.parts) > 1 and not rule.recursive:
            continue
        if matches(path.name, rule.match) and not matches(path.name, rule.ignore):
            return rule
    return None
