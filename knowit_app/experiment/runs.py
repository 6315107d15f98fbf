"""What a run leaves on disk, read and written in one place.

- :class:`RunResult`: ``run_result.json``, how one training ended (written by training).
- :class:`Run`: what a reader knows of one run directory (its result, checkpoint, arguments,
  error), as consolidation and the sweep report show it.
- :func:`read_curves`: THE ``metrics.csv`` reader; the sweep engine's history and the report's
  curves both come from it, so they agree after a requeue.
- :func:`read_sweep_config`: THE ``sweep_config.yaml`` reader.
- :func:`qualifies`, :func:`rank`, :func:`normalise_goal`: which runs compete, in what order.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.io import write_text_atomically
from knowit_app.experiment.layout import (
    CHECKPOINT_PREFIX,
    ERROR_FILE,
    METRICS_GLOB,
    MODEL_ARGS_FILE,
    RESULT_FILE,
    SWEEP_CONFIG_FILE,
)


class RunState(StrEnum):
    """A run's state. The first seven are W&B's and the sweep state's; the last three are what
    a reader says of a run directory that has no readable result."""

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"  # early-terminated by hyperband: a valid model
    FAILED = "failed"
    CRASHED = "crashed"
    KILLED = "killed"
    UNFINISHED = "unfinished"  # no result yet: running, or killed before it could write one
    UNREADABLE = "unreadable"
    UNKNOWN = "unknown"


SCORED_STATES = (RunState.FINISHED, RunState.STOPPED)
SWEEP_STATES = tuple(RunState)[:7]
STATE_ORDER = (RunState.FINISHED, RunState.STOPPED, RunState.FAILED, RunState.RUNNING,
               RunState.PENDING, RunState.CRASHED, RunState.KILLED)
GOALS = ("minimize", "maximize")
_GOAL_ALIASES = {"minimize": "minimize", "min": "minimize", "maximize": "maximize",
                 "max": "maximize"}


# --------------------------------------------------------------------------- goals and ranks

def normalise_goal(goal: Any, key: str) -> str:
    """``minimize`` or ``maximize`` (``min``/``max`` accepted), else a ConfigError on ``key``."""
    norm = _GOAL_ALIASES.get(str(goal).strip().lower()) if goal is not None else None
    if norm is None:
        raise ConfigError(key, f"{goal!r} is not a goal; use minimize or maximize")
    return norm


def as_number(value: Any) -> float | None:
    """A JSON value as a float; None for anything that is not a real number (bools too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def qualifies(state: Any, score: Any) -> bool:
    """Whether a run competes for best: finished or stopped, with a finite score."""
    number = as_number(score)
    return state in SCORED_STATES and number is not None and math.isfinite(number)


T = TypeVar("T")


def rank(items: Iterable[T], goal: str, competes: Callable[[T], bool]) -> list[T]:
    """Competing items best first (ties: by name), then the others by name.

    Items have ``score`` and ``name``; ``goal`` is normalised here.
    """
    sign = 1.0 if normalise_goal(goal, "goal") == "minimize" else -1.0
    items = list(items)
    best = sorted((i for i in items if competes(i)),
                  key=lambda i: (sign * float(i.score), i.name))  # type: ignore[attr-defined]
    return best + sorted((i for i in items if not competes(i)),
                         key=lambda i: i.name)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- run_result.json

@dataclass
class RunResult:
    """How one training ended and its best monitored score."""

    state: str
    monitor: str
    mode: str
    best_score: float | None
    best_checkpoint: str | None
    epochs: int
    fit_seconds: float
    started: float
    ended: float
    reason: str | None = None  # why there is no score (failed, or the score was not finite)

    def write(self, out_dir: Path) -> Path:
        """Write ``run_result.json`` atomically (a reader never sees half a file).

        Always strict JSON: a non-finite score (which ``json`` would write as the non-JSON
        ``NaN``/``Infinity``) is written as null, with the value it had in ``reason``.
        """
        data = {**asdict(self), "state": str(self.state)}
        score = as_number(self.best_score)
        if self.best_score is not None and (score is None or not math.isfinite(score)):
            data["best_score"] = None
            data["reason"] = self.reason or f"the best {self.monitor or 'score'} was " \
                                            f"{self.best_score}, not a finite number"
        return write_text_atomically(Path(out_dir) / RESULT_FILE,
                                     json.dumps(data, indent=2, allow_nan=False) + "\n")

    @classmethod
    def read(cls, out_dir: Path) -> RunResult:
        """Read ``run_result.json``; OSError when absent, ValueError when not one."""
        data = json.loads((Path(out_dir) / RESULT_FILE).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{Path(out_dir) / RESULT_FILE} holds no result")
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    @property
    def qualifies(self) -> bool:
        return qualifies(self.state, self.best_score)


def failed_result(started: float, ended: float, reason: str | None = None) -> RunResult:
    """The result a failed job leaves, so its outcome is on disk even without its sweeper."""
    return RunResult(state=RunState.FAILED, monitor="", mode="", best_score=None,
                     best_checkpoint=None, epochs=0, fit_seconds=0.0, started=started,
                     ended=ended, reason=reason)


# --------------------------------------------------------------------------- error.txt

def write_error(run_dir: Path, exc: BaseException, *, replace: bool = True) -> None:
    """Keep a failed run's traceback in ``error.txt`` (``replace=False``: keep an earlier one)."""
    path = Path(run_dir) / ERROR_FILE
    if not replace and path.exists():
        return
    write_text_atomically(path, "".join(traceback.format_exception(type(exc), exc,
                                                                   exc.__traceback__)))


def error_line(run_dir: Path) -> str | None:
    """The last line of a run's traceback (the exception), None without one."""
    try:
        lines = (Path(run_dir) / ERROR_FILE).read_text().strip().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[-1].strip() if lines else None


# --------------------------------------------------------------------------- metrics.csv

def _version_number(path: Path) -> int:
    digits = re.sub(r"\D", "", path.parent.name)
    return int(digits) if digits else -1


def read_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every metric of a run's ``metrics.csv`` files as (epoch, value) pairs, one per epoch.

    Lightning's CSV logger writes train and valid values on separate rows of one epoch, and a
    requeued run writes a new ``version_<n>`` that repeats the epochs since its last checkpoint:
    the last finite value of an epoch wins, and versions count in numeric order (10 after 9).
    """
    per_metric: dict[str, dict[int, float]] = {}
    for path in sorted(Path(run_dir).glob(METRICS_GLOB), key=_version_number):
        try:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        for index, row in enumerate(rows):
            try:
                epoch = int(float(row.get("epoch") or index))
            except ValueError:
                continue
            for column, text in row.items():
                if column in (None, "epoch", "step") or not text:
                    continue
                try:
                    value = float(text)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(value):
                    per_metric.setdefault(column, {})[epoch] = value
    return {k: sorted(v.items()) for k, v in per_metric.items()}


def metric_history(run_dir: Path, metric: str) -> list[float]:
    """``metric`` per epoch, in epoch order (what hyperband and bayes see of a run)."""
    return [value for _, value in read_curves(run_dir).get(metric, [])]


# --------------------------------------------------------------------------- sweep_config.yaml

def read_sweep_config(sweep_dir: Path) -> dict[str, Any]:
    """A sweep's ``sweep_config.yaml`` as a dict; {} when absent.

    A damaged file (not YAML, empty, not a mapping) is a KnowitError naming it: it is the
    sweep's definition, so it is never guessed or silently rewritten.
    """
    path = Path(sweep_dir) / SWEEP_CONFIG_FILE
    if not path.exists():
        return {}
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _damaged_config(path, f"not YAML: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise KnowitError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(config, dict) or not config:
        why = "empty" if not config else f"a {type(config).__name__}, not a mapping"
        raise _damaged_config(path, why)
    return config


def _damaged_config(path: Path, why: str) -> KnowitError:
    return KnowitError(f"{path} is damaged ({why}); it records the search its sweep was "
                       "started with: restore it, or delete it to go on with the search given "
                       "now, or start a sweep under another sweep.name")


def write_sweep_config(sweep_dir: Path, config: Mapping[str, Any]) -> Path:
    """Write the resolved W&B sweep config of a sweep."""
    return write_text_atomically(Path(sweep_dir) / SWEEP_CONFIG_FILE,
                                 yaml.safe_dump(dict(config), sort_keys=False))


def has_sweep_config(sweep_dir: Path) -> bool:
    return (Path(sweep_dir) / SWEEP_CONFIG_FILE).is_file()


def sweep_metric(config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A sweep config's ``metric: {name, goal}``, the goal normalised; None where absent."""
    metric = config.get("metric")
    if not isinstance(metric, dict):
        return None, None
    goal = metric.get("goal")
    goal = normalise_goal(goal, f"{SWEEP_CONFIG_FILE} metric.goal") if goal is not None else None
    name = metric.get("name")
    return (str(name) if name is not None else None), goal


# --------------------------------------------------------------------------- a run directory

@dataclass
class Run:
    """One run as readers show it: what its files say, plus what the sweep state adds."""

    name: str
    state: str
    score: float | None
    epochs: int | None = None
    fit_seconds: float | None = None
    monitor: str | None = None
    mode: str | None = None
    checkpoint: str | None = None  # the checkpoint's file name
    has_model_args: bool = False
    error: str | None = None  # one line, for runs that did not qualify
    params: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    rank: int | None = None

    @property
    def scored(self) -> bool:
        """Whether the run competes for best: finished or stopped, with a finite score."""
        return qualifies(self.state, self.score)

    @property
    def why_not(self) -> str | None:
        """Why this run cannot become the model; None when it can."""
        if self.state not in SCORED_STATES:
            return str(self.state)
        if self.checkpoint is None:
            return "no checkpoint"
        if not self.has_model_args:
            return f"no {MODEL_ARGS_FILE}"
        if not self.scored:
            return "no finite score"
        return None

    @property
    def promotable(self) -> bool:
        return self.why_not is None


def _checkpoint(run_dir: Path, names: set[str], named: Any) -> str | None:
    ckpts = sorted(n for n in names if n.startswith(CHECKPOINT_PREFIX) and n.endswith(".ckpt"))
    if named in ckpts:
        return str(named)
    if ckpts:  # none named: the newest one
        return max(ckpts, key=lambda n: (run_dir / n).stat().st_mtime)
    return None


def is_run_dir(names: set[str]) -> bool:
    """Whether a directory with these entries is a run: a result, checkpoint or arguments."""
    return (RESULT_FILE in names or MODEL_ARGS_FILE in names
            or any(n.startswith(CHECKPOINT_PREFIX) and n.endswith(".ckpt") for n in names))


def read_run(run_dir: Path, record: Any = None, *, curves: bool = False) -> Run:
    """Read one run directory (which may be missing or half-written: then it says less).

    ``record`` (a sweep-state entry with ``state``, ``score``, ``params``, ``error``) knows a
    sweep run's state best, since the run may still be going; ``curves``: read metrics.csv.
    """
    run_dir = Path(run_dir)
    try:
        names = set(os.listdir(run_dir))
    except OSError:
        names = set()
    data: dict[str, Any] = {}
    if RESULT_FILE in names:
        try:
            data = json.loads((run_dir / RESULT_FILE).read_text())
            data = data if isinstance(data, dict) else {}
            state = str(data.get("state") or RunState.UNKNOWN)
        except (OSError, ValueError):
            state = RunState.UNREADABLE
    else:
        state = RunState.FAILED if ERROR_FILE in names else RunState.UNFINISHED
    score = as_number(data.get("best_score"))
    params: dict[str, Any] = {}
    recorded_error = None
    if record is not None:
        state = str(record.state or state)
        if as_number(record.score) is not None:
            score = as_number(record.score)
        elif state not in SCORED_STATES:
            score = None
        params = dict(record.params or {})
        recorded_error = record.error
    epochs = as_number(data.get("epochs"))
    error = None
    if state not in SCORED_STATES:
        text = str(recorded_error or "").strip()
        error = text.splitlines()[0] if text else error_line(run_dir)
    return Run(name=run_dir.name, state=state, score=score,
               epochs=int(epochs) if epochs is not None else None,
               fit_seconds=as_number(data.get("fit_seconds")), monitor=data.get("monitor"),
               mode=data.get("mode"),
               checkpoint=_checkpoint(run_dir, names, data.get("best_checkpoint")),
               has_model_args=MODEL_ARGS_FILE in names, error=error, params=params,
               curves=read_curves(run_dir) if curves else {})


def scan_runs(sweep_dir: Path) -> list[Run]:
    """Every run directory of a sweep, by name (``wandb/``, ``report/``, dot-dirs skipped)."""
    runs = []
    with os.scandir(sweep_dir) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if is_run_dir(set(os.listdir(entry.path))):
                runs.append(read_run(Path(entry.path)))
    return sorted(runs, key=lambda r: r.name)
