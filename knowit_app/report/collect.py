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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import SWEEP_CONFIG_FILE, SWEEP_STATE_FILE
from knowit_app.experiment.model_record import read_model_args
from knowit_app.experiment.runs import (
    STATE_ORDER,
    Run,
    has_sweep_config,
    is_run_dir,
    rank,
    read_run,
    read_sweep_config,
    sweep_metric,
)
from knowit_app.experiment.sweep_state import RunRecord, SweepState

RunRow = Run  # one run as the report shows it (the report's modules know it by this name)
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
class SweepTable:
    """A sweep: its config and its runs (in the order they were started), ranked by score."""

    sweep_dir: Path
    name: str
    method: str | None
    metric: str
    goal: str
    params: list[ParamInfo]
    runs: list[Run]

    @property
    def swept(self) -> list[ParamInfo]:
        """The parameters that take more than one value: the axes of the plots."""
        return [p for p in self.params if p.swept]

    @property
    def best(self) -> Run | None:
        return next((r for r in self.runs if r.rank == 1), None)

    def ranked(self) -> list[Run]:
        """Best run first; runs without a score follow in their original order."""
        scored = sorted((r for r in self.runs if r.rank is not None), key=lambda r: r.rank)
        return scored + [r for r in self.runs if r.rank is None]

    def counts(self) -> dict[str, int]:
        """Runs per state, in a fixed order (finished, stopped, failed, ...)."""
        states = [s for s in STATE_ORDER if any(r.state == s for r in self.runs)]
        states += sorted({r.state for r in self.runs} - set(states))
        return {s: sum(r.state == s for r in self.runs) for s in states}


# --------------------------------------------------------------------------- runs

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_records(sweep_dir: Path) -> list[RunRecord]:
    """The runs of ``sweep_state.json`` (via the locked reader); [] when absent."""
    state = SweepState(sweep_dir)
    if not state.exists():
        return []
    try:
        return state.records()
    except (KeyError, ValueError, TypeError, OSError):
        return state.read_unlocked()  # an odd or read-only state file: read what parses


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
        args = read_model_args(run_dir, sections=())
    except (OSError, KnowitError):  # absent or damaged: the run shows without its values
        return {}
    return {k: v for k in keys if (v := _select(args, k)) is not None}


def _row(run_dir: Path, record: RunRecord | None, metric: str, keys: list[str]) -> Run:
    """A run as the report shows it: its files, what the sweep state says, its curves."""
    run = read_run(run_dir, record, curves=True)
    if record is None:  # a run the state does not list (a lost state file)
        run.params = _params_from_args(run_dir, keys)
    history = [v for v in (record.history if record else []) if _is_number(v)
               and math.isfinite(v)]
    if metric not in run.curves and history:  # no metrics.csv: the state's per-epoch metric
        run.curves[metric] = list(enumerate(float(v) for v in history))
    if run.epochs is None or (run.epochs == 0 and run.curves):
        seen = {e for points in run.curves.values() for e, _ in points}
        run.epochs = max(seen) + 1 if seen else None
    run.fit_seconds = run.fit_seconds or None  # 0: nothing was fitted
    return run


def _orphans(sweep_dir: Path, known: set[str]) -> list[Path]:
    """Run directories the state does not list (a lost state file)."""
    return [path for path in sorted(Path(sweep_dir).iterdir())
            if path.name not in known and not path.name.startswith(".") and path.is_dir()
            and is_run_dir(set(p.name for p in path.iterdir()))]


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
    """Numeric or categorical, log or linear, from the parameter's spec and its values.

    Only two facts of W&B's parameter schema matter here: a named (log) distribution, and a
    single ``value`` (a constant, not swept).
    """
    spec = spec if isinstance(spec, dict) else {}
    dist = str(spec.get("distribution") or ("constant" if "value" in spec else ""))
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
    if not has_sweep_config(sweep_dir) and not SweepState(sweep_dir).exists():
        raise ConfigError("sweep", f"{sweep_dir} is not a sweep directory: it has neither "
                                   f"{SWEEP_CONFIG_FILE} nor {SWEEP_STATE_FILE}")
    config = read_sweep_config(sweep_dir)
    name, goal = sweep_metric(config)
    metric, goal = name or "valid_loss", goal or "minimize"
    specs = config.get("parameters") if isinstance(config.get("parameters"), dict) else {}

    records = read_records(sweep_dir)
    keys = list(specs)
    for record in records:
        keys += [k for k in record.params if k not in keys]
    runs = [_row(sweep_dir / record.name, record, metric, keys) for record in records]
    runs += [_row(path, None, metric, keys)
             for path in _orphans(sweep_dir, {r.name for r in records})]
    scored = [r for r in rank(runs, goal, lambda r: r.scored) if r.scored]
    for position, run in enumerate(scored, start=1):
        run.rank = position

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
