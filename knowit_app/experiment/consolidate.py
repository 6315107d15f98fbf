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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.io import write_text_atomically
from knowit_app.experiment.layout import (
    CONSOLIDATED_FILE,
    LOGS_DIR,
    MODEL_ARGS_FILE,
    RESULT_FILE,
    SWEEPS_DIR,
    ExperimentLayout,
    check_name,
    named_dirs,
)
from knowit_app.experiment.model_dir import locked, new_staging_dir, recover, swap_in
from knowit_app.experiment.runs import (
    Run,
    normalise_goal,
    rank,
    read_sweep_config,
    scan_runs,
    sweep_metric,
)


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
    ranking: list[Run] = field(default_factory=list)


def rank_runs(sweep_dir: Path, goal: str) -> list[Run]:
    """All runs of a sweep, best first; runs that cannot be promoted follow, by name."""
    return rank(scan_runs(Path(sweep_dir)), goal, lambda r: r.promotable)


def _resolve_goal(goal: str | None, config_goal: str | None, runs: list[Run]) -> str:
    """The argument, else the sweep config's goal, else the mode the checkpoints were chosen
    by (when the runs agree), else minimize (W&B's and KnowIt's default)."""
    if goal is not None:
        return normalise_goal(goal, "goal")
    if config_goal is not None:
        return config_goal
    modes = {r.mode for r in runs if r.promotable and r.mode in ("min", "max")}
    if len(modes) == 1:
        return normalise_goal(modes.pop(), "goal")
    return "minimize"


# --- choosing a run ------------------------------------------------------------------------

def _names(runs: list[Run], limit: int = 5) -> str:
    shown = ", ".join(r.name for r in runs[:limit])
    return shown + (f", ... ({len(runs)} in all)" if len(runs) > limit else "")


def _choose(ranking: list[Run], run: str | None, sweep: str) -> Run:
    ranked = [r for r in ranking if r.promotable]
    if run is not None:
        named = next((r for r in ranking if r.name == run), None)
        valid = f"promotable runs: {_names(ranked)}" if ranked else "no run can be promoted"
        if named is None:
            raise ConfigError("run", f"no run {run!r} in sweep {sweep!r}; {valid}")
        if not named.promotable:
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
    sweeps = named_dirs(sweeps_dir)
    there = f"sweeps there: {', '.join(sweeps)}" if sweeps else "it has no sweeps yet"
    raise ConfigError("sweep", f"no sweep {sweep_name!r} in {sweeps_dir}; {there}")


# --- promoting it --------------------------------------------------------------------------

def write_consolidation_record(model_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``consolidated_from.json``: which sweep run the model is a copy of, and why."""
    return write_text_atomically(Path(model_dir) / CONSOLIDATED_FILE,
                                 json.dumps(record, indent=2) + "\n")


def _already_holds(model_dir: Path, sweep: str, chosen: Run) -> bool:
    """Whether the model directory already is this run's consolidation (nothing to redo)."""
    try:
        record = json.loads((model_dir / CONSOLIDATED_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("sweep") == sweep
            and record.get("run") == chosen.name and record.get("score") == chosen.score
            and record.get("checkpoint") == chosen.checkpoint
            and (model_dir / str(chosen.checkpoint)).is_file())


def _stage_copy(run_dir: Path, staging: Path, chosen: Run, record: dict[str, Any]) -> None:
    """Copy the run's model files into ``staging`` and write the provenance record."""
    shutil.copy2(run_dir / str(chosen.checkpoint), staging / str(chosen.checkpoint))
    shutil.copy2(run_dir / MODEL_ARGS_FILE, staging / MODEL_ARGS_FILE)
    if (run_dir / RESULT_FILE).is_file():
        shutil.copy2(run_dir / RESULT_FILE, staging / RESULT_FILE)
    if (run_dir / LOGS_DIR).is_dir():
        shutil.copytree(run_dir / LOGS_DIR, staging / LOGS_DIR, symlinks=True)
    write_consolidation_record(staging, record)


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
    _, config_goal = sweep_metric(read_sweep_config(sweep_dir))
    runs = scan_runs(sweep_dir)
    goal = _resolve_goal(goal, config_goal, runs)
    ranking = rank(runs, goal, lambda r: r.promotable)
    chosen = _choose(ranking, run, sweep_name)
    result = ConsolidationResult(sweep=sweep_name, run=chosen.name, score=float(chosen.score or 0),
                                 monitor=chosen.monitor, goal=goal, model_dir=model_dir,
                                 replaced=None, ranking=ranking)
    record = {"sweep": sweep_name, "run": chosen.name, "score": chosen.score,
              "metric": chosen.monitor, "goal": goal, "checkpoint": chosen.checkpoint,
              "chosen_by": "user" if run is not None else "best score",
              "run_dir": f"{SWEEPS_DIR}/{sweep_name}/{chosen.name}",
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
