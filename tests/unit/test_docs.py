"""Every YAML block in the README and docs is a config that loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nemowatch.config import Rule, load_config
from nemowatch.config.sidecars import read_sidecar

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)

BLOCKS = [
    pytest.param(match.group(1), id=f"{path.name}#{index}")
    for path in DOCUMENTS
    for index, match in enumerate(BLOCK.finditer(path.read_text(encoding="utf-8")))
]


def test_the_docs_have_yaml_blocks() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS)
def test_each_yaml_block_is_a_valid_config(block: str, tmp_path: Path) -> None:
    if block.startswith("# sidecar: "):  # a sidecar's example: read as the daemon does
        path = tmp_path / block.splitlines()[0].removeprefix("# sidecar: ")
        path.write_text(block, encoding="utf-8")
        rule = Rule(name="clips", inbox=tmp_path, outbox=tmp_path / "out")
        assert read_sidecar(path, rule=rule, engine="local").instructions
        return
    path = tmp_path / "config.yaml"
    path.write_text(block, encoding="utf-8")
    load_config(path)
