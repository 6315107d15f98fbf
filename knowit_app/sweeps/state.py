"""Who works on a sweep's runs: the owner entries of ``sweep_state.json``.

The state file itself (its format, lock and atomic writes) is
:mod:`knowit_app.experiment.sweep_state`; this module is the sweeper's policy on top of it: a
run whose owner died is rerun.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from knowit_app.experiment.sweep_state import SweepState, find

__all__ = ["SweepState", "find", "heartbeat", "owner_alive", "owner_now",
           "params_from_overrides"]

log = logging.getLogger("knowit_app.sweep")


def params_from_overrides(overrides: list[str], keys: Collection[str]) -> dict[str, Any]:
    """A run's swept values read back from the overrides it was launched with.

    The sweeper writes each value in Hydra's grammar so that Hydra reads back the value the
    engine proposed (``naming.override_value``); Hydra's own parser reads it back here.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    params: dict[str, Any] = {}
    for text in overrides:
        try:
            override = parser.parse_overrides([text])[0]
        except Exception:  # Hydra raises its own error types for text it cannot parse
            continue
        if override.key_or_group in keys:
            params[override.key_or_group] = override.value()
    return params


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


@contextmanager
def heartbeat(state: SweepState, names: Collection[str], stale_after_s: float) -> Iterator[None]:
    """Refresh this process's owner heartbeat of ``names`` while the block runs.

    Another host cannot see whether our process lives, only how recently it beat: without a
    refresh, a run longer than ``stale_after_min`` looks dead there and would be rerun.
    """
    stop = threading.Event()
    interval = max(1.0, min(60.0, stale_after_s / 4))

    def beat() -> None:
        while not stop.wait(interval):
            try:
                with state.locked() as data:
                    for name in names:
                        owner = data["owners"].get(name)
                        if owner and owner.get("pid") == os.getpid() and \
                                owner.get("host") == socket.gethostname():
                            owner["heartbeat"] = time.time()
            except Exception as exc:  # a missed beat only risks a rerun; never stop the sweep
                log.warning("could not refresh the sweep's heartbeat: %s", exc)

    thread = threading.Thread(target=beat, name="sweep-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
