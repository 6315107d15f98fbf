"""Assemble the Lightning Trainer: checkpoint, early stopping, CSV logs, quiet output."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import CHECKPOINT_PREFIX, LOGS_DIR
from knowit_app.training.callbacks import EpochSummary
from knowit_app.training.progress import terminal_bar

# Lightning announces GPU/TPU availability and tips at INFO on every run: noise in a sweep.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
              "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def checkpoint_callback(out_dir: Path, monitor: str, mode: str) -> ModelCheckpoint:
    """KnowIt's checkpoint: the single best epoch, ``bestmodel-epoch=4-valid_loss=0.04.ckpt``."""
    return ModelCheckpoint(dirpath=out_dir, filename=f"{CHECKPOINT_PREFIX}-{{epoch}}-"
                           f"{{{monitor}:.2f}}", monitor=monitor, mode=mode, save_top_k=1,
                           save_last=False, auto_insert_metric_name=True)


def early_stopping_callback(args: Mapping[str, Any], monitor: str, mode: str) -> EarlyStopping:
    """EarlyStopping with the checkpoint's monitor and mode unless the user set their own."""
    allowed = set(inspect.signature(EarlyStopping).parameters) - {"self"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ConfigError("trainer.early_stopping_args",
                          f"unknown option {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return EarlyStopping(**{"monitor": monitor, "mode": mode, **dict(args)})


def cluster_plugins() -> list[Any]:
    """On Slurm, leave requeueing to the launcher (submitit), not to Lightning's SIGTERM hook."""
    import os

    from lightning.pytorch.plugins.environments import SLURMEnvironment

    # Not SLURMEnvironment.detect(): it warns about srun on every machine with Slurm installed.
    in_slurm_job = bool(os.environ.get("SLURM_JOB_ID")) and os.environ.get(
        "SLURM_JOB_NAME") not in ("bash", "interactive")
    return [SLURMEnvironment(auto_requeue=False)] if in_slurm_job else []


def build_trainer(trainer_cfg: Mapping[str, Any], out_dir: Path, monitor: str, mode: str,
                  devices: int | list[int], loggers: Sequence[Any] = (),
                  callbacks: Sequence[Any] = ()) -> tuple[L.Trainer, ModelCheckpoint]:
    """A Trainer writing into ``out_dir``; returns it with its checkpoint callback."""
    checkpoint = checkpoint_callback(out_dir, monitor, mode)
    all_callbacks: list[Any] = [checkpoint, *terminal_bar(bool(trainer_cfg["enable_progress_bar"])),
                                EpochSummary(), *callbacks]
    if trainer_cfg["early_stopping"]:
        all_callbacks.append(early_stopping_callback(trainer_cfg["early_stopping_args"],
                                                     monitor, mode))
    csv = CSVLogger(save_dir=str(out_dir), name=LOGS_DIR)
    trainer = L.Trainer(
        default_root_dir=str(out_dir),
        max_epochs=int(trainer_cfg["max_epochs"]),
        accelerator=trainer_cfg["accelerator"],
        devices=devices,
        precision=trainer_cfg["precision"],
        deterministic=bool(trainer_cfg["deterministic"]),
        detect_anomaly=bool(trainer_cfg["detect_anomaly"]),
        enable_progress_bar=bool(trainer_cfg["enable_progress_bar"]),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        logger=[csv, *loggers],
        callbacks=all_callbacks,
        plugins=cluster_plugins(),
    )
    return trainer, checkpoint
