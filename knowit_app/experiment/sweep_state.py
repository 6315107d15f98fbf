"""A sweep's record on disk: ``sweep_state.json``, every run's overrides, state and score.

The state file is the single source of truth for a sweep, shared by every process that works
on it (a resumed sweep, two terminals, a Slurm array of agents). Each change is a
read-modify-write under the sweep's lock, written with the one atomic write, so a kill at any
instant leaves the previous or the next state, never half a file.

A :class:`RunRecord` differs from a run's own ``run_result.json`` (:class:`~.runs.RunResult`):
it exists before the run has a directory (pending, running), and holds what only the sweep
knows (the parameters and overrides it chose, the metric history the engine reads). Its
outcome is taken from the run's result in one place, :func:`outcome_of`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from knowit_app.experiment.io import locked, write_text_atomically
from knowit_app.experiment.layout import SWEEP_LOCK, SWEEP_STATE_FILE
from knowit_app.experiment.runs import RunResult, RunState, metric_history


def _plain(value: Any) -> Any:
    """numpy scalars (what the ``sweeps`` engine hands back) as plain numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot keep a {type(value).__name__} in a sweep record")


@dataclass
class RunRecord:
    """One run of a sweep, as the controller and the sweep's state file know it.

    ``history`` holds the sweep metric per epoch; ``score`` is the run's final score (the best
    checkpoint's monitored value), None until there is one.
    """

    name: str
    params: dict[str, Any]
    state: str = RunState.PENDING
    score: float | None = None
    history: list[float] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (plain Python values; NaN stays a float, which ``json`` writes as NaN)."""
        return json.loads(json.dumps(asdict(self), default=_plain))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Read what :meth:`to_dict` wrote; keys it does not know are ignored."""
        missing = [k for k in ("name", "params") if k not in data]
        if missing:
            raise ValueError(f"a run record needs {' and '.join(missing)}; got keys "
                             f"{sorted(data)}")
        known = {f.name for f in fields(cls)}
        values = {k: copy.deepcopy(v) for k, v in data.items() if k in known}
        values["params"] = dict(values["params"])
        values["history"] = list(values.get("history") or [])
        values["overrides"] = list(values.get("overrides") or [])
        return cls(**values)


def outcome_of(result: RunResult | None, run_dir: Path, metric: str,
               error: str | None = None) -> dict[str, Any]:
    """A record's outcome fields (state, score, error, history) from a run's result.

    A run that returned without a finite score failed: its error is ``error``, else the
    traceback's last line, else what is missing.
    """
    from knowit_app.experiment.runs import error_line

    if result is None:
        return {"state": RunState.FAILED.value, "score": None,
                "error": error or "no run_result.json was written"}
    if not result.qualifies:
        return {"state": RunState.FAILED.value, "score": None,
                "error": error or error_line(run_dir)
                or f"no finite score ({result.best_score})"}
    return {"state": str(result.state), "score": float(result.best_score),  # type: ignore
            "history": metric_history(run_dir, metric)}


class SweepState:
    """Locked access to one sweep's ``sweep_state.json``."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.path = self.sweep_dir / SWEEP_STATE_FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1, "runs": [], "owners": {}}
        return json.loads(self.path.read_text())

    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Hold the sweep's lock; the yielded dict is written back when the block ends."""
        with locked(self.sweep_dir / SWEEP_LOCK):
            data = self._read()
            yield data
            write_text_atomically(self.path, json.dumps(data, indent=1, default=_plain))

    def records(self) -> list[RunRecord]:
        """A consistent snapshot of every run (taken under the lock)."""
        with locked(self.sweep_dir / SWEEP_LOCK):
            data = self._read()
        return [RunRecord.from_dict(r) for r in data["runs"]]

    def read_unlocked(self) -> list[RunRecord]:
        """Every run that parses, without the lock: for read-only sweeps (a copied report)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        runs = data.get("runs") if isinstance(data, dict) else None
        out = []
        for run in runs or []:
            try:
                out.append(RunRecord.from_dict(run))
            except (ValueError, TypeError, AttributeError):
                continue
        return out


def find(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The run dict called ``name`` in a locked state dict."""
    for run in data["runs"]:
        if run["name"] == name:
            return run
    raise KeyError(name)
