"""Shared fixtures: the recorded data directory, read in place."""
from __future__ import annotations

from pathlib import Path

import pytest

from config.paths import data_dir


@pytest.fixture(scope="session")
def data() -> Path:
    path = data_dir()
    if not (path / "README.md").exists():
        pytest.fail(f"recorded data not found at {path}: set ARBITRAGE_DATA to ../shared/data")
    return path
