"""Loading: parse `config.yaml` and every rule file -> expand paths -> validate -> frozen
`Config`, or one ConfigError listing every problem with its file and line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nemowatch.config.checks import (
    RULE_FIELDS,
    Loaded,
    all_notify_problems,
    cross_check,
    fleet_problems,
    instruction_problems,
    music_problems,
    nemo_batch_problems,
    nemo_targets_problems,
    speech_problems,
    timelines_problems,
    watermark_problems,
)
from nemowatch.config.document import Origin, read_yaml
from nemowatch.config.http import http_problems
from nemowatch.config.messages import (
    allowed_keys,
    as_written,
    error_message,
    unknown_key,
    untagged,
    validate,
)
from nemowatch.config.models import INTERNAL_FIELDS, Config, Rule, default_match
from nemowatch.config.values import VARIABLE, expand_path, variable_name
from nemowatch.errors import ConfigError, ConfigProblem
from nemowatch.rules import MOODS

# The example `nemowatch init` writes, inside the package; the repository's
# config.example.yaml is the same file (a test keeps them equal).
EXAMPLE_CONFIG = "data/config.example.yaml"


PATH_SETTINGS = ("state_dir", "rules_dir")  # relative to config.yaml's folder
PATH_RULE_FIELDS = ("inbox", "outbox")  # relative to the folder of the file the rule is in


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate `path` and its rule files; raise ConfigError listing every problem.

    Paths are expanded (`~`, `$VARS`, relative to the file they are written in);
    `environ` defaults to `os.environ`.
    """
    environ = os.environ if environ is None else environ
    source = Path(os.path.abspath(path))
    problems: list[ConfigProblem] = []
    document = read_yaml(source, problems)
    if document is None:
        raise ConfigError(problems)
    top = Origin(str(source), document.lines)
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        shown = as_written(data)
        raise ConfigError(
            [top.problem((), f"expected settings (engine:, rules:, ...), got {shown}")]
        )

    settings_data = {key: value for key, value in data.items() if key != "rules"}
    for key in INTERNAL_FIELDS:
        if key in settings_data:
            del settings_data[key]
            problems.append(top.problem((key,), unknown_key(key, allowed_keys(Config, ()))))
    settings_data = _expand_paths(settings_data, PATH_SETTINGS, top, environ, problems)
    for section in ("http", "fleet"):  # their password files: relative to config.yaml too
        if isinstance(part := settings_data.get(section), dict):
            within = top.within(section)
            settings_data[section] = _expand_paths(
                part, ("password_file",), within, environ, problems
            )
    settings = validate(Config, settings_data, top, problems)
    if settings is not None and settings.http is not None:
        problems.extend(http_problems(settings.http, top.within("http")))
    rules_dir = settings_data.get("rules_dir")
    entries, rule_files = _gather_rules(data.get("rules"), rules_dir, top, problems)
    loaded = [rule for rule in (_load_rule(*entry, environ, problems) for entry in entries) if rule]
    problems.extend(cross_check(loaded))
    problems.extend(all_notify_problems(settings, loaded, top))
    problems.extend(timelines_problems(loaded))
    if settings is not None:
        problems.extend(fleet_problems(settings, loaded, top))
    engine = settings.engine if settings is not None else data.get("engine", "local")
    if engine == "nemo":  # outputs with their own picture cannot be sent to the service
        problems.extend(nemo_targets_problems(loaded))
        problems.extend(nemo_batch_problems(loaded))
    if engine == "local":  # the nemo engine reads neither `edit:` nor music in the text
        problems.extend(music_problems(loaded))
        problems.extend(speech_problems(loaded, environ))
        problems.extend(watermark_problems(loaded))
        # the same for `check` and `run`: a rule is run only as the local engine reads it
        problems.extend(instruction_problems(loaded))

    if problems or settings is None:
        order = {str(file): index for index, file in enumerate([source, *rule_files])}
        problems.sort(key=lambda problem: (order.get(problem.file, -1), problem.line or 0))
        raise ConfigError(problems)
    given = settings.model_fields_set
    return settings.model_copy(
        update={
            "state_dir": settings.state_dir if "state_dir" in given else _default_state(environ),
            "rules": tuple(_engine_defaults(item.rule, settings.engine) for item in loaded),
            "source": source,
            "rule_files": (source, *rule_files),
        }
    )


def _engine_defaults(rule: Rule, engine: str) -> Rule:
    """`rule` with the `match` of what `engine` takes, when it names none itself."""
    if "match" in rule.model_fields_set:
        return rule
    return rule.model_copy(update={"match": default_match(engine)})


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
    outbox/, state/) instead of the checkout's demo/, and its editor schema too (the
    schema.json `init` writes beside it)."""
    text = (resources.files("nemowatch") / EXAMPLE_CONFIG).read_text(encoding="utf-8")
    folder = f"{config_path.parent}/"
    replacements = {
        "config.example.yaml": str(config_path),
        "./demo/": "./",
        "demo/": folder,
        # the editor's schema: in a checkout the package's copy; beside it, what init writes
        "$schema=nemowatch/data/schema.json": "$schema=schema.json",
    }
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


# ---- rules from config.yaml and rules_dir ----------------------------------------------------

_Entry = tuple[object, Origin]  # a rule as parsed, and where it was written
_RULE_SHAPE = "a rule (a mapping with name:, inbox:, outbox:, ...)"
_REQUIRED_RULE_FIELDS = frozenset(
    name for name, field in Rule.model_fields.items() if field.is_required()
)
# Stand-ins for required fields that are missing or wrong, so that the cross-field checks
# can still look at a broken rule's other fields (and report everything in one go).
_PLACEHOLDERS = {"name": "placeholder", "inbox": "/", "outbox": "/"}


def _gather_rules(
    inline: object, rules_dir: object, top: Origin, problems: list[ConfigProblem]
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


def _inline_rules(value: object, top: Origin, problems: list[ConfigProblem]) -> list[_Entry]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(
            top.problem(("rules",), f"expected a list of rules, got {as_written(value)}")
        )
        return []
    return [
        (item, replace(top, node=("rules", index), shown=("rules", index)))
        for index, item in enumerate(value)
    ]


def _rule_files(folder: Path, top: Origin, problems: list[ConfigProblem]) -> list[Path]:
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
    document = read_yaml(file, problems)
    if document is None:
        return []
    origin = Origin(str(file), document.lines)
    if isinstance(document.data, dict):
        return [(document.data, replace(origin, shown=("rules", 0)))]
    if isinstance(document.data, list):
        return [
            (item, replace(origin, node=(index,), shown=("rules", index)))
            for index, item in enumerate(document.data)
        ]
    shown = as_written(document.data)
    problems.append(origin.problem((), f"expected {_RULE_SHAPE} or a list of rules, got {shown}"))
    return []


def _load_rule(
    data: object, origin: Origin, environ: Mapping[str, str], problems: list[ConfigProblem]
) -> Loaded | None:
    if not isinstance(data, dict):
        problems.append(origin.problem((), f"expected {_RULE_SHAPE}, got {as_written(data)}"))
        return None
    data = _expand_paths(data, PATH_RULE_FIELDS, origin, environ, problems)
    edit = data.get("edit")
    music = edit.get("music") if isinstance(edit, dict) else None
    if isinstance(edit, dict) and isinstance(music, str) and music.strip().lower() not in MOODS:
        # a music file or folder, like the folders, is relative to the file it is written in
        data["edit"] = _expand_paths(edit, ("music",), origin.within("edit"), environ, problems)
    mark = edit.get("watermark") if isinstance(edit, dict) else None
    if isinstance(mark, str | dict):  # so is a watermark image (`watermark: logo.png` too)
        within = origin.within("edit")
        mark = {"file": mark} if isinstance(mark, str) else mark
        expanded = _expand_paths(mark, ("file",), within.within("watermark"), environ, problems)
        data["edit"] = {**data["edit"], "watermark": expanded}
    gram = edit.get("audiogram") if isinstance(edit, dict) else None
    if isinstance(gram, dict):  # and an audiogram's cover picture (issue 13)
        within = origin.within("edit").within("audiogram")
        expanded = _expand_paths(gram, ("cover",), within, environ, problems)
        data["edit"] = {**data["edit"], "audiogram": expanded}
    try:
        return Loaded(Rule.model_validate(data), origin)
    except ValidationError as exc:
        errors = untagged(exc)
    problems.extend(
        origin.problem(tuple(error["loc"]), error_message(error, Rule)) for error in errors
    )
    wrong = {error["loc"][0] for error in errors if error["loc"]}
    usable = {key: value for key, value in data.items() if key in RULE_FIELDS - wrong}
    try:
        partial = Rule.model_validate({**_PLACEHOLDERS, **usable})
    except ValidationError:
        return None  # fields validate one by one, so this is not expected; skip its checks
    unknown = wrong | (_REQUIRED_RULE_FIELDS - usable.keys())
    return Loaded(partial, origin, RULE_FIELDS - unknown)


def _expand_paths(
    data: dict[str, Any],
    keys: tuple[str, ...],
    origin: Origin,
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
) -> dict[str, Any]:
    """`data` with the path values at `keys` expanded, relative to the folder of their file."""
    expanded = dict(data)
    for key in keys:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            continue  # not a path: validation says what is wrong with it
        for found in VARIABLE.finditer(value):
            if variable_name(found) not in environ:
                message = f"environment variable {found[0]} is not set"
                problems.append(origin.problem((key,), message))
        expanded[key] = str(expand_path(value, Path(origin.file).parent, environ))
    return expanded
