"""Fixtures shared by every layer of tests. Keep this small."""

from __future__ import annotations

import pytest

from tests.media import Clips


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))
