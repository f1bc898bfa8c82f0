"""YAML read with the line of every key and list item, and where a value was written
(`Origin`), so that every problem names its file and line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError

from nemowatch.errors import ConfigProblem

Loc = tuple[str | int, ...]  # a location in parsed YAML: ("rules", 2, "edit", "aspect")

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


# ---- where things were written ---------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
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

    def within(self, key: str) -> Origin:
        """The origin of the mapping under `key` of this one."""
        return replace(self, node=(*self.node, key), shown=(*self.shown, key))

    def where(self, loc: Loc, seen_from: Origin) -> str:
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
class Document:
    data: object
    lines: dict[Loc, int]


def read_yaml(path: Path, problems: list[ConfigProblem]) -> Document | None:
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
    return Document(data, builder.lines)


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
