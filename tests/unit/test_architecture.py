"""The package's shape: no module imports, however indirectly, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "nemowatch"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in it: at the top, inside
    functions, under TYPE_CHECKING (`from package import submodule` needs the submodule)."""
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in known else base)
            elif isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            graph[name] |= {target for target in targets if target in known and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(imports(modules())) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_language_and_the_config_import_no_engine() -> None:
    graph = imports(modules())
    checked = [
        name
        for name in graph
        if name == "nemowatch.rules" or name.startswith(("nemowatch.config", "nemowatch.language"))
    ]
    assert len(checked) > 10  # the config's and the language's modules, not a misspelling
    for name in checked:
        assert not {target for target in graph[name] if ".engines." in target} - {
            "nemowatch.engines.formats",
            "nemowatch.engines.local.music",  # `check` resolves music as a job would
            "nemowatch.engines.local.speech",  # and asks whether speech to text is there
        }, name


MAX_MODULE_LINES = 700
MAX_CLASS_LINES = 300


def test_no_module_is_over_700_lines_and_no_class_over_300() -> None:
    """Concentration is how a codebase stops being one people can carry on: a module this
    long or a class this long holds more than one concern."""
    too_long = []
    for name, path in sorted(modules().items()):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_long.append(f"class {name}.{node.name}: {size} lines")
    assert too_long == []


def test_the_engine_seam_carries_no_untyped_values() -> None:
    """What crosses the engine seam is JSON or a typed shape: each engine reads its own
    state into classes it owns (`LocalSession`, `NemoSessionState`...)."""
    seam = (PACKAGE / "engines" / "base.py").read_text(encoding="utf-8")
    assert "Any" not in seam
