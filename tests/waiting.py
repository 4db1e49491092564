"""Waiting for something a background thread or process does: a hang guard with a generous limit,
never a timing assertion."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    check: Callable[[], Any],
    timeout: float = 180.0,
    what: str | Callable[[], str] = "condition",
    interval: float = 0.1,
) -> Any:
    """Poll until `check()` is truthy and return its value; fail after `timeout` seconds, saying
    `what` (called then, when it is a function: the state at the time of the failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
