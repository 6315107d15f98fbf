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
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from knowit_app.errors import KnowitError
from knowit_app.experiment.io import locked, write_text_atomically
from knowit_app.experiment.layout import (
    ERROR_FILE,
    HYDRA_DIR,
    RESULT_FILE,
    SWEEP_LOCK,
    SWEEP_STATE_FILE,
)
from knowit_app.experiment.runs import (
    SWEEP_STATES,
    RunResult,
    RunState,
    error_line,
    is_run_dir,
    metric_history,
)


def _plain(value: Any) -> Any:
    """numpy scalars (what the ``sweeps`` engine hands back) as plain numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot keep a {type(value).__name__} in a sweep record")


def _strict(value: Any) -> Any:
    """``value`` with every NaN or infinity as None, so the state file is always strict JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if not isinstance(value, (str, bool, int)) and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(data: Any) -> str:
    return json.dumps(_strict(data), indent=1, default=_plain, allow_nan=False)


class DamagedState(KnowitError, ValueError):
    """``sweep_state.json`` is not a sweep state (truncated, empty or edited by hand)."""


def parse_state(text: str) -> dict[str, Any]:
    """A state file's contents, checked; ValueError saying what is wrong with it."""
    if not text.strip():
        raise ValueError("empty")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    if not isinstance(data.get("runs"), list):
        raise ValueError("it has no list of runs")
    data.setdefault("owners", {})
    if not isinstance(data["owners"], dict):
        raise ValueError("its owners are not an object")
    for run in data["runs"]:
        if not isinstance(run, dict):
            raise ValueError("a run that is not an object")
        try:
            RunRecord.from_dict(run)
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(run["name"], str) or run.get("state", "pending") not in SWEEP_STATES \
                or not isinstance(run.get("overrides", []), list):
            raise ValueError(f"run {run['name']!r} is not a run record")
    return data


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
    if result is None:
        return {"state": RunState.FAILED.value, "score": None,
                "error": error or f"no {RESULT_FILE} was written"}
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
        try:
            return parse_state(self._text())
        except ValueError as exc:
            raise DamagedState(f"{self.path} is damaged ({exc}); starting the sweep again "
                               "rebuilds it from its run dirs") from None

    def _text(self) -> str:
        try:
            return self.path.read_text()
        except OSError as exc:  # a directory in its place, no permission: one line, not a trace
            raise KnowitError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def lock(self) -> AbstractContextManager[None]:
        """The sweep's lock alone (re-entrant): for steps on other sweep files that must not
        interleave with another sweeper's."""
        return locked(self.sweep_dir / SWEEP_LOCK)

    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Hold the sweep's lock; the yielded dict is written back when the block ends."""
        with locked(self.sweep_dir / SWEEP_LOCK):
            data = self._read()
            yield data
            write_text_atomically(self.path, _dumps(data))

    def recover(self, rebuild: Callable[[], list[RunRecord]]) -> tuple[Path, str] | None:
        """If the state file is damaged, rebuild it (``rebuild()``: the runs as their run dirs
        tell them) and keep the damaged file beside it as ``sweep_state.json.corrupt-<time>``.

        Returns (the kept copy, what was wrong), or None when the file was fine or absent.
        Every run's outcome is also in its run dir, so nothing finished is lost or rerun; what
        is lost are the owners of running runs, which are rerun like interrupted ones.
        """
        with locked(self.sweep_dir / SWEEP_LOCK):
            if not self.path.exists():
                return None
            try:
                parse_state(self._text())
                return None
            except ValueError as exc:
                why = str(exc)
            data = {"version": 1, "runs": [r.to_dict() for r in rebuild()], "owners": {}}
            stamp = time.strftime("%Y%m%d-%H%M%S")
            kept = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            number = 1
            while kept.exists():
                number += 1
                kept = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{number}")
            shutil.copyfile(self.path, kept)  # the damaged file stays until the new one is in
            write_text_atomically(self.path, _dumps(data))
        return kept, why

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


# ``hydra.*`` overrides of the invocation that launched a job, which Hydra records in every
# job's hydra.yaml beside the job's own; a relaunch takes them from its own invocation.
_INVOCATION_OVERRIDES = ("hydra.mode=", "hydra.sweeper.", "hydra.launcher.", "hydra/")


def read_job_overrides(run_dir: Path) -> list[str] | None:
    """The overrides the sweeper launched a run's job with (``.hydra/overrides.yaml`` for the
    task, ``.hydra/hydra.yaml`` for ``hydra.*``); None when the run dir does not record them."""
    hydra_dir = Path(run_dir) / HYDRA_DIR
    try:
        task = yaml.safe_load((hydra_dir / "overrides.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(task, list):
        return None
    try:
        hydra = yaml.safe_load((hydra_dir / "hydra.yaml").read_text())
        own = hydra["hydra"]["overrides"]["hydra"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        own = []
    own = [str(o) for o in (own if isinstance(own, list) else [])]
    return [*(o for o in own if not o.lstrip("+~").startswith(_INVOCATION_OVERRIDES)),
            *(str(o) for o in task)]


def rebuild_records(sweep_dir: Path, metric: str,
                    params_of: Callable[[list[str]], dict[str, Any]]) -> list[RunRecord]:
    """Every run of a sweep as its run directory tells it, for a damaged state file.

    The state comes from the run's ``run_result.json`` or ``error.txt`` (a run with neither
    was interrupted: ``running`` without an owner, so it is rerun), the overrides from what
    Hydra recorded in its ``.hydra/`` and the parameters from those (``params_of``).
    """
    records = []
    with os.scandir(sweep_dir) as entries:
        dirs = sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("."))
    for run_dir in dirs:
        names = set(os.listdir(run_dir))
        overrides = read_job_overrides(run_dir)
        if overrides is None and not is_run_dir(names):
            continue  # wandb/, report/: not runs
        try:
            result: RunResult | None = RunResult.read(run_dir)
        except (OSError, ValueError, TypeError):
            result = None
        if result is not None:
            outcome = outcome_of(result, run_dir, metric)
        elif ERROR_FILE in names:
            outcome = {"state": RunState.FAILED.value, "score": None,
                       "error": error_line(run_dir) or "failed"}
        elif overrides is None:
            outcome = {"state": RunState.FAILED.value, "score": None,
                       "error": "interrupted, and its run dir does not record its overrides"}
        else:
            outcome = {"state": RunState.RUNNING.value, "score": None}
        started = result.started if result is not None else run_dir.stat().st_mtime
        records.append(RunRecord(name=run_dir.name, params=params_of(overrides or []),
                                 overrides=overrides or [], started=started,
                                 ended=result.ended if result is not None else None,
                                 **outcome))
    return records


def find(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The run dict called ``name`` in a locked state dict."""
    for run in data["runs"]:
        if run["name"] == name:
            return run
    raise KeyError(name)
