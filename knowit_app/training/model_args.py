"""What ``model_args.yaml`` holds: every argument needed to rebuild the model, and data dynamics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from knowit_app import __version__
from knowit_app.data.prepared import PreparedData
from knowit_app.data.store import dataset_fingerprint
from knowit_app.experiment.model_record import read_model_args as _read_raw
from knowit_app.experiment.model_record import save_model_args

__all__ = ["read_model_args", "write_model_args", "knowit_keys"]

# Lightning options we pass through from ``trainer``: KnowIt keeps them in optional_pl_kwargs.
_PL_KEYS = ("precision", "accelerator", "devices", "deterministic", "detect_anomaly",
            "gradient_clip_val", "gradient_clip_algorithm", "enable_progress_bar")
# What KnowIt adds to ``arch`` that our own builders do not take (stripped again on reading).
_KNOWIT_ARCH_KEYS = ("task", "arch_hps")


def knowit_keys(args: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """Add the keys KnowIt writes (and its tools read) beside ours, with KnowIt's meanings.

    data: ``task``, ``min_slice``, ``batch_sampling_mode`` (we sample points independently),
    ``slide_stride``, ``variable_sequence_length_limit``; arch: ``task`` and ``arch_hps`` (the
    hyperparameters without the name); trainer: ``rescale_logged_output_metrics`` (our logged
    scores are in the data's units), ``return_final`` (we keep the best checkpoint, not the
    last), ``optional_pl_kwargs`` (the Lightning options we pass on), ``logger_status`` (W&B
    logging on), ``custom_pl_model_kwargs``. Values already present are left alone.
    """
    task = str(cfg.trainer.task)
    data, arch, trainer = args["data"], args["arch"], args["trainer"]
    for key, value in (("task", task), ("min_slice", None), ("batch_sampling_mode", "independent"),
                       ("slide_stride", 1), ("variable_sequence_length_limit", None)):
        data.setdefault(key, value)
    arch.setdefault("task", task)
    arch.setdefault("arch_hps", {k: v for k, v in arch.items()
                                 if k not in ("name", *_KNOWIT_ARCH_KEYS)})
    wandb_mode = OmegaConf.select(cfg, "wandb.mode", default="disabled")
    for key, value in (("rescale_logged_output_metrics", True), ("return_final", False),
                       ("optional_pl_kwargs", {k: trainer[k] for k in _PL_KEYS if k in trainer}),
                       ("logger_status", wandb_mode not in (None, "disabled")),
                       ("custom_pl_model_kwargs", None)):
        trainer.setdefault(key, value)
    return args


def read_model_args(model_dir: Path) -> dict[str, Any]:
    """Read ``model_args.yaml``; a built-in arch's record loses KnowIt's copies of its own keys.

    Files written before KnowIt's keys were added read unchanged.
    """
    args = _read_raw(model_dir)
    arch = args.get("arch") if isinstance(args, dict) else None
    if isinstance(arch, dict) and str(arch.get("name", "")).upper() in _builtin_archs():
        for key in _KNOWIT_ARCH_KEYS:
            arch.pop(key, None)
    return args


def _builtin_archs() -> tuple[str, ...]:
    from knowit_app.archs import ARCH_NAMES

    return tuple(ARCH_NAMES)


def write_model_args(out_dir: Path, cfg: DictConfig, prepared: PreparedData, monitor: str,
                     mode: str) -> Path:
    """Write the KnowIt-style ``data`` / ``arch`` / ``trainer`` / ``data_dynamics`` record."""
    args: dict[str, Any] = {
        "model_name": cfg.model_name,
        "exp_dir": str(Path(cfg.exp_dir).resolve()),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "arch": OmegaConf.to_container(cfg.arch, resolve=True),
        "trainer": OmegaConf.to_container(cfg.trainer, resolve=True),
        "checkpoint": {"monitor": monitor, "mode": mode},
        "data_dynamics": prepared.dynamics(),
        # the data's content hash: evaluation refuses the model once the dataset is replaced
        "dataset_fingerprint": dataset_fingerprint(cfg.data.name, cfg.exp_dir),
        "knowit_app_version": __version__,
    }
    return save_model_args(out_dir, knowit_keys(args, cfg))
