"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nemowatch.ledger import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A fresh ledger in the test's own state folder (a test file may define its own)."""
    ledger = Ledger.in_state_dir(tmp_path / "state")
    yield ledger
    ledger.close()
