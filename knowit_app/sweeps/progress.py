"""What a sweep prints: one line per run start and end, the sweep's progress, the sync hint.

A sweep of ten runs used to print some twenty lines of W&B chatter and a long override line
per run. Unless ``hydra.sweeper.verbose=true``, W&B is silent, Hydra's launch lines and each
run's training lines go only to the run's ``app.log`` (Hydra's job log), and this module prints
``start``/``done`` lines with the sweep's progress: runs done of the planned total, the best so
far, the time spent and an estimate of the rest. Worker processes send their events here
through a pipe (:class:`PipeProgress`); the sweeper's process prints them.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knowit_app.experiment.runs import RunState
from knowit_app.sweeps.plan import SweepPlan, grid_size

# The in-process launcher's lines ("Launching 1 jobs locally", "#0 : <every override>").
LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher",)


def quiet_overrides(verbose: bool) -> list[str]:
    """Job overrides that keep a run's INFO lines in its ``app.log`` but off the console."""
    return [] if verbose else ["++hydra.job_logging.handlers.console.level=WARNING"]


def quiet_down(verbose: bool) -> None:
    """Silence W&B's banner, run history and sync hints, and the launcher's override lines.

    W&B reads ``WANDB_SILENT`` at every ``wandb.init``; a user's own setting wins.
    """
    if verbose:
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    for name in LAUNCHER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def planned_runs(plan: SweepPlan, count: int | None, records: Sequence[Any]) -> int | None:
    """How many runs this invocation will start, None when only the controller knows."""
    spec = plan.spec
    rerun = sum(str(r.state) == RunState.RUNNING for r in records)
    left: int | None
    if spec.method == "grid":
        total = grid_size(spec) if spec.run_cap is None else min(grid_size(spec), spec.run_cap)
        left = max(0, total - len(records)) + rerun
    else:
        left = None if spec.run_cap is None else max(0, spec.run_cap - len(records)) + rerun
    if count is None:
        return left
    return int(count) if left is None else min(int(count), left)


def clock(seconds: float) -> str:
    """``1:02:03`` or ``2:05``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ConsoleProgress:
    """Prints the sweep's run lines and progress (in the sweeper's process only)."""

    def __init__(self, plan: SweepPlan, total: int | None, parallel: int,
                 records: Sequence[Any], stream: Any = None) -> None:
        self.metric = plan.spec.metric_name
        self.minimize = plan.spec.goal != "maximize"
        self.sweep_dir = plan.sweep_dir
        self.wandb_mode = plan.controller.wandb_mode
        self.total = total
        self.parallel = max(1, parallel)
        self.stream = stream
        self.began = time.time()
        self.done = 0
        self.run_seconds: list[float] = []
        self.starts: dict[str, float] = {}
        self.best: tuple[float, str] | None = None
        for r in records:
            if r.score is not None and str(r.state) in (RunState.FINISHED, RunState.STOPPED):
                self._consider(float(r.score), r.name)

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def _consider(self, score: float, name: str) -> None:
        if not math.isfinite(score):
            return
        if self.best is None or (score < self.best[0] if self.minimize else score > self.best[0]):
            self.best = (score, name)

    # the events, from this process or (as tuples) from a worker's pipe
    def event(self, kind: str, *args: Any) -> None:
        getattr(self, kind)(*args)

    def started(self, name: str, at: float | None = None) -> None:
        self.starts[name] = at or time.time()
        self._print(f"start {name}")

    def ended(self, name: str, update: dict[str, Any], at: float | None = None) -> None:
        at = at or time.time()
        seconds = at - self.starts.pop(name, at)
        self.done += 1
        self.run_seconds.append(seconds)
        state, score = update.get("state"), update.get("score")
        if score is not None and state in (RunState.FINISHED, RunState.STOPPED):
            self._consider(float(score), name)
            what = f"{self.metric}={float(score):.4g}" + (" (stopped early)"
                                                          if state == RunState.STOPPED else "")
        else:
            what = f"{state}: {update.get('error') or 'no score'}"
        self._print(f"done  {name}: {what} in {seconds:.1f} s")
        self._print(self.progress_line(at))

    def progress_line(self, now: float | None = None) -> str:
        """``[3/10] best valid_loss=0.0759 (name), 1:02 elapsed, about 2:05 left``."""
        elapsed = (now or time.time()) - self.began
        total = "?" if self.total is None else str(self.total)
        parts = [f"[{self.done}/{total}]"]
        if self.best is not None:
            parts.append(f"best {self.metric}={self.best[0]:.4g} ({self.best[1]}),")
        parts.append(f"{clock(elapsed)} elapsed")
        if self.total is not None and self.done and self.total > self.done:
            rate = elapsed / self.done  # wall seconds per finished run, parallel runs included
            parts[-1] += f", about {clock(rate * (self.total - self.done))} left"
        return " ".join(parts)

    def finish(self, config: Any = None) -> None:
        """Restore the sweeper's own logging (a job's quiet console would hide the summary),
        then say where the offline W&B runs are and how to upload them."""
        if config is not None:
            from hydra.core.utils import configure_log

            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
        wandb_dir = Path(self.sweep_dir) / "wandb"
        if self.wandb_mode == "offline" and wandb_dir.is_dir():
            self._print(f"W&B offline runs: {wandb_dir}; upload them with: "
                        f"wandb sync {wandb_dir}/offline-run-*")


class PipeProgress:
    """A worker's progress: each event goes to the sweeper's process through a pipe."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def started(self, name: str) -> None:
        self.pipe.send(("started", name, time.time()))

    def ended(self, name: str, update: dict[str, Any]) -> None:
        shown = {k: update.get(k) for k in ("state", "score", "error")}
        self.pipe.send(("ended", name, shown, time.time()))

    def finish(self, config: Any = None) -> None:
        """Nothing: the sweeper's process prints the end."""


def start_progress(options: Any, plan: SweepPlan, count: int | None, parallel: int,
                   records: Sequence[Any]) -> ConsoleProgress:
    """Quiet the parts that chatter (unless verbose) and start the sweep's progress lines."""
    quiet_down(bool(options.verbose))
    return ConsoleProgress(plan, planned_runs(plan, count, records), parallel, records)
