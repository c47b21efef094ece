"""Waiting for what another thread or process does, without timing it.

The timeouts here only turn a hang into a failure: they are generous (a loaded 2-core machine
must never trip them) and no test asserts how long a wait took. What a user relies on is
asserted instead (it stopped, it returned while the writer was stalled, the counters); how fast
something is belongs to bench/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

#: Seconds after which a wait counts as a hang.
HANG = 30.0


def wait_until(condition: Callable[[], Any], timeout: float = HANG, poll: float = 0.01) -> bool:
    """Poll ``condition`` until it holds; False when it still does not after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(poll)
    return True


def finishes(call: Callable[[], T], timeout: float = HANG) -> T:
    """``call()`` on a thread of its own: its result, or its exception raised here; the test
    fails (instead of hanging) when it has not returned after ``timeout``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="finishes", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{call!r} had not returned after {timeout} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


__all__ = ["HANG", "finishes", "wait_until"]
