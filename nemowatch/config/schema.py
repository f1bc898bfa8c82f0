"""The JSON Schema of config and rule files (`nemowatch schema`), made from the models.

Pydantic describes the form the models validate; people write shorthands that the
validators expand first (`match: "*.mp4"`, `title: "Hi"`, `cut_silences: true`,
`max_size: 500MB`, `music_volume: 35%`, `denoise: light`, `watermark: logo.png`,
`fade_out: true`, `loop: false`, and an unquoted `aspect: 16:9`, which YAML 1.1 reads as
the number 969). So the generated schema is completed here, as data:

- SHORTHANDS: each field's written forms, offered beside its own schema (`anyOf`);
- PATTERNS: the checks validators make in code that a schema can state (rule names);
- DESCRIPTIONS: what each setting does, with examples, for editors to show.

What only `check` can tell (a file that must exist, two rules sharing an inbox, a phrase
the local engine does not understand) is not in the schema: see tests/unit/test_schema.py.
The package ships the result (data/schema.json for config files, data/rule.schema.json for
rule files in `rules_dir`); a test keeps the shipped files equal to what this makes.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

from nemowatch.config.models import INTERNAL_FIELDS, RULE_NAME, Config
from nemowatch.config.targets import TARGET_NAME
from nemowatch.rules import DENOISE_STRENGTHS

DIALECT = "http://json-schema.org/draft-07/schema#"  # what editors' YAML servers read best
CONFIG_SCHEMA = "data/schema.json"  # inside the package
RULE_SCHEMA = "data/rule.schema.json"

# percentages within the fields' ranges: music_volume 0 to 1 (100 %), volume 0 to 8 (800 %)
_UP_TO_100_PERCENT = {"type": "string", "pattern": r"^\s*(100(\.0+)?|\d{1,2}(\.\d+)?)\s*%\s*$"}
_UP_TO_800_PERCENT = {
    "type": "string",
    "pattern": r"^\s*(800(\.0+)?|[0-7]?\d{1,2}(\.\d+)?)\s*%\s*$",
}
# YAML 1.1 reads an unquoted 16:9 as 16*60+9; the loader turns it back into "16:9"
_SEXAGESIMAL_ASPECTS = {"type": "integer", "enum": [16 * 60 + 9, 9 * 60 + 16, 61, 4 * 60 + 5]}

# YAML 1.1 (which nemowatch reads) takes these words for true and false; editors often
# read YAML 1.2, where they are text: offered beside each yes/no setting so neither flags them
YAML_BOOLEAN_WORDS = {
    "enum": [
        word
        for base in ("yes", "no", "on", "off", "true", "false")
        for word in (base, base.capitalize(), base.upper())
    ]
}

# (model, field) -> the shorthands it takes besides its own form
SHORTHANDS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("Rule", "match"): [{"type": "string"}],
    ("Rule", "ignore"): [{"type": "string"}],
    ("Rule", "instructions"): [{"type": "string"}],
    ("Notify", "events"): [{"enum": ["done", "failed", "paused"]}],
    ("Notify", "urls"): [{"type": "string"}],
    ("Rule", "max_size"): [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]|[bB])?\s*$"}
    ],
    ("EditSpec", "cut_silences"): [{"type": "boolean"}],
    ("EditSpec", "captions"): [{"type": "boolean"}],
    ("EditSpec", "remove_fillers"): [{"type": "boolean"}],
    ("EditSpec", "title"): [{"type": "string", "minLength": 1, "maxLength": 500}],
    ("EditSpec", "fade_in"): [{"type": "boolean"}],
    ("EditSpec", "fade_out"): [{"type": "boolean"}],
    ("EditSpec", "music_volume"): [_UP_TO_100_PERCENT],
    ("EditSpec", "volume"): [_UP_TO_800_PERCENT],
    ("EditSpec", "denoise"): [{"type": "boolean"}, {"enum": sorted(DENOISE_STRENGTHS)}],
    ("EditSpec", "watermark"): [{"type": "string", "minLength": 1}],
    ("EditSpec", "loop"): [{"const": False}, {"const": 1}],
    ("EditSpec", "aspect"): [_SEXAGESIMAL_ASPECTS],
    ("OutputTarget", "aspect"): [_SEXAGESIMAL_ASPECTS],
}

# (model, field) -> constraints on its strings that validators check in code
_NOT_BLANK = r"\S"
PATTERNS: dict[tuple[str, str], str] = {
    ("Rule", "name"): RULE_NAME.pattern,
    ("Rule", "inbox"): _NOT_BLANK,
    ("Rule", "outbox"): _NOT_BLANK,
    ("OutputTarget", "name"): TARGET_NAME.pattern,
    ("Config", "state_dir"): _NOT_BLANK,
    ("Config", "rules_dir"): _NOT_BLANK,
    ("NemoSettings", "base_url"): r"^https?://",
}
# model -> what its validators check across its fields, said as a schema
_NUMBER = {"type": "number"}
MODEL_RULES: dict[str, dict[str, Any]] = {
    "Trim": {
        "allOf": [
            # either end or cut_end
            {
                "not": {
                    "required": ["end", "cut_end"],
                    "properties": {"end": _NUMBER, "cut_end": _NUMBER},
                }
            },
            # last keeps the final seconds by itself
            {
                "if": {"required": ["last"], "properties": {"last": _NUMBER}},
                "then": {
                    "properties": {
                        "start": {"const": 0},
                        "end": {"type": "null"},
                        "cut_end": {"type": "null"},
                    }
                },
            },
        ]
    },
}
# lists that may not be empty (validators and `check` say so)
NOT_EMPTY = {("Rule", "match"), ("Rule", "outputs")}

_EXAMPLES = "examples"
# (model, field) -> its description, or (description, examples)
DESCRIPTIONS: dict[tuple[str, str], str | tuple[str, list[Any]]] = {
    ("Config", "engine"): "Which engine edits: local (FFmpeg on this machine, offline, no "
    "account) or nemo (the NemoVideo cloud API).",
    ("Config", "state_dir"): "Where the job ledger (SQLite) lives; relative to this file. "
    "Default: $XDG_STATE_HOME/nemowatch, else ~/.local/state/nemowatch.",
    ("Config", "concurrency"): "Jobs edited at the same time (1 to 64).",
    ("Config", "prefetch"): "Files claimed ahead for the next free worker (0 to 64); the "
    "rest wait in the inbox, free for another nemowatch sharing it.",
    ("Config", "scan_interval"): "Seconds between full scans of every inbox; file events "
    "are only hints.",
    ("Config", "grace_period"): "Seconds running jobs get to reach a checkpoint on stop.",
    ("Config", "max_attempts"): "Crashes of the daemon a job may be running for (1 to 20) "
    "before it is blamed and fails; a graceful stop never counts.",
    ("Config", "log_level"): "How much the daemon logs.",
    ("Config", "rules_dir"): (
        "A folder of rule files: each *.yaml holds one rule or a list of rules, reloaded "
        "when edited. Relative to this file.",
        ["./rules.d"],
    ),
    ("Config", "ffmpeg"): (
        "The FFmpeg binary for the local engine (a path or a command name). Unset: the "
        "system's when it can do everything, else the bundled one.",
        ["/usr/bin/ffmpeg"],
    ),
    ("Config", "nemo"): "How to reach the NemoVideo cloud API (engine: nemo).",
    ("Config", "rules"): "The rules: each maps an inbox to an outbox, with what to do to "
    "each file dropped in.",
    ("Rule", "name"): ("Letters, digits, '.', '_' or '-'; unique; shown in logs.", ["reels"]),
    ("Rule", "inbox"): ("The folder footage is dropped into.", ["~/Videos/inbox/reels"]),
    ("Rule", "outbox"): (
        "The folder finished files appear in (never inside an inbox).",
        ["~/Videos/outbox/reels"],
    ),
    ("Rule", "match"): (
        "Which files to take: a glob or a list of globs, case-insensitive. Left out: what "
        "the engine takes (videos, photos and sound files).",
        [["*.mp4", "*.mov"], "*.mp4"],
    ),
    ("Rule", "ignore"): "Extra globs to skip, on top of dotfiles, *.part, *.tmp and the like.",
    ("Rule", "recursive"): "Also take files in subfolders of the inbox.",
    ("Rule", "batch"): "A folder dropped in (when not recursive): each file its own job "
    "(each), or one video of its files in name order (combine, local engine only).",
    ("Rule", "poll"): "Force polling, for network shares where file events do not arrive.",
    ("Rule", "settle_seconds"): "A file must stay unchanged this long before it is taken "
    "(0 to 3600 seconds).",
    ("Rule", "instructions"): (
        "What to do, in free text: sent as-is to nemo, understood by the local engine.",
        [["cut out silences, add background music", "make it vertical for TikTok"]],
    ),
    ("Rule", "allow_unknown_instructions"): "true: phrases the local engine does not "
    "understand are warned about and ignored; false: check and run refuse the config.",
    ("Rule", "edit"): "The edit in structured form; wins over the instructions' text.",
    ("Rule", "export"): "How the result is encoded.",
    ("Rule", "outputs"): (
        "The output's file name template ({stem} {ext} {rule} {date}), or several outputs "
        "from the one edit, each with its own name, file, aspect, fit and export.",
        ["{stem}-edited.mp4", [{"name": "shorts", "aspect": "9:16", "resolution": "1080p"}]],
    ),
    ("Rule", "on_conflict"): 'When the output\'s name is taken: rename ("name (2).mp4"), '
    "overwrite, or skip.",
    ("Rule", "after"): "What happens to the source after success and after failure.",
    ("Rule", "reprocess_duplicates"): "false: a byte-identical file dropped again is skipped.",
    ("Rule", "report"): "Write <output>.json beside each output: spec, plan, warnings, timings.",
    ("Rule", "max_size"): (
        "Larger files fail at once, before any work: bytes, or a size (MB = 1000², "
        "MiB = 1024²). Unset: no limit.",
        ["2GB", "500MB", "2GiB"],
    ),
    ("After", "success"): "archive (to inbox/done/YYYY-MM-DD/), keep, or delete (only once "
    "the output is published).",
    ("After", "failure"): "quarantine (to inbox/failed/, beside <name>.error.json) or keep.",
    ("OutputTarget", "name"): ("This output's name (letters, digits, '.', '_', '-').", ["shorts"]),
    ("OutputTarget", "file"): "Its file name template; unset: {stem}-<name>.<format>.",
    ("OutputTarget", "aspect"): "Its aspect; unset: the edit's.",
    ("OutputTarget", "fit"): "How the frame meets a new aspect; unset: the edit's.",
    ("OutputTarget", "format"): "Its container; unset: the rule's export.",
    ("OutputTarget", "resolution"): "Its short side; unset: the rule's export.",
    ("OutputTarget", "quality"): "Its quality; unset: the rule's export.",
    ("OutputTarget", "fps"): "Its frame rate; unset: the rule's export.",
    ("ExportSpec", "format"): "The container: mp4 (H.264 + AAC), mov, webm (VP9 + Opus), or "
    "gif (short clips).",
    ("ExportSpec", "resolution"): "The short side in pixels, or the source's.",
    ("ExportSpec", "quality"): "low, medium or high.",
    ("ExportSpec", "fps"): "The frame rate; unset: the source's.",
    ("ExportSpec", "smart"): "auto: a job that only cuts copies the source's whole GOPs and "
    "encodes only the frames around each cut; off: encode everything.",
    ("ExportSpec", "timelines"): (
        "Timelines for editors written beside the output, linking the source at its final"
        " place: otio (OpenTimelineIO), fcpxml (Final Cut Pro X, Resolve), xml (FCP 7:"
        " Premiere, Resolve), edl (CMX 3600, the picture cut only), kdenlive. Needs the"
        " timelines extra: pip install 'nemowatch[timelines]'.",
        [["otio", "fcpxml"], ["xml"]],
    ),
    ("EditSpec", "cut_silences"): (
        "Cut out silent stretches: true for the defaults, or the settings.",
        [True, {"threshold_db": -28, "margin": 0.2, "min_cut": 0.2}],
    ),
    ("EditSpec", "trim"): "Keep only part of the source (start, and one of end, cut_end, last).",
    ("EditSpec", "max_duration"): "Make a highlight reel this many seconds long.",
    ("EditSpec", "speed"): "Play faster or slower (0.5 to 4); pitch is preserved.",
    ("EditSpec", "aspect"): ("A new aspect for the picture.", ["9:16"]),
    ("EditSpec", "fit"): "How the frame meets a new aspect: crop, blur (the frame between "
    "blurred bands of itself) or pad.",
    ("EditSpec", "title"): ("A title: its text, or the settings.", ["Urban Dreams"]),
    ("EditSpec", "texts"): "Further text overlays.",
    ("EditSpec", "music"): (
        "A mood (lofi, upbeat, calm), a music file, or a folder of tracks.",
        ["lofi", "~/Music/bed.mp3"],
    ),
    ("EditSpec", "music_volume"): ("The music's level: 0 to 1, or a percentage.", ["35%", 0.35]),
    ("EditSpec", "duck"): "Lower the music under speech.",
    ("EditSpec", "fade_in"): ("Seconds of fade in; true: one second.", [1, True]),
    ("EditSpec", "fade_out"): ("Seconds of fade out; true: one second.", [2, True]),
    ("EditSpec", "mute"): "Drop the source's own sound.",
    ("EditSpec", "volume"): ("Gain on the source's sound: 0 to 8, or a percentage.", ["150%"]),
    ("EditSpec", "normalize"): "Loudness normalized to -14 LUFS, true peak at most -1 dBTP.",
    ("EditSpec", "captions"): (
        "Speech to text, offline (the captions extra): true, or the settings.",
        [True, {"burn": False}],
    ),
    ("EditSpec", "remove_fillers"): 'Cut "um", "uh", "er"...: true, or the words.',
    ("EditSpec", "denoise"): (
        "Hiss reduction: true (medium), light, medium, strong, or dB (1 to 60).",
        ["light", 12],
    ),
    ("EditSpec", "color"): "Brightness, contrast, saturation and warmth.",
    ("EditSpec", "watermark"): ("An image over a corner: its file, or the settings.", ["logo.png"]),
    ("EditSpec", "reverse"): "Play backwards (picture and sound).",
    ("EditSpec", "loop"): "Play the edit this many times (2 to 20); false or 1: once.",
    ("EditSpec", "enhance"): "The enhance preset: gentle contrast and saturation, light "
    "denoise, loudness normalized.",
    ("EditSpec", "still"): "How a photo becomes a shot.",
    ("EditSpec", "audiogram"): "How a sound file becomes a video.",
    ("SilenceCut", "threshold_db"): "Sound below this level (dB) is silence.",
    ("SilenceCut", "margin"): "Seconds of silence kept by each cut.",
    ("SilenceCut", "min_cut"): "Shorter silences are left in (seconds).",
    ("Trim", "start"): "Seconds cut from the start.",
    ("Trim", "end"): "Where to end, in seconds of the source.",
    ("Trim", "cut_end"): "Seconds cut from the end.",
    ("Trim", "last"): "Keep only this many final seconds.",
    ("TextOverlay", "text"): "What it says.",
    ("TextOverlay", "start"): "Seconds into the output.",
    ("TextOverlay", "duration"): "Seconds it shows.",
    ("TextOverlay", "position"): "Where in the frame.",
    ("TextOverlay", "size"): "Its height, a fraction of the frame's.",
    ("Captions", "burn"): "true: burned into the picture; false: a subtitle track and an .srt.",
    ("Captions", "language"): ("The language spoken (ISO 639); unset: detected.", ["en"]),
    ("Captions", "position"): "Where in the frame.",
    ("Captions", "size"): "Text height, a fraction of the frame's.",
    ("Captions", "max_chars"): "Characters a line, at most.",
    ("Captions", "lines"): "Lines a caption, at most.",
    ("FillerCut", "words"): "The filler words to cut.",
    ("ColorAdjust", "brightness"): "Added to luma (-1 to 1); 0: unchanged.",
    ("ColorAdjust", "contrast"): "1: unchanged.",
    ("ColorAdjust", "saturation"): "1: unchanged; 0: grey.",
    ("ColorAdjust", "warmth"): "Positive: warmer (redder); negative: cooler.",
    ("Watermark", "file"): "The image; relative to the rule's file.",
    ("Watermark", "corner"): "Which corner.",
    ("Watermark", "opacity"): "0 (invisible) to 1.",
    ("Watermark", "size"): "Its width, a fraction of the frame's.",
    ("Still", "duration"): "Seconds a photo shows.",
    ("Still", "motion"): "A slow pan and zoom (Ken Burns).",
    ("Audiogram", "style"): "waveform or spectrum.",
    ("Audiogram", "color"): "The wave's colour: a name or #rrggbb.",
    ("Audiogram", "background"): "The background without a cover picture.",
    ("Audiogram", "cover"): "A picture; unset: the file's embedded cover, else one beside it.",
    ("NemoSettings", "base_url"): "The API's address.",
    ("NemoSettings", "skill_source"): "Attribution sent with each request (the service "
    "refuses exports without it once free credits end).",
    ("NemoSettings", "skill_version"): "Attribution: the version sent with each request.",
    ("NemoSettings", "skill_platform"): "Attribution: the platform; auto: this machine's "
    "operating system.",
    ("NemoSettings", "language"): "The language the service answers in.",
    ("NemoSettings", "request_timeout"): "Seconds one ordinary request may take.",
    ("NemoSettings", "edit_timeout"): "Seconds one edit (one chat turn) may take.",
    ("NemoSettings", "max_event_bytes"): "The largest line or event of an edit's stream.",
    ("NemoSettings", "landing_window"): "Seconds the draft is watched for an edit whose "
    "stream ended without an answer.",
    ("NemoSettings", "render_deadline"): "Seconds one render may take.",
    ("NemoSettings", "credits_check_interval"): "Seconds between looks at the credits while "
    "paused for want of them.",
    ("Config", "http"): "The daemon's web page, JSON API and /metrics (docs/http.md); off "
    "unless set. Beyond loopback a token or password is required.",
    ("HttpSettings", "listen"): ("Address and port to serve on.", ["127.0.0.1:8765", "[::1]:8765"]),
    ("HttpSettings", "token"): "A bearer token (16+ characters; `openssl rand -hex 16`) for "
    "the Authorization header or the login form. Never logged.",
    ("HttpSettings", "password_file"): "A file holding the login form's password.",
    ("Config", "notify"): "Notifications for every rule without its own `notify` "
    "(docs/notifications.md).",
    ("Rule", "notify"): "This rule's notifications, instead of the global `notify`.",
    ("Rule", "nodes"): (
        "In a fleet: the nodes (`fleet.node`) that take this rule's files. Empty: every node.",
        [["gpu-box"]],
    ),
    ("Config", "ledger"): (
        "The job ledger. Left out: SQLite in state_dir (one machine). A PostgreSQL URL: one "
        "database several daemons share, a fleet (docs/fleet.md). Never the password.",
        ["postgresql://nemowatch@db.lan/nemowatch"],
    ),
    ("Config", "fleet"): "This daemon as a node of a fleet sharing a PostgreSQL `ledger`.",
    ("FleetSettings", "node"): (
        "This node's name in the fleet (unique). Unset: the machine's host name.",
        ["render-1"],
    ),
    ("FleetSettings", "lease"): "Seconds a node may go without a heartbeat before another "
    "node adopts its unfinished jobs.",
    ("FleetSettings", "password_file"): "A file holding the database password (else "
    "$PGPASSWORD or ~/.pgpass, as libpq reads them). Relative to this file.",
    ("FleetSettings", "outage"): "Seconds to wait for an unreachable database, trying each "
    "second, before a ledger write fails.",
    ("Notify", "events"): (
        "What is told: done, failed, paused (no NemoVideo credits). Default: failed, paused.",
        [["failed", "paused"], ["done", "failed"]],
    ),
    ("Notify", "urls"): (
        "Apprise URLs (pip install 'nemowatch[notify]'): Slack, Discord, Telegram, ntfy, email...",
        ["ntfy://ntfy.sh/my-topic", ["slack://T000/B000/XXXX", "mailto://user:pass@example.com"]],
    ),
    ("Notify", "webhook"): "A JSON POST signed with HMAC-SHA256 of its body "
    "(header X-Nemowatch-Signature).",
    ("Webhook", "url"): ("Where the POST goes (http or https).", ["https://example.com/hook"]),
    ("Webhook", "secret"): "The HMAC key; better in `secret_file`. Never logged.",
    ("Webhook", "secret_file"): "A file holding the HMAC key (its whole text, stripped).",
    ("Webhook", "timeout"): "Seconds one attempt may take (up to 300).",
}


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (config.yaml)."""
    generated = Config.model_json_schema(mode="validation")
    for name in INTERNAL_FIELDS:
        generated["properties"].pop(name, None)
    definitions = generated.pop("$defs")
    definitions["Config"] = generated
    for model, schema in definitions.items():
        for field, prop in schema.get("properties", {}).items():
            schema["properties"][field] = _completed(model, field, prop)
        schema.update(copy.deepcopy(MODEL_RULES.get(model, {})))
    return {
        "$schema": DIALECT,
        **generated,
        "title": "nemowatch config",
        "description": "A nemowatch config file: settings and rules (`nemowatch check` "
        "tells what only it can: files that must exist, rules that clash).",
        # no rules at all is an error: inline ones, or a folder of rule files
        "anyOf": [{"required": ["rules"]}, {"required": ["rules_dir"]}],
        "$defs": {name: definitions[name] for name in sorted(definitions) if name != "Config"},
    }


def rule_file_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file in `rules_dir`: one rule, or a list of rules."""
    definitions = config_schema()["$defs"]
    return {
        "$schema": DIALECT,
        "title": "nemowatch rule file",
        "description": "One rule, or a list of rules, in a config's rules_dir.",
        "anyOf": [
            {"$ref": "#/$defs/Rule"},
            {"type": "array", "items": {"$ref": "#/$defs/Rule"}},
        ],
        "$defs": definitions,
    }


def schema_text(*, rule_file: bool = False) -> str:
    """The schema as `nemowatch schema` prints it and the package ships it."""
    schema = rule_file_schema() if rule_file else config_schema()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def shipped_text(*, rule_file: bool = False) -> str:
    """The schema the package ships (data/schema.json or data/rule.schema.json)."""
    name = RULE_SCHEMA if rule_file else CONFIG_SCHEMA
    return (resources.files("nemowatch") / name).read_text(encoding="utf-8")


def write_beside(config_path: Path) -> Path:
    """The config schema written as schema.json beside `config_path` (what `init`'s
    config names on its first line), replacing any earlier one whole."""
    target = config_path.parent / "schema.json"
    partial = target.with_name(".schema.json.partial")
    partial.write_text(shipped_text(), encoding="utf-8")
    partial.replace(target)
    return target


def _completed(model: str, field: str, prop: dict[str, Any]) -> dict[str, Any]:
    """One property's schema with its shorthands, patterns and description."""
    prop = copy.deepcopy(prop)
    prop.pop("title", None)  # "Settle Seconds": the key says it better
    pattern = PATTERNS.get((model, field))
    if pattern is not None:
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string":
                branch["pattern"] = pattern
    if (model, field) in NOT_EMPTY:
        for branch in prop.get("anyOf", prop.get("oneOf", [prop])):
            if branch.get("type") == "array":
                branch["minItems"] = 1
    shorthands = list(SHORTHANDS.get((model, field), []))
    if prop.get("type") == "boolean":
        shorthands.append(YAML_BOOLEAN_WORDS)
    if shorthands:
        outer: dict[str, Any] = {
            key: prop.pop(key) for key in ("default", "description") if key in prop
        }
        branches = prop.pop("anyOf") if "anyOf" in prop and len(prop) == 1 else [prop]
        prop = {**outer, "anyOf": [*branches, *copy.deepcopy(shorthands)]}
    described = DESCRIPTIONS.get((model, field))
    if isinstance(described, tuple):
        prop["description"], prop[_EXAMPLES] = described[0], described[1]
    elif described is not None:
        prop["description"] = described
    return prop
