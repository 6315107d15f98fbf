"""Promote a sweep's best run (or a run the user names) to be the model of its model directory.

A sweep trains many runs under ``models/<model>/sweeps/<sweep>/<run>/``; consolidation copies the
chosen run's model files into ``models/<model>/`` (the sweep keeps its runs) and swaps them in
atomically (:mod:`knowit_app.experiment.model_dir`), keeping any model it replaces under
``.replaced/<time>/``.

Runs are ranked by the score their checkpoint was chosen by (ModelCheckpoint's
``best_model_score``, as KnowIt does), read from each run's small ``run_result.json``: no
checkpoint is loaded, so a sweep of thousands of runs ranks in well under a second. Only runs
that ended ``finished`` or ``stopped`` (early-terminated, still a valid model), with a
checkpoint, ``model_args.yaml`` and a finite score compete; ties go to the first run name.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.layout import (
    CHECKPOINT_PREFIX,
    CONSOLIDATED_FILE,
    ERROR_FILE,
    LOGS_DIR,
    MODEL_ARGS_FILE,
    RESULT_FILE,
    SWEEP_CONFIG_FILE,
    ExperimentLayout,
    check_name,
)
from knowit_app.experiment.model_dir import locked, new_staging_dir, recover, swap_in

VALID_STATES = ("finished", "stopped")
GOALS = ("minimize", "maximize")
_GOAL_ALIASES = {"minimize": "minimize", "min": "minimize",
                 "maximize": "maximize", "max": "maximize"}


@dataclass(frozen=True)
class RunSummary:
    """What consolidation knows of one run, from its directory listing and run_result.json."""

    name: str
    state: str
    score: float | None
    epochs: int | None
    fit_seconds: float | None
    monitor: str | None = None
    mode: str | None = None
    checkpoint: str | None = None
    has_model_args: bool = False

    @property
    def why_not(self) -> str | None:
        """Why this run cannot be promoted; None when it can."""
        if self.state not in VALID_STATES:
            return self.state
        if self.checkpoint is None:
            return "no checkpoint"
        if not self.has_model_args:
            return f"no {MODEL_ARGS_FILE}"
        if self.score is None or not math.isfinite(self.score):
            return "no finite score"
        return None

    @property
    def eligible(self) -> bool:
        return self.why_not is None


@dataclass
class ConsolidationResult:
    """Which run became the model, with what score, and where a replaced model was kept."""

    sweep: str
    run: str
    score: float
    monitor: str | None
    goal: str
    model_dir: Path
    replaced: Path | None
    changed: bool = True
    ranking: list[RunSummary] = field(default_factory=list)


# --- reading a sweep -----------------------------------------------------------------------

def as_number(value: Any) -> float | None:
    """A JSON value as a float; None for anything that is not a real number (bools too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _summarise(path: Path, names: set[str]) -> RunSummary:
    """Summarise one run directory whose entry names are ``names``."""
    data: dict[str, Any] = {}
    if RESULT_FILE in names:
        try:
            data = json.loads((path / RESULT_FILE).read_text())
            state = str(data.get("state") or "unknown")
        except (OSError, ValueError):
            state = "unreadable"
    else:  # still running, or killed before it could write its result
        state = "failed" if ERROR_FILE in names else "unfinished"
    ckpts = sorted(n for n in names if n.startswith(CHECKPOINT_PREFIX) and n.endswith(".ckpt"))
    named = data.get("best_checkpoint")
    if named in ckpts:
        checkpoint = named
    elif ckpts:  # the newest one, as layout.find_checkpoint picks it
        checkpoint = max(ckpts, key=lambda n: (path / n).stat().st_mtime)
    else:
        checkpoint = None
    epochs = as_number(data.get("epochs"))
    return RunSummary(name=path.name, state=state, score=as_number(data.get("best_score")),
                      epochs=int(epochs) if epochs is not None else None,
                      fit_seconds=as_number(data.get("fit_seconds")),
                      monitor=data.get("monitor"), mode=data.get("mode"),
                      checkpoint=checkpoint, has_model_args=MODEL_ARGS_FILE in names)


def scan_runs(sweep_dir: Path) -> list[RunSummary]:
    """Every run of a sweep, by name: subdirectories that hold a result, checkpoint or args.

    Other entries of a sweep directory (``wandb/``, ``report/``, dot-dirs, files) are skipped.
    """
    runs = []
    with os.scandir(sweep_dir) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            names = set(os.listdir(entry.path))
            if (RESULT_FILE in names or MODEL_ARGS_FILE in names
                    or any(n.startswith(CHECKPOINT_PREFIX) and n.endswith(".ckpt")
                           for n in names)):
                runs.append(_summarise(Path(entry.path), names))
    return sorted(runs, key=lambda r: r.name)


def _sort(runs: list[RunSummary], goal: str) -> list[RunSummary]:
    sign = 1.0 if goal == "minimize" else -1.0
    ranked = sorted((r for r in runs if r.eligible), key=lambda r: (sign * r.score, r.name))
    return ranked + sorted((r for r in runs if not r.eligible), key=lambda r: r.name)


def rank_runs(sweep_dir: Path, goal: str) -> list[RunSummary]:
    """All runs of a sweep, best first; runs that cannot be promoted follow, by name."""
    return _sort(scan_runs(Path(sweep_dir)), check_goal(goal, "goal"))


def check_goal(goal: Any, key: str) -> str:
    """``minimize`` or ``maximize`` (``min``/``max`` accepted), else a ConfigError on ``key``."""
    norm = _GOAL_ALIASES.get(str(goal).strip().lower()) if goal is not None else None
    if norm is None:
        raise ConfigError(key, f"{goal!r} is not a goal; use minimize or maximize")
    return norm


def read_sweep_config(sweep_dir: Path) -> dict[str, Any]:
    """A sweep's ``sweep_config.yaml`` as a dict; {} when absent; KnowitError when not YAML."""
    path = Path(sweep_dir) / SWEEP_CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise KnowitError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return config if isinstance(config, dict) else {}


def read_sweep_metric(sweep_dir: Path) -> tuple[str | None, str | None]:
    """The sweep config's ``metric: {name, goal}``; (None, None) where absent."""
    config = read_sweep_config(sweep_dir)
    metric = config.get("metric") if isinstance(config, dict) else None
    if not isinstance(metric, dict):
        return None, None
    goal = metric.get("goal")
    goal = check_goal(goal, f"{SWEEP_CONFIG_FILE} metric.goal") if goal is not None else None
    name = metric.get("name")
    return (str(name) if name is not None else None), goal


def _resolve_goal(goal: str | None, config_goal: str | None, runs: list[RunSummary]) -> str:
    """The argument, else the sweep config's goal, else the mode the checkpoints were chosen
    by (when the runs agree), else minimize (W&B's and KnowIt's default)."""
    if goal is not None:
        return check_goal(goal, "goal")
    if config_goal is not None:
        return config_goal
    modes = {r.mode for r in runs if r.eligible and r.mode in ("min", "max")}
    if len(modes) == 1:
        return "maximize" if modes.pop() == "max" else "minimize"
    return "minimize"


# --- choosing a run ------------------------------------------------------------------------

def _names(runs: list[RunSummary], limit: int = 5) -> str:
    shown = ", ".join(r.name for r in runs[:limit])
    return shown + (f", ... ({len(runs)} in all)" if len(runs) > limit else "")


def _choose(ranking: list[RunSummary], run: str | None, sweep: str) -> RunSummary:
    ranked = [r for r in ranking if r.eligible]
    if run is not None:
        named = next((r for r in ranking if r.name == run), None)
        valid = f"promotable runs: {_names(ranked)}" if ranked else "no run can be promoted"
        if named is None:
            raise ConfigError("run", f"no run {run!r} in sweep {sweep!r}; {valid}")
        if not named.eligible:
            raise ConfigError("run", f"run {run!r} of sweep {sweep!r} cannot be promoted: "
                                     f"{named.why_not}; {valid}")
        return named
    if not ranked:
        states: dict[str, int] = {}
        for r in ranking:
            states[r.why_not or ""] = states.get(r.why_not or "", 0) + 1
        detail = "; ".join(f"{n} {'run' if n == 1 else 'runs'}: {why}"
                           for why, n in sorted(states.items()))
        raise KnowitError(f"sweep {sweep!r} has no finished run with a checkpoint and a score "
                          f"to promote ({len(ranking)} runs" + (f"; {detail})" if detail
                                                                 else ")"))
    monitors = sorted({r.monitor for r in ranked if r.monitor})
    if len(monitors) > 1:
        raise KnowitError(f"runs of sweep {sweep!r} were scored by different metrics "
                          f"({', '.join(monitors)}), which do not compare; name the run to "
                          "promote with run=<name>")
    return ranked[0]


def _sweep_dir(layout: ExperimentLayout, model_name: str, sweep_name: str) -> Path:
    """The sweep's directory, or a ConfigError that lists what does exist."""
    model_dir = layout.model_dir(model_name)
    sweep_dir = layout.sweep_dir(model_name, sweep_name)
    if sweep_dir.is_dir():
        return sweep_dir
    if not model_dir.is_dir():
        models = sorted(p.parent.name for p in layout.models_dir.glob("*/sweeps") if p.is_dir())
        there = (f"models with sweeps: {', '.join(models)}" if models
                 else "no model there has sweeps")
        raise ConfigError("model_name", f"no model {model_name!r} in {layout.models_dir}; "
                                        f"{there}")
    sweeps_dir = layout.sweeps_dir(model_name)
    sweeps = sorted(p.name for p in sweeps_dir.iterdir()
                    if p.is_dir() and not p.name.startswith(".")) if sweeps_dir.is_dir() else []
    there = f"sweeps there: {', '.join(sweeps)}" if sweeps else "it has no sweeps yet"
    raise ConfigError("sweep", f"no sweep {sweep_name!r} in {sweeps_dir}; {there}")


# --- promoting it --------------------------------------------------------------------------

def _already_holds(model_dir: Path, sweep: str, chosen: RunSummary) -> bool:
    """Whether the model directory already is this run's consolidation (nothing to redo)."""
    try:
        record = json.loads((model_dir / CONSOLIDATED_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("sweep") == sweep
            and record.get("run") == chosen.name and record.get("score") == chosen.score
            and record.get("checkpoint") == chosen.checkpoint
            and (model_dir / str(chosen.checkpoint)).is_file())


def _stage_copy(run_dir: Path, staging: Path, chosen: RunSummary, record: dict[str, Any]) -> None:
    """Copy the run's model files into ``staging`` and write the provenance record."""
    shutil.copy2(run_dir / str(chosen.checkpoint), staging / str(chosen.checkpoint))
    shutil.copy2(run_dir / MODEL_ARGS_FILE, staging / MODEL_ARGS_FILE)
    if (run_dir / RESULT_FILE).is_file():
        shutil.copy2(run_dir / RESULT_FILE, staging / RESULT_FILE)
    if (run_dir / LOGS_DIR).is_dir():
        shutil.copytree(run_dir / LOGS_DIR, staging / LOGS_DIR, symlinks=True)
    (staging / CONSOLIDATED_FILE).write_text(json.dumps(record, indent=2) + "\n")


def consolidate_sweep(exp_dir: str | Path, model_name: str, sweep_name: str, *,
                      run: str | None = None, goal: str | None = None) -> ConsolidationResult:
    """Copy the best run of a sweep (or ``run``) into ``<exp_dir>/models/<model_name>/``.

    ``goal`` overrides the sweep config's ``metric.goal``. The swap is atomic; a model already
    in the model directory moves to ``.replaced/<time>/`` (``result.replaced``). Raises
    ConfigError or KnowitError, with a one-line message, when there is nothing to promote.
    """
    layout = ExperimentLayout(exp_dir)
    sweep_dir = _sweep_dir(layout, model_name, sweep_name)
    model_dir = layout.model_dir(model_name)
    if run is not None:
        check_name("run", run)
    _, config_goal = read_sweep_metric(sweep_dir)
    runs = scan_runs(sweep_dir)
    goal = _resolve_goal(goal, config_goal, runs)
    ranking = _sort(runs, goal)
    chosen = _choose(ranking, run, sweep_name)
    result = ConsolidationResult(sweep=sweep_name, run=chosen.name, score=float(chosen.score or 0),
                                 monitor=chosen.monitor, goal=goal, model_dir=model_dir,
                                 replaced=None, ranking=ranking)
    record = {"sweep": sweep_name, "run": chosen.name, "score": chosen.score,
              "metric": chosen.monitor, "goal": goal, "checkpoint": chosen.checkpoint,
              "chosen_by": "user" if run is not None else "best score",
              "run_dir": f"sweeps/{sweep_name}/{chosen.name}",
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with locked(model_dir):  # no other swap between the check, the copy and the swap
        recover(model_dir)  # an interrupted swap decides which model is there now
        if _already_holds(model_dir, sweep_name, chosen):
            result.changed = False
            return result
        staging = new_staging_dir(model_dir)
        try:
            _stage_copy(sweep_dir / chosen.name, staging, chosen, record)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        result.replaced = swap_in(model_dir, staging)
    return result


def format_table(rows: list[RunSummary], limit: int = 10) -> str:
    """The first ``limit`` rows as a text table, with a line counting the rest."""
    monitors = {r.monitor for r in rows if r.eligible and r.monitor}
    score_head = monitors.pop() if len(monitors) == 1 else "score"
    table = [("rank", "run", "state", score_head, "epochs", "fit_s")]
    rank = 0
    for r in rows[:limit]:
        rank += r.eligible
        table.append((str(rank) if r.eligible else "-", r.name,
                      r.state if r.eligible else str(r.why_not),
                      f"{r.score:.6g}" if r.score is not None else "-",
                      str(r.epochs) if r.epochs is not None else "-",
                      f"{r.fit_seconds:.1f}" if r.fit_seconds is not None else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    right = {0, 3, 4, 5}
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in table]
    ranked = sum(r.eligible for r in rows)
    summary = f"{ranked} of {len(rows)} runs can be promoted"
    if len(rows) > limit:
        summary = f"... {len(rows) - limit} more; " + summary
    return "\n".join([*lines, summary])
