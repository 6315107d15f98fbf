"""One sweep run inside a Hydra job: train into the run dir, log to W&B, record the outcome.

The job never decides what to run: the sweeper composed its config. It writes the same files
as a single training, plus ``error.txt`` (the traceback) and a failed ``run_result.json`` when
it fails, so the outcome is on disk even if the sweeper that launched it is gone.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from omegaconf import DictConfig

from knowit_app.layout import ERROR_FILE
from knowit_app.training.result import RunResult


def run_sweep_job(cfg: DictConfig, run_dir: Path) -> float | None:
    """Train one sweep run into ``run_dir``; return its best score (what the sweep optimises)."""
    from knowit_app.sweeps.early_stop import HyperbandStopper
    from knowit_app.tracking import fit_tracked
    from knowit_app.training.run import plan_training

    run_dir = Path(run_dir)
    started = time.time()
    try:
        plan = plan_training(cfg)
        stopper = HyperbandStopper.for_run(run_dir)
        result = fit_tracked(plan, run_dir, run_dir.name,
                             callbacks=[stopper] if stopper is not None else [])
        if stopper is not None and stopper.stopped:
            result.state = "stopped"
            result.write(run_dir)
        return result.best_score
    except Exception as exc:  # Ctrl-C or a kill is no failure: the run is rerun on resume
        record_failure(run_dir, exc, started)
        raise


def record_failure(run_dir: Path, exc: BaseException, started: float) -> None:
    """Keep the traceback and a ``failed`` result in the run dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR_FILE).write_text(
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    RunResult(state="failed", monitor="", mode="", best_score=None, best_checkpoint=None,
              epochs=0, fit_seconds=0.0, started=started, ended=time.time()).write(run_dir)
