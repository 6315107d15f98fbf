"""Train one model: check and prepare everything first, then fit and write KnowIt's files.

``plan_training`` does all the checking and the data preparation and writes nothing into the
experiment, so bad input fails before any training and leaves results untouched.
``execute`` fits and writes ``bestmodel-*.ckpt``, ``model_args.yaml``, ``lightning_logs/`` and
``run_result.json`` into one output directory. The Hydra app, the Python API and the sweeper
all go through these two functions.
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from knowit_app.archs import ARCH_NAMES, build_model
from knowit_app.config.checks import (
    available_accelerators,
    devices_value,
    monitored_metric,
    validate_app,
)
from knowit_app.data.prepared import PreparedData, make_dataloader, prepare
from knowit_app.data.windows import validation_batch_size
from knowit_app.errors import ConfigError
from knowit_app.experiment.runs import RunResult
from knowit_app.training.components import (
    loss_function,
    metric_factory,
    metric_higher_is_better,
    optimizer_class,
    scheduler_class,
)
from knowit_app.training.first_step import check_first_step

log = logging.getLogger("knowit_app.training")

# Every epoch's state, kept while a run trains so that a requeued job resumes mid-way.
RESUME_DIR = ".resume"


# A classification head has one output per class: past this many, a target is almost surely a
# continuous column (synth_2's x5 has 119,689 values), and the model would not fit in memory.
MAX_CLASSES = 1000


@dataclass
class TrainingPlan:
    """A checked configuration with its prepared data: everything needed to start fitting."""

    cfg: DictConfig
    prepared: PreparedData
    loss: Callable[..., Any]
    metric_factories: dict[str, Callable[[], Any]]
    monitor: str
    mode: str


def plan_training(cfg: DictConfig) -> TrainingPlan:
    """Validate ``cfg`` (data, arch, trainer) and prepare its data; raise ConfigError if bad."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    trainer = cfg.trainer
    validate_app(cfg)  # finite numbers and the trainer's values; one-line warnings
    loss = loss_function(trainer.loss_fn)
    optimizer_class(trainer.optim)
    if trainer.lr_scheduler:
        scheduler_class(trainer.lr_scheduler)
    monitor = monitored_metric(trainer)
    prepared = prepare(cfg.data, trainer.task, cfg.exp_dir)
    num_classes = len(prepared.class_set) if prepared.class_set is not None else None
    if num_classes is not None and num_classes > MAX_CLASSES:  # checked when training only
        raise ConfigError("data.out_components", f"{cfg.data.out_components[0]!r} holds "
                          f"{num_classes:,} distinct values, too many to be classes (at most "
                          f"{MAX_CLASSES:,}): it looks continuous; predict it with "
                          "trainer=default (regression)")
    factories = {name: metric_factory(name, trainer.performance_metrics_kwargs.get(name, {}),
                                      trainer.task, num_classes)
                 for name in trainer.performance_metrics}
    mode = trainer.ckpt_mode
    if mode == "auto":
        metric = monitor.split("_perf_", 1)[1] if "_perf_" in monitor else None
        mode = "max" if metric and metric_higher_is_better(factories[metric]) else "min"
    if trainer.early_stopping:
        from knowit_app.training.trainer import early_stopping_callback

        early_stopping_callback(trainer.early_stopping_args, monitor, mode)
    # Building the network and stepping it once on two training points validates the
    # architecture's hyperparameters, its fit to the data, the loss and optimizer settings.
    network = _network(cfg, prepared)
    rows = prepared.points["train"][:2]
    if len(rows):
        check_first_step(network, prepared.batch(rows), trainer.task, num_classes,
                         str(cfg.arch.name), loss, trainer, optimizer=_trains_on_cpu(trainer))
    return TrainingPlan(cfg, prepared, loss, factories, monitor, mode)


def _trains_on_cpu(trainer: Any) -> bool:
    """Whether the training will run on the CPU, where the planning step's optimizer check
    means what it says (``fused``/``capturable`` optimizer settings are for GPUs)."""
    if trainer.accelerator != "auto":
        return trainer.accelerator == "cpu"
    return not {"cuda", "mps"} & set(available_accelerators())


def _network(cfg: DictConfig, prepared: PreparedData) -> Any:
    num_classes = len(prepared.class_set) if prepared.class_set is not None else None
    return build_model(cfg.arch, tuple(prepared.in_shape), tuple(prepared.out_shape),
                       cfg.trainer.task, num_classes, exp_dir=cfg.exp_dir)


def execute(plan: TrainingPlan, out_dir: Path, *, loggers: Sequence[Any] = (),
            callbacks: Sequence[Any] = ()) -> RunResult:
    """Fit the planned model, writing its files into ``out_dir``; return the run's result."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    from knowit_app.training.model_args import write_model_args
    from knowit_app.training.module import KnowitModule
    from knowit_app.training.trainer import build_trainer

    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg, trainer_cfg = plan.cfg, plan.cfg.trainer
    if trainer_cfg.num_threads:
        torch.set_num_threads(int(trainer_cfg.num_threads))
    L.seed_everything(trainer_cfg.seed, workers=True, verbose=False)
    network = _network(cfg, plan.prepared)
    module = KnowitModule(network, plan.loss, trainer_cfg.loss_kwargs, trainer_cfg.optim,
                          trainer_cfg.optim_kwargs, trainer_cfg.learning_rate,
                          trainer_cfg.lr_scheduler, trainer_cfg.lr_scheduler_kwargs,
                          plan.monitor, plan.metric_factories,
                          trainer_cfg.gradient_clip_val, trainer_cfg.gradient_clip_algorithm)
    write_model_args(out_dir, cfg, plan.prepared, plan.monitor, plan.mode)
    resume_dir = out_dir / RESUME_DIR
    resume_from = resume_dir / "last.ckpt"
    resume = ModelCheckpoint(dirpath=resume_dir, filename="last", monitor=None, save_top_k=1,
                             every_n_epochs=1, enable_version_counter=False)
    batch_size, seed = cfg.data.batch_size, cfg.data.seed
    train_loader = make_dataloader(plan.prepared, "train", batch_size,
                                   cfg.data.shuffle_train, seed)
    # Larger validation batches where they cannot change the logged scores (see the function).
    valid_batch = validation_batch_size(batch_size, trainer_cfg.loss_kwargs,
                                        str(cfg.arch.get("name", "")).upper() in ARCH_NAMES)
    valid_loader = make_dataloader(plan.prepared, "valid", valid_batch, False, seed)
    log.info("training %s on %s: %d train / %d valid points, %d parameters",
             cfg.arch.name, cfg.data.name, len(plan.prepared.points["train"]),
             len(plan.prepared.points["valid"]),
             sum(p.numel() for p in network.parameters()))
    fit_started = time.perf_counter()
    with warnings.catch_warnings():
        # Lightning's hint to use srun shows wherever Slurm is installed; we run under sbatch.
        warnings.filterwarnings("ignore", message=".*`srun` command is available.*")
        trainer, checkpoint = build_trainer(trainer_cfg, out_dir, plan.monitor, plan.mode,
                                            devices_value(trainer_cfg.devices), loggers,
                                            [*callbacks, resume])
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        # The run dir already holds .hydra/ (and model_args.yaml): expected, not a problem.
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # The module's chunked training step (training/module.py says why) uses Lightning's
        # `dataloader_iter` form, which Lightning calls experimental at every fit.
        warnings.filterwarnings("ignore", message=".*`dataloader_iter`.*")
        if resume_from.exists():  # a requeued job (preemption, time limit): go on from there
            log.info("resuming from %s", resume_from)
        trainer.fit(module, train_loader, valid_loader,
                    ckpt_path=str(resume_from) if resume_from.exists() else None)
    fit_seconds = time.perf_counter() - fit_started
    best = checkpoint.best_model_score
    result = RunResult(
        state="finished",
        monitor=plan.monitor,
        mode=plan.mode,
        best_score=float(best) if best is not None else None,
        best_checkpoint=Path(checkpoint.best_model_path).name or None,
        epochs=int(trainer.current_epoch),
        fit_seconds=round(fit_seconds, 3),
        started=started,
        ended=time.time(),
    )
    result.write(out_dir)
    # Only now: a job requeued before the result was written resumes from the last epoch.
    shutil.rmtree(resume_dir, ignore_errors=True)
    return result
