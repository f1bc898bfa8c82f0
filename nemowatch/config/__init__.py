"""Configuration: parse -> expand shorthands -> validate -> frozen objects -> report every error.

`config.yaml` holds daemon settings and rules, inline (`rules:`) or in `rules_dir:` (every
`*.yaml` there holds one rule or a list of rules). Nothing else in nemowatch reads YAML.

The parts: `models` (the schema), `values` (paths and sizes as written), `document` (YAML
with lines), `messages` (pydantic errors in words), `checks` (cross-field checks and
`check`'s warnings), `http` (who may reach the web page), `loading` (`load_config`,
which uses them all).
"""

from nemowatch.config.checks import check_report, outputs_problems
from nemowatch.config.loading import (
    EXAMPLE_CONFIG,
    default_config_path,
    example_config,
    load_config,
    load_default_config,
)
from nemowatch.config.models import (
    DEFAULT_IGNORE,
    DEFAULT_MATCH,
    TEMPLATE_FIELDS,
    WORK_FOLDERS,
    After,
    AfterFailure,
    AfterSuccess,
    BatchMode,
    Config,
    FleetSettings,
    HttpSettings,
    NemoSettings,
    OnConflict,
    Rule,
    rule_for,
)
from nemowatch.config.values import expand_path, format_size, parse_size
from nemowatch.errors import EX_CONFIG  # kept here: `check` and its callers use it

__all__ = [
    "DEFAULT_IGNORE",
    "DEFAULT_MATCH",
    "EXAMPLE_CONFIG",
    "EX_CONFIG",
    "TEMPLATE_FIELDS",
    "WORK_FOLDERS",
    "After",
    "AfterFailure",
    "AfterSuccess",
    "BatchMode",
    "Config",
    "FleetSettings",
    "HttpSettings",
    "NemoSettings",
    "OnConflict",
    "Rule",
    "check_report",
    "default_config_path",
    "example_config",
    "expand_path",
    "format_size",
    "load_config",
    "load_default_config",
    "outputs_problems",
    "parse_size",
    "rule_for",
]
