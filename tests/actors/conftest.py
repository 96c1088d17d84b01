"""One Ray cluster for all actor tests (startup costs seconds)."""
from __future__ import annotations

import pytest
import ray


@pytest.fixture(scope="session")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
