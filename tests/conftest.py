"""Shared fixtures: the recorded data directory, read in place; one Ray cluster for every Ray test."""
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


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster for all tests that use real actors (tests/actors, tests/supervisors): startup costs seconds."""
    import ray  # here, so test runs without Ray tests do not pay for importing it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
