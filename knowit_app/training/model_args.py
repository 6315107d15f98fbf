"""``model_args.yaml``: every resolved argument needed to rebuild the model, plus data dynamics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from knowit_app import __version__
from knowit_app.data.prepared import PreparedData
from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import MODEL_ARGS_FILE


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
        "knowit_app_version": __version__,
    }
    text = yaml.safe_dump(args, sort_keys=False)
    return replace_atomically(Path(out_dir) / MODEL_ARGS_FILE, lambda tmp: tmp.write_text(text))


def read_model_args(model_dir: Path) -> dict[str, Any]:
    """Read a model's ``model_args.yaml`` as plain Python values."""
    return yaml.safe_load((Path(model_dir) / MODEL_ARGS_FILE).read_text())
