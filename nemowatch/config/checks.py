"""What no single field shows: cross-field checks over all rules (clashing names, inboxes,
outboxes, output names, contradicting instructions, music or watermark images that are not
there, phrases the local engine does not understand), and the warnings `check` shows about
a valid config."""

from __future__ import annotations

import importlib.util
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nemowatch.config.document import Loc, Origin
from nemowatch.config.models import TEMPLATE_FIELDS, BatchMode, Config, Rule
from nemowatch.config.notify import notify_problems
from nemowatch.engines.formats import LOCAL_EXTENSIONS, NEMO_EXTENSIONS
from nemowatch.errors import ConfigProblem, NemowatchError
from nemowatch.language import find_conflicts, interpret, interpret_all
from nemowatch.language.routing import Route, route
from nemowatch.language.suggest import suggest
from nemowatch.rules import MOODS, matches

# What `outputs` is checked with; `ext` is the source's, so "{stem}.{ext}" is not an MP4 name.
_TEMPLATE_SAMPLE = {"stem": "clip", "ext": "mov", "rule": "reels", "date": "2024-01-31"}
RULE_FIELDS = frozenset(Rule.model_fields)


@dataclass(frozen=True)
class Loaded:
    """A rule as loaded, where it was written, and which of its fields hold what was."""

    rule: Rule  # for a rule with errors: its valid fields, placeholders for the others
    origin: Origin
    known: frozenset[str] = RULE_FIELDS  # the fields that hold what was written (or defaults)

    def knows(self, *fields: str) -> bool:
        return self.known.issuperset(fields)


def check_report(config: Config) -> list[str]:
    """Warnings about a valid config that `check` shows but that do not stop the daemon."""
    warnings = [
        f'rule "{rule.name}": inbox {rule.inbox} does not exist yet; it will be created'
        for rule in config.rules
        if not rule.inbox.exists()
    ]
    if config.engine == "local":  # the nemo engine sends the text as written
        for rule in config.rules:  # only rules with allow_unknown_instructions get this far
            for index, phrase in _unknown_phrases(rule.instructions):
                warnings.append(
                    f'rule "{rule.name}": instructions[{index}]: '
                    f"{not_understood_message(phrase)} (ignored: the rule sets"
                    " allow_unknown_instructions)"
                )
    if config.engine == "nemo":  # what of the text is not sent to the chat
        warnings += routing_warnings(config.rules)
    if config.engine == "nemo":  # it sends the text as written and reads no `edit:`
        for rule in config.rules:
            keys = sorted(rule.edit.model_fields_set)
            if keys:
                warnings.append(
                    f'rule "{rule.name}": edit: {", ".join(keys)} is not read by the nemo'
                    " engine (it edits from `instructions`): say it there, or use"
                    " engine: local"
                )
    for rule in config.rules:
        warnings.extend(match_warnings(rule, config.engine))
    return warnings


def routing_warnings(rules: Sequence[Rule]) -> list[str]:
    """Clauses the nemo engine does not send to the chat and that are no export setting
    either: "check my credits" (not an edit, dropped), "upload it" (done anyway)."""
    warnings = []
    for rule in rules:
        for index, instruction in enumerate(rule.instructions):
            for clause in route(instruction).clauses:
                if clause.route in (Route.NOT_AN_EDIT, Route.NOTHING):
                    warnings.append(
                        f'rule "{rule.name}": instructions[{index}]: "{clause.text}" is'
                        f" {clause.route.value} for the nemo engine and is not sent to its"
                        f" chat (a paid turn): {clause.reason}"
                    )
    return warnings


# ---- what a rule's `match` catches, against what its engine takes (issue 13) --------------
def match_warnings(rule: Rule, engine: str) -> list[str]:
    """Patterns that catch files the engine cannot edit (they would fail), and a rule whose
    patterns catch nothing it can. Only a fixed extension tells what a pattern catches:
    one without ("clip-*", "*") may catch anything."""
    takes = NEMO_EXTENSIONS if engine == "nemo" else LOCAL_EXTENSIONS
    warnings = []
    refused = 0
    for pattern in rule.match:
        extension = _extension(pattern.lower())
        if extension is None:
            warnings.append(
                f'rule "{rule.name}": match pattern "{pattern}" can also catch files the'
                f" {engine} engine cannot edit (documents, archives, ...), which would fail"
                f' (add an extension, e.g. "{_with_extension(pattern)}")'
            )
        elif extension not in takes:
            refused += 1
            warnings.append(
                f'rule "{rule.name}": match pattern "{pattern}" only catches {extension} files,'
                f" which the {engine} engine cannot edit; such files will fail"
                f" ({_takes_hint(engine)})"
            )
    if rule.match and refused == len(rule.match):
        warnings.append(
            f'rule "{rule.name}": its match catches nothing the {engine} engine can edit'
            f" ({_takes_hint(engine)})"
        )
    return warnings


def _with_extension(pattern: str) -> str:
    return pattern.rstrip("*.") + "*.mp4" if pattern.rstrip("*.") else "*.mp4"


def _takes_hint(engine: str) -> str:
    extensions = NEMO_EXTENSIONS if engine == "nemo" else LOCAL_EXTENSIONS
    shown = " ".join(sorted(extension[1:] for extension in extensions))
    return f"the {engine} engine takes {shown}"


def cross_check(loaded: list[Loaded]) -> list[ConfigProblem]:
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
        if item.knows("outputs") and isinstance(rule.outputs, str):
            export_format = rule.export.format if item.knows("export") else None
            texts = outputs_problems(rule.outputs, export_format)
            problems.extend(origin.problem(("outputs",), text) for text in texts)
        elif item.knows("outputs"):  # several outputs (config/targets.py)
            problems.extend(targets_problems(item))
        if item.knows("instructions"):
            problems.extend(_instruction_conflicts(rule.instructions, origin))
    return problems


def all_notify_problems(
    config: Config | None, loaded: list[Loaded], top: Origin
) -> list[ConfigProblem]:
    """`notify:` at the top and on each rule (config/notify.py)."""
    found = [(config.notify, top)] if config is not None else []
    found += [(item.rule.notify, item.origin) for item in loaded if item.knows("notify")]
    return [
        problem
        for notify, origin in found
        if notify is not None
        for problem in notify_problems(notify, origin.within("notify"))
    ]


def music_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
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


def timelines_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
    """Timelines for editors asked for (`export.timelines`, or in the text: "export a
    Premiere timeline") where OpenTimelineIO or a format's adapter is not installed: each
    job would fail at publishing; the problem says how to install them."""
    problems = []
    for item in loaded:
        rule, origin = item.rule, item.origin
        where: Loc = ("export", "timelines")
        asked = rule.export.timelines
        if not asked:
            found = interpret_all(rule.instructions).export.get("timelines")
            asked = tuple(found) if isinstance(found, tuple) else ()
            where = ("instructions",)
        if not asked:
            continue
        # imported only here: nemowatch.timelines brings the whole local engine and PyAV
        # (0.2 s of CPU), which every command that loads a config paid for nothing
        from nemowatch import timelines

        missing = timelines.missing_package(asked)
        if missing is not None:
            text = f"timelines ({', '.join(asked)}) need {missing}: {timelines.INSTALL_HINT}"
            problems.append(origin.problem(where, text))
    return problems


def speech_problems(loaded: list[Loaded], environ: Mapping[str, str]) -> list[ConfigProblem]:
    """Captions or filler cuts asked for where speech to text is not installed (or the
    model named by `environ` is not there): each job would fail on it."""
    status = None
    problems = []
    for item in loaded:
        rule, origin = item.rule, item.origin
        if not item.knows("edit", "instructions"):
            continue
        read = interpret_all(rule.instructions).edit
        wanted = [
            name
            for name in ("captions", "remove_fillers")
            # `edit:` wins over the text
            if getattr(rule.edit if name in rule.edit.model_fields_set else read, name) is not None
        ]
        if not wanted:
            continue
        # imported here: it loads the whole local engine, which a config without captions
        # or filler cuts (and every command that only reads the config) does without
        from nemowatch.engines.local import speech

        status = status or speech.availability(environ)
        caption = rule.edit if "captions" in rule.edit.model_fields_set else read
        language = caption.captions.language if caption.captions is not None else None
        if status.ready and status.english_only and language not in (None, "en"):
            at: Loc = ("edit", "captions") if "captions" in rule.edit.model_fields_set else ()
            problems.append(
                origin.problem(
                    at or ("instructions",),
                    f"captions in {language!r}: the bundled speech model hears English only;"
                    f" {speech.ENGLISH_ONLY_HINT}",
                )
            )
        if status.ready:
            continue
        for name in wanted:
            where: Loc = ("edit", name) if name in rule.edit.model_fields_set else ("instructions",)
            what = "captions" if name == "captions" else "filler cuts"
            problems.append(
                origin.problem(
                    where,
                    f"{what} need speech to text, which is not installed here ({status.detail});"
                    f" {status.hint or speech.INSTALL_HINT}",
                )
            )
    return problems


def watermark_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
    """Watermark images that are not there: each job would fail on them."""
    problems = []
    for item in loaded:
        rule, origin = item.rule, item.origin
        if not item.knows("edit", "instructions"):
            continue
        in_edit = "watermark" in rule.edit.model_fields_set  # `edit:` wins over the text
        mark = rule.edit.watermark if in_edit else interpret_all(rule.instructions).edit.watermark
        if mark is None:
            continue
        path = Path(mark.file).expanduser()
        if path.is_file():
            continue
        text = f"there is no watermark image at {path}"
        if in_edit:
            problems.append(origin.problem(("edit", "watermark"), text + "; put it there"))
            continue
        text += (
            "; a path in instructions is taken from the folder nemowatch runs in: write it in"
            " full, or use edit.watermark, which is relative to this file"
        )
        named = [
            index
            for index, instruction in enumerate(rule.instructions)
            if interpret(instruction).edit.watermark is not None
        ]
        where: Loc = ("instructions", named[-1]) if named else ("instructions",)
        problems.append(origin.problem(where, text))
    return problems


def instruction_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
    """Phrases of instructions the local engine does not understand, each with what it
    might have meant; a rule with `allow_unknown_instructions: true` has them ignored (and
    `check_report` warns about them) instead."""
    problems = []
    for item in loaded:
        if not item.knows("instructions", "allow_unknown_instructions"):
            continue
        if item.rule.allow_unknown_instructions:
            continue
        # `instructions: "one text"` is a list of one, with no item to point at
        for index, phrase in _unknown_phrases(item.rule.instructions):
            message = (
                f"{not_understood_message(phrase)} (or set allow_unknown_instructions: true"
                " on the rule to have it ignored)"
            )
            problems.append(item.origin.problem(("instructions", index), message))
    return problems


def not_understood_message(phrase: str) -> str:
    """E.g. `the local engine does not understand "make it verticle"; did you mean
    "make it vertical", "make it square"?`."""
    text = f"the local engine does not understand {_quoted(phrase)}"
    suggestions = suggest(phrase)
    if suggestions:
        text += "; did you mean " + ", ".join(_quoted(each) for each in suggestions) + "?"
    return text


def _unknown_phrases(instructions: tuple[str, ...]) -> list[tuple[int, str]]:
    """(index of the instruction, phrase) for every clause the local engine does not read."""
    return [
        (index, phrase)
        for index, instruction in enumerate(instructions)
        for phrase in interpret(instruction).not_understood
    ]


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


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


def _instruction_conflicts(instructions: tuple[str, ...], origin: Origin) -> list[ConfigProblem]:
    """Instructions of one rule that ask for two values of one setting ("vertical", "16:9").

    Checked whichever engine runs: the contradiction is in what the user asked for.
    """
    return [
        origin.problem(("instructions", conflict.instruction), conflict.message)
        for conflict in find_conflicts(instructions)
    ]


def _folder_clash(item: Loaded, other: Loaded, role: str) -> str | None:
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


def _called(item: Loaded, seen_from: Loaded) -> str:
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


def outputs_problems(
    template: str, export_format: str | None = "mp4", format_from: str = "export.format"
) -> list[str]:
    """What is wrong with an `outputs` template; empty when it is fine.

    The extension is checked against `export_format` unless it is None (not known);
    `format_from` says where that format was set.
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
            f'{shown} must end in ".{export_format}" ({format_from} is {export_format}),'
            f' e.g. "{{stem}}-edited.{export_format}"'
        )
    return problems


# -- several outputs (`outputs:` a list of targets; config/targets.py) ----------------------


def targets_problems(item: Loaded) -> list[ConfigProblem]:
    """What is wrong with a list of outputs: names or files used twice, and each file
    template (fields, extension against its format, leaving the outbox)."""
    rule, origin = item.rule, item.origin
    if isinstance(rule.outputs, str):
        return []
    problems = []
    if not rule.outputs:
        return [origin.problem(("outputs",), "needs at least one output (or a template)")]
    names: dict[str, int] = {}
    files: dict[str, int] = {}
    for index, target in enumerate(rule.outputs):
        twice = target.name in names
        if twice:
            where = origin.where(("outputs", names[target.name], "name"), origin)
            message = f'duplicate output name "{target.name}" (first used at {where})'
            problems.append(origin.problem(("outputs", index, "name"), message))
        names.setdefault(target.name, index)
        template = target.template(rule.export)
        at = ("outputs", index, "file") if target.file else ("outputs", index)
        known_format = item.knows("export") or target.format is not None
        export_format = target.export_spec(rule.export).format if known_format else None
        said = f"outputs[{index}].format" if target.format else "export.format"
        texts = outputs_problems(template, export_format, said)
        problems.extend(origin.problem(at, text) for text in texts)
        if not texts and template in files and not (twice and target.file is None):
            # (a name used twice gives the same default file: said once, as the name)
            where = origin.where(("outputs", files[template]), origin)
            message = (
                f"{json.dumps(template)} is the file of output {files[template]} too (at"
                f" {where}); each output needs its own name, e.g. with -{target.name} in it"
            )
            problems.append(origin.problem(at, message))
        files.setdefault(template, index)
    return problems


# What the nemo engine's render request can say of an output (nemo-api.md, Export):
# `output: {format, quality}`. Its picture is the session's one draft; an output's own
# resolution and fps are made locally after the download (nemowatch/conform.py).
NEMO_CANNOT = ("aspect", "fit")


def nemo_targets_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
    """Outputs the nemo engine cannot make: its one session renders one draft, and a
    render request says only the format and quality, so an output's own aspect or fit
    cannot be sent (its resolution and fps are conformed locally after the download)."""
    problems = []
    for item in loaded:
        outputs = item.rule.outputs
        if not item.knows("outputs") or isinstance(outputs, str):
            continue
        for index, target in enumerate(outputs):
            for key in NEMO_CANNOT:
                if getattr(target, key) is None:
                    continue
                problems.append(
                    item.origin.problem(
                        ("outputs", index, key),
                        f"the nemo engine cannot give one output its own {key}: its render"
                        " request says only format and quality (the picture is the"
                        f" session's one edit); remove {key} here, or use engine: local",
                    )
                )
    return problems


def nemo_batch_problems(loaded: list[Loaded]) -> list[ConfigProblem]:
    """`batch: combine` under the nemo engine: joining a folder's files into one video is
    the local engine's work (the service edits what was uploaded, one file at a time)."""
    return [
        item.origin.problem(
            ("batch",),
            "the nemo engine cannot combine a folder's files into one video: use"
            " batch: each (each file its own output, in one session), or engine: local",
        )
        for item in loaded
        if item.knows("batch") and item.rule.batch is BatchMode.COMBINE
    ]


def fleet_problems(settings: Config, loaded: list[Loaded], origin: Origin) -> list[ConfigProblem]:
    """What would keep a fleet's node (or a rule's `nodes:`) from working as written."""
    problems = []
    if settings.ledger is not None and importlib.util.find_spec("psycopg_pool") is None:
        problems.append(
            origin.problem(
                ("ledger",),
                "a PostgreSQL ledger needs the fleet extra: pip install 'nemowatch[fleet]'",
            )
        )
    fleet = settings.fleet
    if settings.ledger is not None and fleet.lease <= settings.grace_period:
        problems.append(
            origin.problem(
                ("fleet", "lease"),
                f"{fleet.lease:g} s is not longer than grace_period ({settings.grace_period:g} s):"
                " another node could adopt a job while this one is still finishing it on stop",
            )
        )
    if fleet.password_file is not None and not fleet.password_file.is_file():
        problems.append(
            origin.problem(
                ("fleet", "password_file"),
                f"{fleet.password_file} is not a file: write the database password into it",
            )
        )
    if settings.ledger is None:  # one machine: a rule for other nodes would never run
        for item in loaded:
            rule = item.rule
            if rule.nodes and fleet.name not in rule.nodes:
                problems.append(
                    item.origin.problem(
                        ("nodes",),
                        f"this machine is node {fleet.name}, not one of {', '.join(rule.nodes)}:"
                        " without a shared `ledger:` no other node takes its files",
                    )
                )
    return problems
