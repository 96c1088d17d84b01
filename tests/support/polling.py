"""Waiting in a test for something another process does: one poll for every test that needs it."""
from __future__ import annotations

import time
from typing import Any, Callable


def poll(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition", every: float = 0.05) -> Any:
    """Call `check()` until it returns something truthy and return that; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError(f"{what}: not met within {timeout}s")
