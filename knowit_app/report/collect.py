"""A sweep directory read into one table: the sweep's config, every run and its curves.

Offline users have no W&B web UI, so everything the report shows comes from what the sweep
left on disk: ``sweep_config.yaml`` (method, metric, parameters), ``sweep_state.json`` (every
run's parameters, state, score and error) and, per run, ``run_result.json`` (epochs, fit time)
and ``lightning_logs/version_*/metrics.csv`` (the per-epoch curves). Any of the per-run files may
be missing (a failed or interrupted run); the table then says less, it never fails.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowit_app.errors import ConfigError
from knowit_app.experiment.consolidate import as_number, read_sweep_config
from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import (
    ERROR_FILE,
    LOGS_DIR,
    MODEL_ARGS_FILE,
    RESULT_FILE,
    SWEEP_CONFIG_FILE,
)

STATE_FILE = "sweep_state.json"
SCORED_STATES = ("finished", "stopped")
STATE_ORDER = ("finished", "stopped", "failed", "running", "pending", "crashed", "killed")
# Distributions W&B samples on a log scale: their axes are log axes too.
LOG_DISTRIBUTIONS = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values",
                     "log_normal", "q_log_normal")
LOG_SPAN = 100.0  # positive numeric values whose max/min reaches this get a log axis
CSV_FIXED = ("state", "score", "epochs", "fit_seconds", "error")


@dataclass
class ParamInfo:
    """How one parameter is shown: numeric (maybe on a log axis) or categorical."""

    key: str
    label: str
    kind: str  # "numeric" or "categorical"
    log: bool = False
    categories: list[Any] = field(default_factory=list)
    bounds: tuple[float, float] | None = None  # the search range for numeric parameters
    grid: list[float] = field(default_factory=list)  # numeric values the sweep config lists
    swept: bool = True  # False for a parameter with a single value


@dataclass
class RunRow:
    """One run as the report shows it."""

    name: str
    params: dict[str, Any]
    state: str
    score: float | None
    epochs: int | None = None
    fit_seconds: float | None = None
    error: str | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    rank: int | None = None

    @property
    def scored(self) -> bool:
        """Whether the run competes for best: finished or stopped, with a finite score."""
        return (self.state in SCORED_STATES and self.score is not None
                and math.isfinite(self.score))


@dataclass
class SweepTable:
    """A sweep: its config and its runs (in the order they were started), ranked by score."""

    sweep_dir: Path
    name: str
    method: str | None
    metric: str
    goal: str
    params: list[ParamInfo]
    runs: list[RunRow]

    @property
    def swept(self) -> list[ParamInfo]:
        """The parameters that take more than one value: the axes of the plots."""
        return [p for p in self.params if p.swept]

    @property
    def best(self) -> RunRow | None:
        return next((r for r in self.runs if r.rank == 1), None)

    def ranked(self) -> list[RunRow]:
        """Best run first; runs without a score follow in their original order."""
        scored = sorted((r for r in self.runs if r.rank is not None), key=lambda r: r.rank)
        return scored + [r for r in self.runs if r.rank is None]

    def counts(self) -> dict[str, int]:
        """Runs per state, in a fixed order (finished, stopped, failed, ...)."""
        states = [s for s in STATE_ORDER if any(r.state == s for r in self.runs)]
        states += sorted({r.state for r in self.runs} - set(states))
        return {s: sum(r.state == s for r in self.runs) for s in states}


# --------------------------------------------------------------------------- small readers

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """The runs of ``sweep_state.json`` as plain dicts (via the locked reader); [] when absent."""
    from knowit_app.sweeps.state import SweepState

    if not (Path(sweep_dir) / STATE_FILE).is_file():
        return []
    try:
        return [r.to_dict() for r in SweepState(sweep_dir).records()]
    except (KeyError, ValueError, TypeError, OSError):
        pass  # an odd or read-only state file: read what we can without the lock
    try:
        data = json.loads((Path(sweep_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return []
    runs = data.get("runs") if isinstance(data, dict) else None
    return [r for r in runs or [] if isinstance(r, dict) and "name" in r]


def _version_number(path: Path) -> int:
    digits = re.sub(r"\D", "", path.parent.name)
    return int(digits) if digits else -1


def read_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every metric of a run's ``metrics.csv`` as (epoch, value) pairs, one value per epoch.

    Lightning's CSV logger writes train and valid values on separate rows of one epoch; the
    last finite value of an epoch wins, and later ``version_*`` directories win over earlier.
    """
    per_metric: dict[str, dict[int, float]] = {}
    paths = sorted(Path(run_dir).glob(f"{LOGS_DIR}/version_*/metrics.csv"), key=_version_number)
    for path in paths:
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


def _read_result(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _error_line(record_error: Any, run_dir: Path) -> str | None:
    """The error's first line: the state's one-liner, else the traceback's last line."""
    if record_error:
        return str(record_error).strip().splitlines()[0] if str(record_error).strip() else None
    try:
        lines = (run_dir / ERROR_FILE).read_text().strip().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[-1].strip() if lines else None


def _select(config: Any, key: str) -> Any:
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _params_from_args(run_dir: Path, keys: Iterable[str]) -> dict[str, Any]:
    """A run's swept values from its ``model_args.yaml``, for runs missing from the state."""
    try:
        args = yaml.safe_load((run_dir / MODEL_ARGS_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {k: v for k in keys if (v := _select(args, k)) is not None}


# --------------------------------------------------------------------------- runs

def _row(sweep_dir: Path, record: dict[str, Any], metric: str) -> RunRow:
    run_dir = sweep_dir / str(record["name"])
    result = _read_result(run_dir)
    state = str(record.get("state") or result.get("state") or "unknown")
    score = as_number(record.get("score"))
    if score is None and state in SCORED_STATES:
        score = as_number(result.get("best_score"))
    curves = read_curves(run_dir)
    history = [v for v in record.get("history") or [] if _is_number(v) and math.isfinite(v)]
    if metric not in curves and history:  # no metrics.csv: the state's per-epoch metric
        curves[metric] = list(enumerate(float(v) for v in history))
    epochs = as_number(result.get("epochs"))
    if epochs is None or (epochs == 0 and curves):
        seen = {e for points in curves.values() for e, _ in points}
        epochs = float(max(seen) + 1) if seen else None
    fit = as_number(result.get("fit_seconds"))
    error = _error_line(record.get("error"), run_dir) if state not in SCORED_STATES else None
    return RunRow(name=str(record["name"]), params=dict(record.get("params") or {}),
                  state=state, score=score, epochs=int(epochs) if epochs is not None else None,
                  fit_seconds=fit if fit else None, error=error, curves=curves)


def _orphans(sweep_dir: Path, known: set[str], keys: list[str]) -> list[dict[str, Any]]:
    """Run directories the state does not list (a lost state file): read from their files."""
    out = []
    for path in sorted(Path(sweep_dir).iterdir()):
        if (path.name in known or path.name.startswith(".") or not path.is_dir()
                or not ((path / RESULT_FILE).exists() or (path / MODEL_ARGS_FILE).exists())):
            continue
        result = _read_result(path)
        state = str(result.get("state") or ("failed" if (path / ERROR_FILE).exists()
                                            else "unknown"))
        out.append({"name": path.name, "params": _params_from_args(path, keys),
                    "state": state, "score": result.get("best_score")})
    return out


def _rank(runs: list[RunRow], goal: str) -> None:
    sign = 1.0 if goal == "minimize" else -1.0
    scored = sorted((r for r in runs if r.scored), key=lambda r: (sign * float(r.score or 0),
                                                                  r.name))
    for position, run in enumerate(scored, start=1):
        run.rank = position


# --------------------------------------------------------------------------- parameters

def _token(value: Any) -> str:
    """A key that keeps True apart from 1 and 0.1 apart from "0.1"."""
    return f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def short_labels(keys: list[str]) -> dict[str, str]:
    """key -> its last dotted part, or the whole key where two keys end alike."""
    leaves = {k: k.rsplit(".", 1)[-1] for k in keys}
    clash = {leaf for leaf in leaves.values() if list(leaves.values()).count(leaf) > 1}
    return {k: (k if leaf in clash else leaf) for k, leaf in leaves.items()}


def classify(key: str, spec: dict[str, Any] | None, observed: list[Any],
             label: str | None = None) -> ParamInfo:
    """Numeric or categorical, log or linear, from the parameter's spec and its values."""
    from knowit_app.sweeps.spec import distribution_of

    spec = spec if isinstance(spec, dict) else {}
    dist = distribution_of(spec) if spec else ""
    listed = list(spec["values"]) if isinstance(spec.get("values"), list) else []
    if "value" in spec:
        listed = [spec["value"]]
    candidates = listed + observed
    bounds = [float(spec[b]) for b in ("min", "max") if _is_number(spec.get(b))]
    # null is a choice of its own (``values: [null, 5]``): such a parameter is categorical
    numeric = bool(candidates or bounds) and all(_is_number(v) for v in candidates)
    if dist == "constant":
        swept = False
    elif listed or not spec:  # a list of values, or a key the sweep config does not name
        swept = len({_token(v) for v in listed + observed}) > 1
    else:  # a distribution: its range is searched, even if only one run was drawn
        swept = True
    label = label or key
    if not numeric:
        categories: dict[str, Any] = {}
        for value in listed + observed:
            categories.setdefault(_token(value), value)
        return ParamInfo(key, label, "categorical", categories=list(categories.values()),
                         swept=swept)
    numbers = [float(v) for v in candidates] + bounds
    lo, hi = min(numbers), max(numbers)
    log = dist in LOG_DISTRIBUTIONS or (lo > 0 and hi / lo >= LOG_SPAN)
    return ParamInfo(key, label, "numeric", log=log and lo > 0, bounds=(lo, hi), swept=swept,
                     grid=sorted({float(v) for v in listed if _is_number(v)}))


# --------------------------------------------------------------------------- the table

def collect_sweep(sweep_dir: Path) -> SweepTable:
    """Read a sweep directory into a :class:`SweepTable`.

    Raises ConfigError when ``sweep_dir`` is not a sweep directory (neither a sweep config nor
    a sweep state in it), KnowitError when its config is not YAML.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError("sweep", f"no sweep directory {sweep_dir}")
    if not (sweep_dir / SWEEP_CONFIG_FILE).is_file() and not (sweep_dir / STATE_FILE).is_file():
        raise ConfigError("sweep", f"{sweep_dir} is not a sweep directory: it has neither "
                                   f"{SWEEP_CONFIG_FILE} nor {STATE_FILE}")
    config = read_sweep_config(sweep_dir)
    metric_cfg = config.get("metric") if isinstance(config.get("metric"), dict) else {}
    metric = str(metric_cfg.get("name") or "valid_loss")
    goal = "maximize" if str(metric_cfg.get("goal", "")).startswith("max") else "minimize"
    specs = config.get("parameters") if isinstance(config.get("parameters"), dict) else {}

    records = read_records(sweep_dir)
    keys = list(specs)
    for record in records:
        keys += [k for k in record.get("params") or {} if k not in keys]
    records += _orphans(sweep_dir, {str(r["name"]) for r in records}, keys)
    runs = [_row(sweep_dir, record, metric) for record in records]
    _rank(runs, goal)

    labels = short_labels(keys)
    params = [classify(k, specs.get(k), [r.params.get(k) for r in runs if k in r.params],
                       labels[k]) for k in keys]
    return SweepTable(sweep_dir=sweep_dir, name=str(config.get("name") or sweep_dir.name),
                      method=config.get("method"), metric=metric, goal=goal, params=params,
                      runs=runs)


# --------------------------------------------------------------------------- runs.csv

def cell(value: Any) -> str:
    """A parameter value as text: numbers in full, None as null, lists and dicts as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_runs_csv(table: SweepTable, path: Path) -> Path:
    """One row per run, in the order the runs were started: name, rank, parameters, outcome."""
    keys = [p.key for p in table.params]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["name", "rank", *keys, *CSV_FIXED])
            for run in table.runs:
                writer.writerow([
                    run.name, run.rank if run.rank is not None else "",
                    *(cell(run.params[k]) if k in run.params else "" for k in keys), run.state,
                    repr(run.score) if run.score is not None else "",
                    run.epochs if run.epochs is not None else "",
                    f"{run.fit_seconds:.3f}" if run.fit_seconds is not None else "",
                    run.error or ""])

    return replace_atomically(Path(path), write)
