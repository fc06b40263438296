"""Waiting, bounded, for what another process does (a worker delivering, a server taking a playbook)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = 15.0, interval: float = 0.05) -> T:
    """`check()`'s first truthy answer; AssertionError naming `what` if none comes within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)
