"""Sidecars: instructions for one file, written beside it (`clip.txt` or `clip.yaml` beside
`clip.mp4`), read and checked as a rule's are, every problem with its file and line.

- `clip.txt`: one instruction a line (each read clause by clause, as a rule's); empty
  lines and lines starting with `#` are skipped.
- `clip.yaml`: a mapping with `instructions:` (a text or a list) and/or `edit:` (as a
  rule's `edit:`; a music file or watermark image relative to the sidecar's folder).

What the sidecar asks for is added to the rule's, and wins where the two disagree
(`combine`). The checks are the rule's: values validated, contradictions within the
sidecar, and, for the local engine, phrases it does not understand (an error unless the
rule sets `allow_unknown_instructions`), music, watermark images and speech to text that
are not there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import field_validator

from nemowatch.config.checks import (
    Loaded,
    instruction_problems,
    music_problems,
    speech_problems,
    watermark_problems,
)
from nemowatch.config.document import Loc, Origin, read_yaml
from nemowatch.config.messages import as_written, validate
from nemowatch.config.models import Rule
from nemowatch.config.values import expand_path
from nemowatch.errors import ConfigProblem, SidecarError
from nemowatch.language import find_conflicts, interpret_all
from nemowatch.rules import MOODS, EditSpec, ExportSpec, Frozen


class SidecarFile(Frozen):
    """The schema of a YAML sidecar."""

    instructions: tuple[str, ...] = ()
    edit: EditSpec = EditSpec()

    @field_validator("instructions", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


@dataclass(frozen=True)
class Sidecar:
    """What one sidecar asks for."""

    file: Path  # where it was dropped (what messages name)
    instructions: tuple[str, ...]
    edit: EditSpec  # only the fields it sets


def read_sidecar(
    path: Path,
    *,
    rule: Rule,
    engine: str,
    shown_as: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Sidecar:
    """The sidecar at `path`, checked for `rule` on `engine`; SidecarError listing every
    problem (each naming `shown_as`, the name it was dropped under, and the line)."""
    shown = shown_as or path
    problems: list[ConfigProblem] = []
    if path.suffix.lower() == ".txt":
        sidecar, origin = _read_text(path, shown, problems)
    else:
        sidecar, origin = _read_yaml(path, shown, environ, problems)
    if sidecar is not None and not problems:
        problems.extend(_check(sidecar, origin, rule, engine, environ))
    if problems:
        raise SidecarError(
            problems,
            hint=f"fix {shown.name} (or remove it), then move it and its video back into"
            " the inbox together",
        )
    assert sidecar is not None
    return sidecar


def combine(
    rule: Rule, sidecars: tuple[Sidecar, ...]
) -> tuple[tuple[str, ...], EditSpec, ExportSpec]:
    """The instructions, edit and export of one file: the rule's with its sidecars' added,
    a sidecar winning where they disagree (its text over the rule's `edit:` and `export:`
    too, which otherwise win over text)."""
    instructions = rule.instructions
    edit, export = rule.edit, rule.export
    for sidecar in sidecars:
        reading = interpret_all(sidecar.instructions)
        said = reading.edit.model_fields_set
        kept = edit.model_dump(exclude_unset=True, exclude=set(said))
        edit = EditSpec.model_validate(kept).merged(sidecar.edit)
        kept_export = export.model_dump(exclude_unset=True, exclude=set(reading.export))
        export = ExportSpec.model_validate(kept_export)
        instructions = (*instructions, *sidecar.instructions)
    return instructions, edit, export


def _read_text(
    path: Path, shown: Path, problems: list[ConfigProblem]
) -> tuple[Sidecar | None, Origin]:
    origin = Origin(str(shown), {})
    text = _text(path, shown, problems)
    if text is None:
        return None, origin
    instructions: list[str] = []
    lines: dict[Loc, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lines[("instructions", len(instructions))] = number
        instructions.append(line)
    origin = Origin(str(shown), lines)
    if not instructions:
        problems.append(
            ConfigProblem(str(shown), None, "", "holds no instructions (write one a line)")
        )
        return None, origin
    return Sidecar(shown, tuple(instructions), EditSpec()), origin


def _read_yaml(
    path: Path,
    shown: Path,
    environ: Mapping[str, str] | None,
    problems: list[ConfigProblem],
) -> tuple[Sidecar | None, Origin]:
    reported = len(problems)
    document = read_yaml(path, problems)
    # problems name the file as it was dropped, not its claimed name in processing/
    problems[reported:] = [replace(problem, file=str(shown)) for problem in problems[reported:]]
    origin = Origin(str(shown), document.lines if document is not None else {})
    if document is None:
        return None, origin
    data = document.data
    if not isinstance(data, dict):
        message = f"expected a mapping with instructions: and/or edit:, got {as_written(data)}"
        problems.append(origin.problem((), message))
        return None, origin
    edit = data.get("edit")
    if isinstance(edit, dict):
        data = {**data, "edit": _expanded(edit, shown.parent, environ)}
    model = validate(SidecarFile, data, origin, problems)
    if model is None:
        return None, origin
    if not model.instructions and not model.edit.model_fields_set:
        problems.append(origin.problem((), "holds no instructions: and no edit:"))
        return None, origin
    return Sidecar(shown, model.instructions, model.edit), origin


def _text(path: Path, shown: Path, problems: list[ConfigProblem]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(ConfigProblem(str(shown), None, "", f"not UTF-8 text: {exc.reason}"))
    except OSError as exc:
        problems.append(ConfigProblem(str(shown), None, "", f"cannot read: {exc.strerror}"))
    return None


def _expanded(
    edit: dict[str, object], folder: Path, environ: Mapping[str, str] | None
) -> dict[str, object]:
    """`edit` with a music file and a watermark image relative to `folder`."""
    result = dict(edit)
    music = edit.get("music")
    if isinstance(music, str) and music.strip() and music.strip().lower() not in MOODS:
        result["music"] = str(expand_path(music, folder, environ))
    mark = edit.get("watermark")
    if isinstance(mark, str) and mark.strip():
        result["watermark"] = str(expand_path(mark, folder, environ))
    elif isinstance(mark, dict) and isinstance(mark.get("file"), str):
        result["watermark"] = {**mark, "file": str(expand_path(str(mark["file"]), folder, environ))}
    return result


def _check(
    sidecar: Sidecar,
    origin: Origin,
    rule: Rule,
    engine: str,
    environ: Mapping[str, str] | None,
) -> list[ConfigProblem]:
    """The rule's checks, on what the sidecar asks for."""
    problems = [
        origin.problem(("instructions", conflict.instruction), conflict.message)
        for conflict in find_conflicts(sidecar.instructions)
    ]
    if engine == "local":  # the nemo engine sends the text as written
        asked = rule.model_copy(update={"instructions": sidecar.instructions, "edit": sidecar.edit})
        loaded = [Loaded(asked, origin)]
        problems += instruction_problems(loaded)
        problems += music_problems(loaded)
        problems += watermark_problems(loaded)
        problems += speech_problems(loaded, os.environ if environ is None else environ)
    if origin.file.lower().endswith(".txt"):
        # a text sidecar has no keys: its line says where
        problems = [replace(problem, path="") for problem in problems]
    return problems
