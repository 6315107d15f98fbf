"""Wait for a condition, never for a fixed time: tests synchronise on what they can observe."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               failed: Callable[[], str | None] = lambda: None, interval: float = 0.2) -> T:
    """Poll ``predicate`` until it returns something true and return that.

    ``failed`` is asked between polls: a message from it (e.g. "the sweep ended") fails the
    wait at once. ``timeout`` is a deadline against hangs, not a limit on speed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        reason = failed()
        if reason:
            raise AssertionError(f"{reason} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)  # the poll interval: the condition above is what is waited on
