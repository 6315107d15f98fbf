"""Who works on a sweep's runs: the owner entries of ``sweep_state.json``.

The state file itself (its format, lock and atomic writes) is
:mod:`knowit_app.experiment.sweep_state`; this module is the sweeper's policy on top of it: a
run whose owner died is rerun.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from knowit_app.experiment.sweep_state import SweepState, find

__all__ = ["SweepState", "find", "owner_alive", "owner_now"]


def owner_now() -> dict[str, Any]:
    """Who works on a run: enough to tell later whether that process is still alive."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}


def owner_alive(owner: dict[str, Any] | None, stale_after_s: float) -> bool:
    """A run's owner is alive if its process exists (same host) or it beat recently."""
    if not owner:
        return False
    if owner.get("host") == socket.gethostname():
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return time.time() - float(owner.get("heartbeat", 0)) < stale_after_s
