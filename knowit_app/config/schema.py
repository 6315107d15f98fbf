"""Structured-config schemas: the names, types and defaults of every option.

Hydra validates the composed config against these dataclasses, so a misspelt key
(``arch.dropuot=0.1``) or a wrong type (``data.batch_size=abc``) fails at composition with
Hydra's own message. Value checks that types cannot express (ranges, names of datasets and
components) live in :mod:`knowit_app.config.checks`. This module imports neither torch nor
Lightning: ``knowit-app --help`` composes configs without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class DataConfig:
    """KnowIt's ``data`` kwargs: which dataset, which windows, which splits, which scaling."""

    name: str = "synth_2"
    in_components: list[str] = field(default_factory=lambda: ["x1", "x2", "x3", "x4"])
    out_components: list[str] = field(default_factory=lambda: ["x5"])
    in_chunk: list[int] = field(default_factory=lambda: [-32, 0])
    out_chunk: list[int] = field(default_factory=lambda: [0, 0])
    # KnowIt's defaults; conf/data/synth_2.yaml holds the sweep tutorial's values.
    split_portions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_method: str = "chronological"
    limit: int | None = None
    min_slice: int | None = None
    scaling_tag: str | None = None
    scaling_method: str = "z-norm"
    batch_size: int = 64
    shuffle_train: bool = True
    padding_method: str = "constant"
    seed: int = 123


@dataclass
class ArchConfig:
    """Fields every architecture has; each architecture adds its own flat hyperparameters."""

    name: str = MISSING
    dropout: float = 0.5
    output_activation: str | None = None


@dataclass
class MLPConfig(ArchConfig):
    name: str = "MLP"
    depth: int = 3
    width: int = 256
    activations: str = "ReLU"
    batchnorm: bool = True
    residual: bool = False
    # KnowIt's MLP head has no bias; models trained before ours matched it have one (their
    # model_args.yaml lacks this key, and loading them sets it true).
    output_bias: bool = False


@dataclass
class CNNConfig(ArchConfig):
    name: str = "CNN"
    depth: int = 3
    num_filters: int = 64
    kernel_size: int = 3
    normalization: str | None = "batch"
    activations: str = "ReLU"
    dilation_base: int = 1


@dataclass
class TCNConfig(ArchConfig):
    name: str = "TCN"
    depth: int = 4
    num_filters: int = 64
    kernel_size: int = 3
    normalization: str | None = "weight"
    activations: str = "ReLU"
    dilation_base: int = 2


@dataclass
class LSTMConfig(ArchConfig):
    name: str = "LSTM"
    depth: int = 2
    width: int = 64
    bidirectional: bool = False
    dropout: float = 0.2


@dataclass
class CustomArchConfig:
    """An architecture imported into ``<exp_dir>/custom_archs/<name>.py`` (KnowIt's form);
    its hyperparameters are the module's own, so they are checked when it is built."""

    name: str = MISSING
    arch_hps: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainerConfig:
    """KnowIt's ``trainer`` kwargs plus the Lightning options we pass through."""

    task: str = "regression"
    loss_fn: str = "mse_loss"
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    optim: str = "Adam"
    optim_kwargs: dict[str, Any] = field(default_factory=dict)
    learning_rate: float = 0.001
    max_epochs: int = 5
    lr_scheduler: str | None = None
    lr_scheduler_kwargs: dict[str, Any] = field(default_factory=dict)
    performance_metrics: list[str] = field(default_factory=list)
    performance_metrics_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitor: str | None = None
    ckpt_mode: str = "auto"
    early_stopping: bool = False
    early_stopping_args: dict[str, Any] = field(default_factory=dict)
    seed: int = 123
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: str = "auto"
    deterministic: bool = True
    detect_anomaly: bool = False
    num_threads: int | None = None
    enable_progress_bar: bool = False


@dataclass
class WandbConfig:
    """Where a training logs in W&B. A single training logs nowhere unless asked; the sweeper
    sets these per run (offline runs land in ``<sweep_dir>/wandb/`` for ``wandb sync``)."""

    mode: str = "disabled"
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    run_id: str | None = None
    sweep_id: str | None = None
    dir: str | None = None


@dataclass
class AppConfig:
    """The root: one model trained from ``data`` x ``arch`` x ``trainer`` into ``exp_dir``."""

    model_name: str = "my_model"
    exp_dir: str = "outputs"
    overwrite: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    arch: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    # A W&B sweep config (``sweep=<file>`` from conf/sweep/, or just ``sweep.name=...``).
    sweep: dict[str, Any] = field(default_factory=lambda: {"name": None})


ARCH_SCHEMAS = {"mlp": MLPConfig, "cnn": CNNConfig, "tcn": TCNConfig, "lstm": LSTMConfig}


def register_schemas() -> None:
    """Put the schemas in Hydra's ConfigStore; the YAML files in ``conf/`` extend them."""
    from hydra.core.config_store import ConfigStore

    from knowit_app.config.paths import register_resolvers

    register_resolvers()  # conf/config.yaml builds hydra.run.dir and hydra.sweep.dir with them
    cs = ConfigStore.instance()
    cs.store(name="base_app", node=AppConfig)
    cs.store(group="data", name="base_data", node=DataConfig)
    cs.store(group="trainer", name="base_trainer", node=TrainerConfig)
    for key, schema in ARCH_SCHEMAS.items():
        cs.store(group="arch", name=f"base_{key}", node=schema)
    cs.store(group="arch", name="base_custom", node=CustomArchConfig)
