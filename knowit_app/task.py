"""The Hydra task: check, train into the staging dir Hydra made, publish the model.

Hydra creates the run directory (with ``.hydra/``) before the task starts, so the run dir is a
private staging dir under ``models/.staging/``; a refused start removes it again and a finished
training is moved into ``models/<model_name>/``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from knowit_app.errors import ConfigError, ModelExistsError
from knowit_app.layout import ExperimentLayout
from knowit_app.publish import discard_staging, publish, refuse_existing

log = logging.getLogger("knowit_app")


def run_task(cfg: DictConfig) -> float | None:
    """Train ``cfg.model_name``; return the best monitored score (what a sweeper optimises)."""
    from knowit_app.training.run import execute, plan_training

    staged = Path(HydraConfig.get().runtime.output_dir).resolve()
    layout = ExperimentLayout(cfg.exp_dir)
    try:
        model_dir = layout.model_dir(cfg.model_name)
        refuse_existing(model_dir, cfg.overwrite)
        plan = plan_training(cfg)
    except (ConfigError, ModelExistsError) as exc:
        discard_staging(staged, layout.staging_dir)
        # One line and exit status 2, as command-line tools do; Hydra would print a traceback.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        result = execute(plan, staged)
    except BaseException:
        log.error("training failed; its partial output is kept in %s", staged)
        raise
    kept = publish(staged, model_dir, cfg.overwrite)
    discard_staging(staged, layout.staging_dir)  # only removes the staging dir if now empty
    log.info("model %s: best %s=%s (%s) in %s", cfg.model_name, result.monitor,
             f"{result.best_score:.4g}" if result.best_score is not None else "n/a",
             result.best_checkpoint, model_dir)
    if kept is not None:
        log.info("the model it replaced is kept in %s", kept)
    return result.best_score
