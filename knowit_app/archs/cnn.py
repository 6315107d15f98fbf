"""CNN: 1-D convolutions over time (the components are the channels), then a linear head.

Each of ``depth`` blocks is Conv1d(num_filters, kernel_size, "same" padding, dilation
``dilation_base ** i``) -> normalisation -> activation -> Dropout. The last block's feature
map, all steps flattened, feeds the head, so every step of the window can reach the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from knowit_app.archs import _checks as checks
from knowit_app.archs import hp_defaults
from knowit_app.archs._layers import OutputHead, conv1d, conv_norm, dilations, make_activation

NAME = "CNN"
NORMALIZATIONS = ("batch", "layer", "weight", None)

HP_RANGES: dict[str, dict[str, Any]] = {
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.8},
    # Not searched by default: see the MLP's note.
    "output_activation": {"values": [None]},
    "depth": {"distribution": "int_uniform", "min": 1, "max": 6},
    "num_filters": {"values": [16, 32, 64, 128, 256]},
    "kernel_size": {"values": [3, 5, 7, 9]},
    "normalization": {"values": ["batch", "layer", None]},
    "activations": {"values": ["ReLU", "LeakyReLU", "Tanh", "GELU"]},
    "dilation_base": {"values": [1, 2, 3]},
}


def validate(hps: Mapping[str, Any]) -> None:
    """Check the CNN hyperparameters present in ``hps``; ConfigError names the first bad one."""
    checks.check_convolutional(hps, NAME, hp_defaults(NAME), NORMALIZATIONS)


def build(
    input_shape: tuple[int, int],
    output_shape: tuple[int, int],
    task: str,
    num_classes: int | None,
    hps: Mapping[str, Any],
) -> nn.Module:
    """A CNN for (B, steps, components) inputs; hyperparameters left out take the defaults."""
    hps = checks.checked_hps(NAME, hps, validate, input_shape, output_shape, task, num_classes)
    steps, channels = int(input_shape[0]), int(input_shape[1])
    filters, norm = int(hps["num_filters"]), checks.optional_name(hps["normalization"])
    norm = norm.lower() if isinstance(norm, str) else norm
    # Beyond 2 * steps + 1 every tap but the centre one reads padding for every step.
    blocks: list[nn.Module] = []
    for d in dilations(int(hps["depth"]), int(hps["dilation_base"]), 2 * steps + 1):
        blocks.append(
            nn.Sequential(
                conv1d(channels, filters, int(hps["kernel_size"]), d, norm, padding="same"),
                conv_norm(norm, filters),
                make_activation(hps["activations"]),
                nn.Dropout(float(hps["dropout"])),
            )
        )
        channels = filters
    head = OutputHead(filters * steps, output_shape, task, num_classes, hps["output_activation"])
    return CNN(nn.Sequential(*blocks), head)


class CNN(nn.Module):
    """(B, T, C) -> channels-first -> conv blocks -> flatten -> head."""

    def __init__(self, blocks: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.blocks = blocks
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.transpose(1, 2)).flatten(1))
