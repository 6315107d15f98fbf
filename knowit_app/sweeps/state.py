"""The sweep's record on disk: every run's overrides, state, score and timing.

``<sweep_dir>/sweep_state.json`` is the single source of truth for a sweep, shared by every
process that works on it (a resumed sweep, two terminals, a Slurm array of agents). Each change
is a read-modify-write under an exclusive ``flock`` on ``.sweep.lock``, written to a temporary
file and renamed into place, so a kill at any instant leaves the previous or the next state,
never half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from knowit_app.sweeps.engine import RunRecord

STATE_FILE = "sweep_state.json"
LOCK_FILE = ".sweep.lock"
ACTIVE = "running"
DONE_STATES = ("finished", "failed", "stopped")


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


class SweepState:
    """Locked access to one sweep's ``sweep_state.json``."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.path = self.sweep_dir / STATE_FILE

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1, "runs": [], "owners": {}}
        return json.loads(self.path.read_text())

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Hold the sweep's lock; the yielded dict is written back when the block ends."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(self.sweep_dir / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self._read()
                yield data
                self._write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def records(self) -> list[RunRecord]:
        """A consistent snapshot of every run (taken under the lock)."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(self.sweep_dir / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            try:
                data = self._read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return [RunRecord.from_dict(r) for r in data["runs"]]


def find(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The run dict called ``name`` in a locked state dict."""
    for run in data["runs"]:
        if run["name"] == name:
            return run
    raise KeyError(name)
