"""Logging a training into a W&B run: offline runs on disk, or the run a W&B sweep assigned.

A W&B run is started only when asked (``wandb.mode``), or when a W&B agent launched this
process (``WANDB_SWEEP_ID`` in the environment). Metrics are logged once per epoch against
``epoch``, as in KnowIt's sweep tutorial (``define_metric("*", step_metric="epoch")``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("knowit_app.training")

DEFAULT_PROJECT = "knowit-app"
REQUIREMENTS_FILE = "requirements.txt"  # W&B's own name for it in a run's files


def agent_launched() -> bool:
    """Whether a W&B agent (``wandb agent`` or ``wandb.agent``) started this run."""
    return bool(os.environ.get("WANDB_SWEEP_ID"))


def start_wandb_run(cfg: DictConfig, run_name: str | None) -> tuple[Any | None, bool]:
    """Start (or join) the W&B run for this training: (run or None, whether we own it)."""
    settings = cfg.wandb
    if settings.mode == "disabled" and not agent_launched() and _active_run() is None:
        return None, False
    import wandb

    owned = _active_run() is None
    if not owned:  # the KnowIt tutorial's runner called wandb.init() itself
        run = _active_run()
    else:
        if settings.dir:
            Path(settings.dir).mkdir(parents=True, exist_ok=True)
        args: dict[str, Any] = {
            "project": settings.project or DEFAULT_PROJECT, "entity": settings.entity,
            "group": settings.group, "name": run_name, "dir": settings.dir,
            "id": settings.run_id, "job_type": "train",
            "config": OmegaConf.to_container(cfg, resolve=True),
            "reinit": "finish_previous",
        }
        if settings.mode != "disabled" and "WANDB_MODE" not in os.environ:
            args["mode"] = settings.mode  # a user's WANDB_MODE (e.g. offline on a cluster) wins
        # W&B lists the installed packages for each run's requirements.txt by reading every
        # package's metadata again: 0.1 s of each run's start in a sweep worker, a third of it.
        # The list is the same for every run of a process: listed once here, saved per run.
        args["settings"] = wandb.Settings(x_save_requirements=False)
        with _agent_env(settings.sweep_id, settings.run_id):
            run = wandb.init(**{k: v for k, v in args.items() if v is not None})
        save_requirements(run)
    run.define_metric("epoch")
    run.define_metric("*", step_metric="epoch")
    return run, owned


@contextmanager
def _agent_env(sweep_id: str | None, run_id: str | None) -> Iterator[None]:
    """Set what a W&B agent sets (``WANDB_SWEEP_ID``, ``WANDB_RUN_ID``) for the init only.

    W&B attaches a run to a server sweep through these variables (in a sweep it ignores
    ``wandb.init(id=...)``); restoring them keeps later trainings in this process from being
    mistaken for agent runs.
    """
    wanted = {"WANDB_SWEEP_ID": sweep_id, "WANDB_RUN_ID": run_id if sweep_id else None}
    saved = {k: os.environ.get(k) for k in wanted}
    for key, value in wanted.items():
        if value:
            os.environ[key] = str(value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@cache
def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted: the run's requirements.txt."""
    from importlib.metadata import distributions

    lines = set()
    for dist in distributions():
        try:  # a package with broken metadata is left out, as W&B leaves it out
            name = dist.metadata["Name"] if dist.metadata else None
            version = dist.version
        except (KeyError, UnicodeDecodeError, TypeError):
            continue
        if name:
            lines.add(f"{name}=={version}")
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def save_requirements(run: Any) -> None:
    """Write the process's package list into the run's files, as W&B itself would.

    Not for a disabled run (``WANDB_MODE=disabled``: no run directory), and never fatal: a
    missing package list must not stop a training.
    """
    if getattr(run, "disabled", False):
        return
    try:
        path = Path(run.dir) / REQUIREMENTS_FILE
        path.write_text(installed_packages())
        run.save(str(path), base_path=run.dir, policy="now")
    except (OSError, ValueError) as exc:
        log.warning("W&B run %s: requirements.txt not saved: %s", run.name, exc)


def _active_run() -> Any | None:
    wandb = __import__("sys").modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def fit_tracked(plan: Any, out_dir: Path, run_name: str,
                callbacks: Sequence[L.Callback] = ()) -> Any:
    """``execute(plan, out_dir)`` with every epoch logged to W&B when W&B is on.

    Lightning's own ``WandbLogger``, attached to the run started here (or to the user's), does
    the logging: one W&B row per logging phase, each carrying ``epoch``, the step metric.
    A run we started is finished here (runs of one process merge otherwise); a run the user
    started (the KnowIt tutorial's ``runner()``) is left open for the user to finish.
    """
    from knowit_app.training.run import execute

    run, owned = start_wandb_run(plan.cfg, run_name)
    loggers = [wandb_logger(run)] if run is not None else []
    try:
        result = execute(plan, out_dir, loggers=loggers, callbacks=callbacks)
    except BaseException:
        if run is not None and owned:
            try:
                run.finish(exit_code=1)
            except Exception as exc:  # e.g. Slurm killed W&B's service on a requeue
                log.warning("W&B run not finished cleanly: %s", exc)
        raise  # the training's own exception (or the requeue's exit), not W&B's
    if run is not None:
        if result.best_score is not None:
            run.summary[f"best_{result.monitor}"] = result.best_score
        if owned:
            run.finish(exit_code=0)
            if plan.cfg.wandb.sweep_id:
                # W&B reads the agent variables once per process: reset it for the next run.
                import wandb

                wandb.teardown()
    return result


def wandb_logger(run: Any) -> Any:
    """Lightning's ``WandbLogger`` on an existing run.

    Given the run, the logger neither starts another nor redefines the step metric, so
    ``epoch`` (set in :func:`start_wandb_run`) stays the x-axis, as in KnowIt's tutorial.
    """
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(experiment=run)
