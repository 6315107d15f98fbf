"""MLP: the input window flattened, then ``depth`` fully connected blocks, then a linear head
without bias unless ``output_bias`` (KnowIt's MLP, and the reference loop's network).

A block is Linear(width) -> BatchNorm (if ``batchnorm``) -> activation -> Dropout. With
``residual`` each block whose input already has ``width`` features adds its input to its
output (every block but the first, unless the flattened input is ``width`` wide too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from knowit_app.archs import _checks as checks
from knowit_app.archs import hp_defaults
from knowit_app.archs._layers import BatchNorm1d, OutputHead, make_activation

NAME = "MLP"

HP_RANGES: dict[str, dict[str, Any]] = {
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.8},
    # Not searched by default: an output activation only helps when the targets are scaled
    # into its range (Sigmoid for zero-one), and classification refuses one.
    "output_activation": {"values": [None]},
    "depth": {"distribution": "int_uniform", "min": 1, "max": 8},
    "width": {"values": [32, 64, 128, 256, 512]},
    "activations": {"values": ["ReLU", "LeakyReLU", "Tanh", "GELU"]},
    "batchnorm": {"values": [True, False]},
    "residual": {"values": [False, True]},
    "output_bias": {"values": [False]},  # KnowIt's head has none; not worth searching
}


def validate(hps: Mapping[str, Any]) -> None:
    """Check the MLP hyperparameters present in ``hps``; ConfigError names the first bad one."""
    checks.check_known(hps, NAME, hp_defaults(NAME))
    checks.check_dropout(hps)
    checks.check_output_activation(hps)
    checks.check_int(hps, "depth", 1)
    checks.check_int(hps, "width", 1)
    checks.check_activation(hps)
    checks.check_bool(hps, "batchnorm")
    checks.check_bool(hps, "residual")
    checks.check_bool(hps, "output_bias")


def build(
    input_shape: tuple[int, int],
    output_shape: tuple[int, int],
    task: str,
    num_classes: int | None,
    hps: Mapping[str, Any],
) -> nn.Module:
    """An MLP for (B, steps, components) inputs; hyperparameters left out take the defaults."""
    hps = checks.checked_hps(NAME, hps, validate, input_shape, output_shape, task, num_classes)
    width = int(hps["width"])
    blocks, skips = [], []
    in_features = int(input_shape[0]) * int(input_shape[1])
    for _ in range(int(hps["depth"])):
        layers: list[nn.Module] = [nn.Linear(in_features, width)]
        if hps["batchnorm"]:
            layers.append(BatchNorm1d(width))
        layers += [make_activation(hps["activations"]), nn.Dropout(float(hps["dropout"]))]
        blocks.append(nn.Sequential(*layers))
        skips.append(bool(hps["residual"]) and in_features == width)
        in_features = width
    head = OutputHead(width, output_shape, task, num_classes, hps["output_activation"],
                      bias=bool(hps["output_bias"]))
    return MLP(blocks, skips, head)


class MLP(nn.Module):
    """Flatten -> blocks (with optional skips) -> head."""

    def __init__(self, blocks: list[nn.Module], skips: list[bool], head: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.skips = tuple(skips)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for block, skip in zip(self.blocks, self.skips, strict=True):
            h = block(h) + h if skip else block(h)
        return self.head(h)
