"""One sweep run inside a Hydra job: train into the run dir, log to W&B, record the outcome.

The job never decides what to run: the sweeper composed its config. It writes the same files
as a single training, plus ``error.txt`` (the traceback) and a failed ``run_result.json`` when
it fails, so the outcome is on disk even if the sweeper that launched it is gone.

On Slurm, submitit may requeue the job (time limit, preemption: ``hydra.launcher.
max_num_timeout``): its signal handler requeues the job and exits the training with
``SystemExit``; the next attempt runs this function again in the same run dir and the training
resumes from ``.resume/last.ckpt``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from omegaconf import DictConfig

from knowit_app.experiment.runs import (
    SCORED_STATES,
    RunResult,
    RunState,
    failed_result,
    write_error,
)

log = logging.getLogger("knowit_app.sweep")


def run_sweep_job(cfg: DictConfig, run_dir: Path) -> RunResult:
    """Train one sweep run into ``run_dir``; return its result (the sweeper's score and state).
    """
    from knowit_app.sweeps.early_stop import HyperbandStopper
    from knowit_app.training.run import plan_training
    from knowit_app.training.wandb_run import fit_tracked

    run_dir = Path(run_dir)
    started = time.time()
    earlier = finished_before_requeue(run_dir)
    if earlier is not None:
        return earlier
    try:
        plan = plan_training(cfg)
        stopper = HyperbandStopper.for_run(run_dir, cfg)
        result = fit_tracked(plan, run_dir, run_dir.name,
                             callbacks=[stopper] if stopper is not None else [])
        if stopper is not None and stopper.stopped:
            result.state = RunState.STOPPED
            result.write(run_dir)
        return result
    except Exception as exc:  # Ctrl-C or a kill is no failure: the run is rerun on resume
        interrupt = interrupted_by(exc)
        if interrupt is not None:
            # Cleanup failed while an exit unwound the training: e.g. W&B's finish, whose
            # service Slurm had just killed, as submitit requeued the job. Not a failure of the
            # run: let the exit end the job (the next attempt resumes).
            raise interrupt from exc
        record_failure(run_dir, exc, started)
        raise


def interrupted_by(exc: BaseException) -> BaseException | None:
    """The exit or Ctrl-C that ``exc`` was raised while handling, if any."""
    seen: set[int] = set()
    context = exc.__context__
    while context is not None and id(context) not in seen:
        if isinstance(context, (SystemExit, KeyboardInterrupt)):
            return context
        seen.add(id(context))
        context = context.__context__
    return None


def finished_before_requeue(run_dir: Path) -> RunResult | None:
    """The result of a requeued job's earlier attempt that had already finished the training.

    The requeue signal can come after the training ended but before the job returned; the
    next attempt then must not train again from epoch 0 (its ``.resume/`` is gone).
    """
    from knowit_app.training.run import RESUME_DIR

    if int(os.environ.get("SLURM_RESTART_COUNT") or 0) < 1:
        return None
    try:
        result = RunResult.read(run_dir)
    except (OSError, ValueError, TypeError):
        return None
    if result.state not in SCORED_STATES:
        return None
    shutil.rmtree(run_dir / RESUME_DIR, ignore_errors=True)
    log.info("run %s had finished before this job was requeued: not training it again",
             run_dir.name)
    return result


def record_failure(run_dir: Path, exc: BaseException, started: float) -> None:
    """Keep the traceback and a ``failed`` result in the run dir."""
    from knowit_app.sweeps.outcomes import one_line

    write_error(run_dir, exc)
    failed_result(started, time.time(), reason=one_line(exc)).write(run_dir)
