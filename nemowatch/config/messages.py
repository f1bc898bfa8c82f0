"""Validation errors in people's words: `expected "low", "medium" or "high", got "hi"`."""

from __future__ import annotations

import difflib
import json
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from nemowatch.config.document import Loc, Origin
from nemowatch.config.models import INTERNAL_FIELDS, SECRET_FIELDS, TARGETS_TAG, TEMPLATE_TAG
from nemowatch.errors import ConfigProblem

_Model = TypeVar("_Model", bound=BaseModel)


def validate(
    model: type[_Model], data: dict[str, Any], origin: Origin, problems: list[ConfigProblem]
) -> _Model | None:
    """`data` as a `model`; None, with every error added to `problems`, when it is not one."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in untagged(exc):
            problems.append(origin.problem(tuple(error["loc"]), error_message(error, model)))
        return None


_TAGS = (TEMPLATE_TAG, TARGETS_TAG)


def untagged(exc: ValidationError) -> list[ErrorDetails]:
    """The errors, their paths without a union's tag (`outputs`: template or targets),
    which is no key anyone wrote."""
    errors = exc.errors()
    for error in errors:
        error["loc"] = tuple(part for part in error["loc"] if part not in _TAGS)
    return errors


def error_message(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One pydantic error as a sentence: `expected "low", "medium" or "high", got "hi"`."""
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        return unknown_key(str(loc[-1]), allowed_keys(model, loc[:-1]))
    if kind in ("literal_error", "enum"):
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", '"')
        return f"expected {expected}, got {as_written(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {as_written(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, got {as_written(value)}"
    text = error["msg"].removeprefix("Value error, ")
    if text.startswith("Input should be "):
        text = "must be " + text.removeprefix("Input should be ")
    text = text.split(", unable to")[0]  # "..., unable to parse string as an integer"
    if loc and loc[-1] in SECRET_FIELDS:
        return text  # a token is never shown, not even a wrong one
    return f"{text}, got {as_written(value)}"


def unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    guess = f'did you mean "{close[0]}"? ' if close else ""
    listing = f" ({guess}allowed: {', '.join(allowed)})" if allowed else ""
    return f'unknown key "{key}"{listing}'


def allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys of the model found at `loc` inside `model` (list indexes are skipped)."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        nested = _models_in(field.annotation)
        if not nested:
            return []
        current = nested[0]
    return [name for name in current.model_fields if name not in INTERNAL_FIELDS]


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The models an annotation holds, however deep (`Annotated[tuple[Target, ...], ...]`
    inside a union, as `outputs` is)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for part in get_args(annotation) for model in _models_in(part)]


def as_written(value: object) -> str:
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
