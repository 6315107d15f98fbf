"""The ``knowit-app`` command: compose ``conf/`` with Hydra, then run one job.

Only Hydra and the config schemas are imported at module level, so ``knowit-app --help`` and
config composition stay fast; torch and Lightning load when a training actually starts.

What one job does, in each way it can be started:
- A single training (``knowit-app model_name=m1``): Hydra creates the run directory (with
  ``.hydra/``) before the task starts, so the run dir is a private staging dir under
  ``models/.staging/``; a refused start removes it again and a finished training is moved into
  ``models/<model_name>/``.
- A job of our sweeper (``knowit-app -m ...``): the sweeper chose the run dir
  ``models/<model>/sweeps/<sweep>/<run>/``; train straight into it.
- A run started by ``wandb agent`` (``WANDB_SWEEP_ID`` set): train in staging, then move the
  run into the same sweep layout, named from the agent's parameters.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from knowit_app.cli import app_help as help_module
from knowit_app.config.checks import check_accelerator_available
from knowit_app.config.paths import StartRefused, first_created
from knowit_app.config.schema import register_schemas
from knowit_app.errors import ConfigError, ModelExistsError
from knowit_app.experiment.layout import ExperimentLayout
from knowit_app.experiment.model_dir import discard_staging, publish, refuse_existing

register_schemas()
log = logging.getLogger("knowit_app")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_task(cfg: DictConfig) -> float | None:
    return run_task(cfg)


def run_task(cfg: DictConfig) -> float | None:
    """Train ``cfg.model_name``; return the best monitored score (what a sweeper optimises)."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir).resolve()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from knowit_app.sweeps.job import run_sweep_job

        return run_sweep_job(cfg, out_dir)
    return run_single(cfg, out_dir)


def run_single(cfg: DictConfig, staged: Path) -> float | None:
    """One training in staging, published to the model dir (or an agent's sweep run dir)."""
    from knowit_app.training.wandb_run import agent_launched

    layout = ExperimentLayout(cfg.exp_dir)
    try:
        target = agent_run_dir(cfg, layout) if agent_launched() else layout.model_dir(
            cfg.model_name)
        refuse_existing(target, cfg.overwrite)
        # Here, not in plan_training: a sweep plans on the submit host, which may lack the
        # GPU its Slurm nodes have.
        check_accelerator_available(cfg.trainer.accelerator)
        from knowit_app.training.run import plan_training

        plan = plan_training(cfg)
    except (ConfigError, ModelExistsError) as exc:
        undo_start(staged, layout)
        # One line and exit status 2, as command-line tools do; Hydra would print a traceback.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C while the data is prepared: nothing to keep yet
        undo_start(staged, layout)
        print("error: interrupted before training started; nothing was written",
              file=sys.stderr)
        sys.exit(130)
    from knowit_app.training.module import TrainingDivergedError
    from knowit_app.training.wandb_run import fit_tracked

    try:
        result = fit_tracked(plan, staged, target.name)
    except TrainingDivergedError as exc:  # the same rule as in a sweep: a failed run
        print(f"error: training diverged: {exc}; nothing was published, its partial output "
              f"is kept in {staged}", file=sys.stderr)
        sys.exit(1)
    except BaseException as exc:
        # Ctrl-C: Lightning catches the KeyboardInterrupt and exits with SystemExit(1) instead.
        if isinstance(exc, KeyboardInterrupt) or (
                isinstance(exc, SystemExit) and isinstance(exc.__context__, KeyboardInterrupt)):
            print(f"error: training interrupted; nothing was published, its partial output is "
                  f"kept in {staged}", file=sys.stderr)
            sys.exit(130)  # the shell's status for a command ended by Ctrl-C
        log.error("training failed; its partial output is kept in %s", staged)
        raise
    kept = publish(staged, target, cfg.overwrite)
    discard_staging(staged, layout.staging_dir)  # only removes the staging dir if now empty
    log.info("model %s: best %s=%s (%s) in %s", cfg.model_name, result.monitor,
             f"{result.best_score:.4g}" if result.best_score is not None else "n/a",
             result.best_checkpoint, target)
    if kept is not None:
        log.info("the model it replaced is kept in %s", kept)
    return result.best_score


def undo_start(staged: Path, layout: ExperimentLayout) -> None:
    """Remove the run dir of a refused start and the folders Hydra made for it, no others
    (an empty exp_dir the user made stays)."""
    created = first_created(staged)
    if created is None or not staged.is_relative_to(created):
        discard_staging(staged, layout.staging_dir)
        return
    shutil.rmtree(staged, ignore_errors=True)
    for parent in staged.parents:
        if not parent.is_relative_to(created):
            break
        try:
            parent.rmdir()
        except OSError:
            break


def agent_run_dir(cfg: DictConfig, layout: ExperimentLayout) -> Path:
    """The sweep-layout run dir for a run a W&B agent started, named from its parameters."""
    from knowit_app.sweeps.naming import run_name

    params: dict = {}
    param_path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
    if param_path and Path(param_path).exists():
        raw = yaml.safe_load(Path(param_path).read_text()) or {}
        params = {k: v.get("value") if isinstance(v, dict) else v for k, v in raw.items()
                  if not str(k).startswith("_")}
    sweep_name = cfg.sweep.get("name") or os.environ["WANDB_SWEEP_ID"]
    sweep_dir = layout.sweep_dir(cfg.model_name, str(sweep_name))
    taken = {p.name for p in sweep_dir.iterdir()} if sweep_dir.exists() else set()
    name = run_name(params, taken=taken) if params else os.environ.get("WANDB_RUN_ID", "run")
    return sweep_dir / name


def _run_hydra() -> None:
    """Hydra's main, with its refusals of the command line as one ``error:`` line, exit 2.

    ``HYDRA_FULL_ERROR`` makes Hydra raise instead of printing; any other exception goes back
    to Hydra's own printing (``hydra._internal.utils.run_and_report``, there being no public
    way to call it), so it reads as before. A user's own ``HYDRA_FULL_ERROR`` is left alone.
    """
    from knowit_app.config.compose_errors import is_composition_error, one_line

    users = os.environ.get("HYDRA_FULL_ERROR")
    if users == "1":  # Hydra's own test for it
        _hydra_task()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _hydra_task()
    except Exception as exc:
        if is_composition_error(exc):
            print(f"error: {one_line(exc)}", file=sys.stderr)
            sys.exit(2)
        _restore_env("HYDRA_FULL_ERROR", users)
        from hydra._internal.utils import run_and_report

        error = exc

        def reraise() -> None:
            raise error

        run_and_report(reraise)
    finally:
        _restore_env("HYDRA_FULL_ERROR", users)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def main() -> None:
    """Console-script entry point (``knowit-app``)."""
    import gc
    import sys

    args = sys.argv[1:]
    try:
        if help_module.wants_help(args):
            try:
                print(help_module.render_help(args), end="")
            except Exception as exc:  # a bad override: say which, like Hydra would
                print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
                sys.exit(2)
            return
        try:
            _run_hydra()
        except StartRefused as refused:  # a bad name or exp_dir, before Hydra created a dir
            print(f"error: {refused.error}", file=sys.stderr)
            sys.exit(2)
    finally:
        # Nothing is collected after this; freezing skips the interpreter's final sweeps
        # over torch's millions of objects (exit: 2.6 s -> 0.4 s on a 2-core machine).
        gc.freeze()


if __name__ == "__main__":
    main()
