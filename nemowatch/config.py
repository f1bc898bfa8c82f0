"""Configuration: parse -> expand shorthands -> validate -> frozen objects -> report every error.

`config.yaml` holds daemon settings and rules, inline (`rules:`) or in `rules_dir:` (every
`*.yaml` there holds one rule or a list of rules). Nothing else in nemowatch reads YAML.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError

from nemowatch import __version__
from nemowatch.engines.formats import AUDIO_EXTENSIONS, NEMO_EXTENSIONS
from nemowatch.errors import ConfigError, ConfigProblem, NemowatchError
from nemowatch.language import find_conflicts, interpret, interpret_all
from nemowatch.rules import MOODS, EditSpec, ExportSpec, Frozen, matches

# The example `nemowatch init` writes, inside the package; the repository's
# config.example.yaml is the same file (a test keeps them equal).
EXAMPLE_CONFIG = "data/config.example.yaml"

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


_VARIABLE = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


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
    text = _VARIABLE.sub(lambda found: environ.get(_variable_name(found), found[0]), text)
    expanded = Path(text)
    if not expanded.is_absolute() and base is not None:
        expanded = base / expanded
    return Path(os.path.normpath(expanded))


def _variable_name(found: re.Match[str]) -> str:
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
    poll: bool = False  # force polling (network shares, where events do not arrive)
    settle_seconds: float = Field(default=2.0, ge=0.0, le=3600.0)
    instructions: tuple[str, ...] = ()
    edit: EditSpec = EditSpec()
    export: ExportSpec = ExportSpec()
    outputs: str = "{stem}.mp4"
    on_conflict: OnConflict = OnConflict.RENAME
    after: After = After()
    reprocess_duplicates: bool = False  # a byte-identical file dropped again is skipped
    report: bool = False  # write <output>.json beside each output: spec, plan, warnings, timings
    # bytes; larger files fail before any work. None: no limit (NemoVideo has its own 500 MB)
    max_size: int | None = Field(default=None, gt=0)

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
            raise ValueError("needs at least one pattern (leave it out for the video defaults)")
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
    render_deadline: float = Field(default=3600.0, gt=0.0)  # seconds, one render
    credits_check_interval: float = Field(default=300.0, gt=0.0)  # seconds, while paused

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError('expected a URL starting with "https://"')
        return value.rstrip("/")


class Config(Frozen):
    """The daemon's settings and its validated rules."""

    engine: Literal["local", "nemo"] = "local"
    state_dir: Path = Path("~/.local/state/nemowatch")
    concurrency: int = Field(default=2, ge=1, le=64)
    scan_interval: float = Field(default=300.0, gt=0.0)  # seconds between reconciliation scans
    grace_period: float = Field(default=30.0, ge=0.0)  # seconds running jobs get on stop
    # runs a job gets: one started this often without ending (it keeps stopping or crashing
    # the daemon) fails; each NemoVideo request has its own retries (engines/nemo/client.py)
    max_attempts: int = Field(default=5, ge=1, le=20)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    rules_dir: Path | None = None
    # the FFmpeg binary for the local engine (a path or a command name); unset: chosen by
    # what it can do ($NEMOWATCH_FFMPEG, the system's, the bundled one)
    ffmpeg: str | None = None
    nemo: NemoSettings = NemoSettings()
    rules: tuple[Rule, ...] = ()
    source: Path | None = None  # the config file this was loaded from
    rule_files: tuple[Path, ...] = ()  # every file the rules came from (watched for edits)

    @field_validator("state_dir", "rules_dir", mode="before")
    @classmethod
    def _folder(cls, value: object) -> object:
        return _reject_empty_path(value)

    @field_validator("ffmpeg")
    @classmethod
    def _binary(cls, value: str | None) -> str | None:
        # a path with ~ is the user's; a bare name is looked up on PATH when used
        return os.path.expanduser(value) if value else None


# ---- loading ---------------------------------------------------------------------------------

Loc = tuple[str | int, ...]  # a location in parsed YAML: ("rules", 2, "edit", "aspect")

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"

PATH_SETTINGS = ("state_dir", "rules_dir")  # relative to config.yaml's folder
PATH_RULE_FIELDS = ("inbox", "outbox")  # relative to the folder of the file the rule is in
INTERNAL_FIELDS = ("source", "rule_files")  # set by load_config, never written by people
TEMPLATE_FIELDS = ("stem", "ext", "rule", "date")
# What `outputs` is checked with; `ext` is the source's, so "{stem}.{ext}" is not an MP4 name.
_TEMPLATE_SAMPLE = {"stem": "clip", "ext": "mov", "rule": "reels", "date": "2024-01-31"}

_Model = TypeVar("_Model", bound=BaseModel)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate `path` and its rule files; raise ConfigError listing every problem.

    Paths are expanded (`~`, `$VARS`, relative to the file they are written in);
    `environ` defaults to `os.environ`.
    """
    environ = os.environ if environ is None else environ
    source = Path(os.path.abspath(path))
    problems: list[ConfigProblem] = []
    document = _read_yaml(source, problems)
    if document is None:
        raise ConfigError(problems)
    top = _Origin(str(source), document.lines)
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        shown = _shown(data)
        raise ConfigError(
            [top.problem((), f"expected settings (engine:, rules:, ...), got {shown}")]
        )

    settings_data = {key: value for key, value in data.items() if key != "rules"}
    for key in INTERNAL_FIELDS:
        if key in settings_data:
            del settings_data[key]
            problems.append(top.problem((key,), _unknown_key(key, _allowed_keys(Config, ()))))
    settings_data = _expand_paths(settings_data, PATH_SETTINGS, top, environ, problems)
    settings = _validate(Config, settings_data, top, problems)
    rules_dir = settings_data.get("rules_dir")
    entries, rule_files = _gather_rules(data.get("rules"), rules_dir, top, problems)
    loaded = [rule for rule in (_load_rule(*entry, environ, problems) for entry in entries) if rule]
    problems.extend(_cross_check(loaded))
    engine = settings.engine if settings is not None else data.get("engine", "local")
    if engine == "local":  # the nemo engine reads neither `edit:` nor music in the text
        problems.extend(_music_problems(loaded))

    if problems or settings is None:
        order = {str(file): index for index, file in enumerate([source, *rule_files])}
        problems.sort(key=lambda problem: (order.get(problem.file, -1), problem.line or 0))
        raise ConfigError(problems)
    given = settings.model_fields_set
    return settings.model_copy(
        update={
            "state_dir": settings.state_dir if "state_dir" in given else _default_state(environ),
            "rules": tuple(item.rule for item in loaded),
            "source": source,
            "rule_files": (source, *rule_files),
        }
    )


def check_report(config: Config) -> list[str]:
    """Warnings about a valid config that `check` shows but that do not stop the daemon."""
    warnings = [
        f'rule "{rule.name}": inbox {rule.inbox} does not exist yet; it will be created'
        for rule in config.rules
        if not rule.inbox.exists()
    ]
    for rule in config.rules:
        if "match" not in rule.model_fields_set:
            continue  # the default patterns are videos, which every engine takes
        for pattern in rule.match:
            refused = _refused_kind(pattern, config.engine)
            if refused:
                warnings.append(
                    f'rule "{rule.name}": match pattern "{pattern}" only catches {refused},'
                    f" which the {config.engine} engine cannot edit; such files will fail"
                    ' (match videos instead, e.g. "*.mp4")'
                )
    return warnings


# Pictures FFmpeg reads as still images (image2, *_pipe), which the local engine refuses.
# Not GIF: FFmpeg reads a GIF as a video, and the local engine edits it.
PICTURE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)


def _refused_kind(pattern: str, engine: str) -> str | None:
    """What files `pattern` catches when the engine refuses all of them ("pictures"), else None.

    Only a pattern with a fixed extension can be known to catch nothing the engine takes.
    """
    extension = _extension(pattern.lower())
    if extension is None:
        return None
    if engine == "nemo":
        return None if extension in NEMO_EXTENSIONS else f"{extension} files"
    if extension in PICTURE_EXTENSIONS:
        return f"pictures ({extension})"
    if extension in AUDIO_EXTENSIONS:
        return f"sound files ({extension})"
    return None


def _default_state(environ: Mapping[str, str]) -> Path:
    state_home = environ.get("XDG_STATE_HOME", "")
    # the XDG spec says a relative value is invalid and must be ignored
    if os.path.isabs(state_home):
        return Path(state_home) / "nemowatch"
    return expand_path("~/.local/state/nemowatch", environ=environ)


def default_config_path() -> Path:
    """`$NEMOWATCH_CONFIG`, else `$XDG_CONFIG_HOME/nemowatch/config.yaml`."""
    explicit = os.environ.get("NEMOWATCH_CONFIG")
    if explicit:
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(config_home) / "nemowatch" / "config.yaml"


def example_config(config_path: Path) -> str:
    """The complete, commented example config (the package's copy of the repository's
    config.example.yaml), made to live at `config_path`: its folders beside it (inbox/,
    outbox/, state/) instead of the checkout's demo/."""
    text = (resources.files("nemowatch") / EXAMPLE_CONFIG).read_text(encoding="utf-8")
    folder = f"{config_path.parent}/"
    replacements = {"config.example.yaml": str(config_path), "./demo/": "./", "demo/": folder}
    # one pass, so that a replacement is never replaced again
    return re.sub(
        "|".join(re.escape(old) for old in replacements), lambda found: replacements[found[0]], text
    )


def load_default_config() -> Config:
    """The config at `default_config_path()`; when there is none, an error that says how to
    make one or where else to look."""
    path = default_config_path()
    if path.exists():
        return load_config(path)
    if os.environ.get("NEMOWATCH_CONFIG"):
        source = "named by $NEMOWATCH_CONFIG"
    else:
        source = "the default, as no --config was given and $NEMOWATCH_CONFIG is not set"
    if path.name == "config.yaml":
        make = f"write one with `nemowatch init {path.parent}`"
    else:  # init writes DIR/config.yaml, never another name
        make = "write one with `nemowatch init DIR` and pass --config DIR/config.yaml"
    message = f"no config file here ({source}); {make}, or pass --config FILE"
    raise ConfigError([ConfigProblem(str(path), None, "", message)])


# ---- where things were written ---------------------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    """Where a mapping was written: its file, that file's line map, and how to name it."""

    file: str
    lines: Mapping[Loc, int]
    node: Loc = ()  # the mapping's location inside its file
    shown: Loc = ()  # its location as shown to people, e.g. ("rules", 2)

    def line(self, loc: Loc) -> int | None:
        """The line of `loc`, or of the nearest mapping holding it (a missing key has none)."""
        full = self.node + loc
        for end in range(len(full), -1, -1):
            line = self.lines.get(full[:end])
            if line is not None:
                return line
        return None

    def problem(self, loc: Loc, message: str) -> ConfigProblem:
        return ConfigProblem(self.file, self.line(loc), dotted(self.shown + loc), message)

    def within(self, key: str) -> _Origin:
        """The origin of the mapping under `key` of this one."""
        return replace(self, node=(*self.node, key), shown=(*self.shown, key))

    def where(self, loc: Loc, seen_from: _Origin) -> str:
        """Where `loc` is, said from `seen_from`: "line 4", or "other.yaml:4"."""
        line = self.line(loc)
        if self.file == seen_from.file:
            return f"line {line}"
        return f"{Path(self.file).name}:{line}"


def dotted(loc: Loc) -> str:
    """`("rules", 2, "edit", "aspect")` as `rules[2].edit.aspect`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# ---- YAML with line numbers ------------------------------------------------------------------


@dataclass(frozen=True)
class _Document:
    data: object
    lines: dict[Loc, int]


def _read_yaml(path: Path, problems: list[ConfigProblem]) -> _Document | None:
    """What `yaml.safe_load` gives, plus the 1-based line of every key and list item."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(ConfigProblem(file, None, "", "file not found"))
        return None
    except OSError as exc:
        problems.append(ConfigProblem(file, None, "", f"cannot read: {exc.strerror or exc}"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(ConfigProblem(file, None, "", f"not UTF-8 text: {exc.reason}"))
        return None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        builder = _Builder(loader)
        data = None if root is None else builder.build(root, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context
        if context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            # an unclosed bracket or quote is noticed lines later: say where it began
            context += f" (from line {exc.context_mark.line + 1})"
        what = ", ".join(part for part in (context, exc.problem) if part)
        problems.append(ConfigProblem(file, line, "", f"invalid YAML: {what}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(ConfigProblem(file, None, "", f"invalid YAML: {exc}"))
        return None
    finally:
        loader.dispose()
    return _Document(data, builder.lines)


class _Builder:
    """Plain data from a composed node tree, remembering where each key and item was."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[Loc, int] = {}
        self.open: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def build(self, node: yaml.Node, loc: Loc) -> object:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node)  # safe tags only; others raise
        if node.tag not in (_MAP_TAG, _SEQ_TAG):
            raise ConstructorError(None, None, f"unsupported tag {node.tag}", node.start_mark)
        if id(node) in self.open:
            raise ConstructorError(None, None, "an alias refers to itself", node.start_mark)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, index)) for index, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, loc)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, object]:
        first_lines: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConstructorError(None, None, "a key must be plain text", key_node.start_mark)
            # safe_load keeps the last of two equal keys without a word; here that is a mistake
            if key_node.value in first_lines:
                first = first_lines[key_node.value]
                message = f'duplicate key "{key_node.value}" (first at line {first})'
                raise ConstructorError(None, None, message, key_node.start_mark)
            first_lines[key_node.value] = key_node.start_mark.line + 1
        # merge keys (`<<: *defaults`) are spliced in first, so the mapping's own keys win
        self.loader.flatten_mapping(node)
        pairs = {str(key_node.value): (key_node, value) for key_node, value in node.value}
        result: dict[str, object] = {}
        for key, (key_node, value_node) in pairs.items():
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*loc, key))
        return result


# ---- rules from config.yaml and rules_dir ----------------------------------------------------

_Entry = tuple[object, _Origin]  # a rule as parsed, and where it was written
_RULE_SHAPE = "a rule (a mapping with name:, inbox:, outbox:, ...)"
_RULE_FIELDS = frozenset(Rule.model_fields)
_REQUIRED_RULE_FIELDS = frozenset(
    name for name, field in Rule.model_fields.items() if field.is_required()
)
# Stand-ins for required fields that are missing or wrong, so that the cross-field checks
# can still look at a broken rule's other fields (and report everything in one go).
_PLACEHOLDERS = {"name": "placeholder", "inbox": "/", "outbox": "/"}


@dataclass(frozen=True)
class _Loaded:
    rule: Rule  # for a rule with errors: its valid fields, placeholders for the others
    origin: _Origin
    known: frozenset[str] = _RULE_FIELDS  # the fields that hold what was written (or defaults)

    def knows(self, *fields: str) -> bool:
        return self.known.issuperset(fields)


def _gather_rules(
    inline: object, rules_dir: object, top: _Origin, problems: list[ConfigProblem]
) -> tuple[list[_Entry], list[Path]]:
    """Every rule as parsed (inline ones first) and the rule files read from `rules_dir`."""
    reported = len(problems)
    entries = _inline_rules(inline, top, problems)
    files: list[Path] = []
    has_dir = isinstance(rules_dir, str) and bool(rules_dir.strip())
    if has_dir:
        files = _rule_files(Path(str(rules_dir)), top, problems)
        for file in files:
            entries.extend(_file_rules(file, problems))
    # "no rules" after an unreadable rule source would only be noise
    if not entries and len(problems) == reported:
        if has_dir:
            message = f"no rules: {rules_dir} holds none (add a *.yaml rule file, or rules:)"
            problems.append(top.problem(("rules_dir",), message))
        else:
            problems.append(top.problem((), "no rules: add rules: or rules_dir:"))
    return entries, files


def _inline_rules(value: object, top: _Origin, problems: list[ConfigProblem]) -> list[_Entry]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(top.problem(("rules",), f"expected a list of rules, got {_shown(value)}"))
        return []
    return [
        (item, replace(top, node=("rules", index), shown=("rules", index)))
        for index, item in enumerate(value)
    ]


def _rule_files(folder: Path, top: _Origin, problems: list[ConfigProblem]) -> list[Path]:
    """The rule files in `folder`, sorted by name (none, and a problem, when it is unreadable)."""
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        problems.append(top.problem(("rules_dir",), f"{folder} {reason}"))
        return []
    try:
        children = list(folder.iterdir())
    except OSError as exc:
        problems.append(top.problem(("rules_dir",), f"cannot read {folder}: {exc.strerror}"))
        return []
    return sorted(
        (
            child
            for child in children
            # dotfiles are editors' lock and swap files (".#reels.yaml"), not rules
            if child.suffix.lower() in (".yaml", ".yml")
            and not child.name.startswith(".")
            and child.is_file()
            # `rules_dir: .` beside config.yaml must not read config.yaml as a rule file
            and child != Path(top.file)
        ),
        key=lambda child: child.name,
    )


def _file_rules(file: Path, problems: list[ConfigProblem]) -> list[_Entry]:
    """The rules of one rule file: one rule mapping, or a list of them."""
    document = _read_yaml(file, problems)
    if document is None:
        return []
    origin = _Origin(str(file), document.lines)
    if isinstance(document.data, dict):
        return [(document.data, replace(origin, shown=("rules", 0)))]
    if isinstance(document.data, list):
        return [
            (item, replace(origin, node=(index,), shown=("rules", index)))
            for index, item in enumerate(document.data)
        ]
    shown = _shown(document.data)
    problems.append(origin.problem((), f"expected {_RULE_SHAPE} or a list of rules, got {shown}"))
    return []


def _load_rule(
    data: object, origin: _Origin, environ: Mapping[str, str], problems: list[ConfigProblem]
) -> _Loaded | None:
    if not isinstance(data, dict):
        problems.append(origin.problem((), f"expected {_RULE_SHAPE}, got {_shown(data)}"))
        return None
    data = _expand_paths(data, PATH_RULE_FIELDS, origin, environ, problems)
    edit = data.get("edit")
    music = edit.get("music") if isinstance(edit, dict) else None
    if isinstance(edit, dict) and isinstance(music, str) and music.strip().lower() not in MOODS:
        # a music file or folder, like the folders, is relative to the file it is written in
        data["edit"] = _expand_paths(edit, ("music",), origin.within("edit"), environ, problems)
    try:
        return _Loaded(Rule.model_validate(data), origin)
    except ValidationError as exc:
        errors = exc.errors()
    problems.extend(origin.problem(tuple(error["loc"]), _message(error, Rule)) for error in errors)
    wrong = {error["loc"][0] for error in errors if error["loc"]}
    usable = {key: value for key, value in data.items() if key in _RULE_FIELDS - wrong}
    try:
        partial = Rule.model_validate({**_PLACEHOLDERS, **usable})
    except ValidationError:
        return None  # fields validate one by one, so this is not expected; skip its checks
    unknown = wrong | (_REQUIRED_RULE_FIELDS - usable.keys())
    return _Loaded(partial, origin, _RULE_FIELDS - unknown)


def _expand_paths(
    data: dict[str, Any],
    keys: tuple[str, ...],
    origin: _Origin,
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
) -> dict[str, Any]:
    """`data` with the path values at `keys` expanded, relative to the folder of their file."""
    expanded = dict(data)
    for key in keys:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            continue  # not a path: validation says what is wrong with it
        for found in _VARIABLE.finditer(value):
            if _variable_name(found) not in environ:
                message = f"environment variable {found[0]} is not set"
                problems.append(origin.problem((key,), message))
        expanded[key] = str(expand_path(value, Path(origin.file).parent, environ))
    return expanded


# ---- validation errors, in people's words ----------------------------------------------------


def _validate(
    model: type[_Model], data: dict[str, Any], origin: _Origin, problems: list[ConfigProblem]
) -> _Model | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(origin.problem(loc, _message(error, model)))
        return None


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One pydantic error as a sentence: `expected "low", "medium" or "high", got "hi"`."""
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _allowed_keys(model, loc[:-1]))
    if kind in ("literal_error", "enum"):
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", '"')
        return f"expected {expected}, got {_shown(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {_shown(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, got {_shown(value)}"
    text = error["msg"].removeprefix("Value error, ")
    if text.startswith("Input should be "):
        text = "must be " + text.removeprefix("Input should be ")
    text = text.split(", unable to")[0]  # "..., unable to parse string as an integer"
    return f"{text}, got {_shown(value)}"


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    guess = f'did you mean "{close[0]}"? ' if close else ""
    listing = f" ({guess}allowed: {', '.join(allowed)})" if allowed else ""
    return f'unknown key "{key}"{listing}'


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys of the model found at `loc` inside `model` (list indexes are skipped)."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        nested = [
            candidate
            for candidate in (annotation, *get_args(annotation))
            if isinstance(candidate, type) and issubclass(candidate, BaseModel)
        ]
        if not nested:
            return []
        current = nested[0]
    return [name for name in current.model_fields if name not in INTERNAL_FIELDS]


def _shown(value: object) -> str:
    """A value as a person wrote it in YAML."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


# ---- cross-field checks ----------------------------------------------------------------------


def _cross_check(loaded: list[_Loaded]) -> list[ConfigProblem]:
    """What no single field shows: clashing names, inboxes, outboxes and output names.

    Broken rules take part with the fields they have right, so one run reports everything.
    """
    problems: list[ConfigProblem] = []
    for index, item in enumerate(loaded):
        rule, origin = item.rule, item.origin
        for earlier in loaded[:index]:
            if item.knows("name") and earlier.knows("name") and earlier.rule.name == rule.name:
                where = earlier.origin.where(("name",), origin)
                message = f'duplicate rule name "{rule.name}" (first used at {where})'
                problems.append(origin.problem(("name",), message))
                break
        for earlier in loaded[:index]:
            if not (item.knows("inbox", "match") and earlier.knows("inbox", "match")):
                continue
            overlap = _overlap(earlier.rule.match, rule.match)
            if earlier.rule.inbox == rule.inbox and overlap is not None:
                message = (
                    f'"{overlap[1]}" overlaps "{overlap[0]}" of {_called(earlier, item)}, which'
                    " watches the same inbox; a file would match both (use patterns with"
                    " different extensions, or another inbox)"
                )
                problems.append(origin.problem(("match",), message))
        # one problem per folder is enough: it is the same fix whichever rule it clashes with
        for role in ("outbox", "inbox"):
            clashes = (_folder_clash(item, other, role) for other in [item, *loaded])
            clash_message = next((clash for clash in clashes if clash), None)
            if clash_message:
                problems.append(origin.problem((role,), clash_message))
        if item.knows("outputs"):
            export_format = rule.export.format if item.knows("export") else None
            texts = outputs_problems(rule.outputs, export_format)
            problems.extend(origin.problem(("outputs",), text) for text in texts)
        if item.knows("instructions"):
            problems.extend(_instruction_conflicts(rule.instructions, origin))
    return problems


def _music_problems(loaded: list[_Loaded]) -> list[ConfigProblem]:
    """Music the local engine could not find: a file or folder that does not exist (or holds
    no audio), or a word that is no built-in mood. At run time each job would fail on it."""
    problems = []
    for item in loaded:
        rule, origin = item.rule, item.origin
        if not item.knows("edit", "instructions"):
            continue
        if "music" in rule.edit.model_fields_set:  # `edit:` wins over the text
            if rule.edit.music is not None:
                text = _music_problem(rule.edit.music)
                if text:
                    problems.append(origin.problem(("edit", "music"), text))
            continue
        music = interpret_all(rule.instructions).edit.music
        if music is None:
            continue
        text = _music_problem(music)
        if not text:
            continue
        if not Path(music).expanduser().is_absolute():
            text += (
                "; a path in instructions is taken from the folder nemowatch runs in: write it"
                " in full, or use edit.music, which is relative to this file"
            )
        # the instruction that named it: the last one that names this music by itself
        named = [
            index
            for index, instruction in enumerate(rule.instructions)
            if interpret(instruction).edit.music == music
        ]
        where: Loc = ("instructions", named[-1]) if named else ("instructions",)
        problems.append(origin.problem(where, text))
    return problems


def _music_problem(music: str) -> str | None:
    """Why the local engine would refuse `music` (as it resolves it at run time), or None."""
    from nemowatch.engines.local.music import resolve_music

    path = Path(music).expanduser()
    moods = ", ".join(MOODS)
    if music.strip().lower() not in MOODS and not path.exists():
        if not path.suffix:  # a word, most likely meant as a mood
            return (
                f'"{path.name}" is not a built-in mood ({moods}), and there is no file or'
                f" folder at {path}"
            )
        return f"there is no music file or folder at {path} (or use a built-in mood: {moods})"
    try:
        resolve_music(music, job_id="check")
    except NemowatchError as error:
        return f"{error}; {error.hint}" if error.hint else str(error)
    return None


def _instruction_conflicts(instructions: tuple[str, ...], origin: _Origin) -> list[ConfigProblem]:
    """Instructions of one rule that ask for two values of one setting ("vertical", "16:9").

    Checked whichever engine runs: the contradiction is in what the user asked for.
    """
    return [
        origin.problem(("instructions", conflict.instruction), conflict.message)
        for conflict in find_conflicts(instructions)
    ]


def _folder_clash(item: _Loaded, other: _Loaded, role: str) -> str | None:
    """Why `item`'s outbox is in `other`'s inbox (or inbox in `other`'s outbox), if it is."""
    their_role = "inbox" if role == "outbox" else "outbox"
    if not (item.knows(role) and other.knows(their_role)):
        return None
    mine, theirs = getattr(item.rule, role), getattr(other.rule, their_role)
    if not mine.is_relative_to(theirs) or (mine == theirs and role == "inbox"):
        return None  # (an inbox that is an outbox is reported once, as an outbox problem)
    owner = "its own" if other is item else f"{_called(other, item)}'s"
    where = f"{owner} {their_role}" if mine == theirs else f"inside {owner} {their_role} ({theirs})"
    return f"{mine} is {where}; finished videos would be taken as new footage"


def _called(item: _Loaded, seen_from: _Loaded) -> str:
    """How a message names another rule: by its name, or where it is when the name is wrong."""
    if item.knows("name"):
        return f'rule "{item.rule.name}"'
    return f"the rule at {item.origin.where((), seen_from.origin)}"


def _overlap(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, str] | None:
    """The first pair of patterns (one from each) that could match one name, if any."""
    for one in first:
        for other in second:
            if _patterns_overlap(one.lower(), other.lower()):
                return one, other
    return None


def _patterns_overlap(one: str, other: str) -> bool:
    # Conservative: only patterns whose fixed extensions differ are known to be disjoint.
    if one == other:
        return True
    if not _has_wildcard(one):
        return matches(one, (other,))
    if not _has_wildcard(other):
        return matches(other, (one,))
    one_extension, other_extension = _extension(one), _extension(other)
    if one_extension is None or other_extension is None:
        return True
    return one_extension == other_extension


def _has_wildcard(pattern: str) -> bool:
    return any(character in pattern for character in "*?[")


def _extension(pattern: str) -> str | None:
    """The fixed extension of a glob ("*.mp4" -> ".mp4"), or None when it has none."""
    suffix = PurePosixPath(pattern).suffix
    if not suffix or _has_wildcard(suffix):
        return None
    return suffix


def outputs_problems(template: str, export_format: str | None = "mp4") -> list[str]:
    """What is wrong with an `outputs` template; empty when it is fine.

    The extension is checked against `export_format` unless it is None (not known).
    """
    shown = json.dumps(template, ensure_ascii=False)
    allowed = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"{shown} is not a valid template ({exc}); use {allowed}"]
    pieces: list[str] = []
    for literal, field, spec, conversion in parsed:
        pieces.append(literal)
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            return [f"unknown field {{{field}}} in {shown} (allowed: {allowed})"]
        if spec or conversion:
            return [f"{{{field}}} takes no format or conversion in {shown}"]
        pieces.append(_TEMPLATE_SAMPLE[field])
    name = "".join(pieces)
    relative = PurePosixPath(name)
    problems = []
    if relative.is_absolute():
        problems.append(f"{shown} is absolute; outputs are named inside the outbox")
    elif ".." in relative.parts:
        problems.append(f'{shown} leads out of the outbox (".."); remove the ".."')
    if not relative.name or name.endswith("/"):
        problems.append(f"{shown} names no file")
    elif export_format is not None and not name.lower().endswith(f".{export_format}"):
        problems.append(
            f'{shown} must end in ".{export_format}" (export.format is {export_format}),'
            f' e.g. "{{stem}}-edited.{export_format}"'
        )
    return problems


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
