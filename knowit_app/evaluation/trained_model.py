"""Rebuild a trained model from ``model_args.yaml`` and its checkpoint, and score it.

Checkpoints hold only tensors and plain values, so they load with
``torch.load(path, weights_only=True)``; no pickled objects, no code from the checkpoint runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knowit_app.archs import build_model
from knowit_app.data.prepared import PreparedData, prepare
from knowit_app.errors import KnowitError
from knowit_app.experiment.layout import MODEL_ARGS_FILE, find_checkpoint
from knowit_app.training.model_args import read_model_args


@dataclass
class TrainedModel:
    """A rebuilt network (in eval mode) with the arguments it was trained with."""

    network: nn.Module
    args: dict[str, Any]
    checkpoint: Path

    @property
    def task(self) -> str:
        return self.args["trainer"]["task"]

    def prepare_data(self) -> PreparedData:
        """The model's data, windowed, split and scaled exactly as in training."""
        return prepare(self.args["data"], self.task, self.args["exp_dir"])

    def score(self, split: str = "valid", prepared: PreparedData | None = None) -> float:
        """Mean loss over a whole split (``train``, ``valid`` or ``eval``), as training logs it."""
        from knowit_app.evaluation.scores import score_split

        return score_split(self, prepared or self.prepare_data(), split, perf=False)["loss"]


def load_trained_model(model_dir: str | Path) -> TrainedModel:
    """Rebuild the network of a model (or sweep run) directory from its files."""
    from knowit_app.experiment.model_dir import recover

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise KnowitError(f"no model directory {model_dir}")
    recover(model_dir)  # finish a consolidation or overwrite a kill interrupted
    ckpt = find_checkpoint(model_dir)
    missing = [name for name, absent in (("bestmodel-*.ckpt", ckpt is None),
                                         (MODEL_ARGS_FILE, not (model_dir / MODEL_ARGS_FILE)
                                          .is_file())) if absent]
    if missing:
        raise KnowitError(f"{model_dir} holds no trained model (no {' and no '.join(missing)})")
    args = read_model_args(model_dir)
    dyn = args["data_dynamics"]
    classes = dyn.get("class_set")
    # a custom architecture lives in <exp_dir>/custom_archs: the exp dir holding models/
    exp_dir = next((d.parent for d in model_dir.resolve().parents if d.name == "models"), None)
    network = build_model(args["arch"], tuple(dyn["in_shape"]), tuple(dyn["out_shape"]),
                          args["trainer"]["task"], len(classes) if classes else None,
                          exp_dir=exp_dir)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "model."
    network.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                             if k.startswith(prefix)})
    network.eval()
    return TrainedModel(network, args, ckpt)
