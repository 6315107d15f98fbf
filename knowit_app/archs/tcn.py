"""TCN (Bai et al., 2018): causal dilated convolutions in residual blocks, then a linear head.

Block i holds two causal convolutions with dilation ``dilation_base ** i`` (the input is
padded on the left only, so step t never sees a later step), each followed by normalisation,
activation and Dropout; a 1x1 convolution matches the residual's channels where they change.
The last step's features feed the head: by causality they summarise the whole window, as long
as the receptive field covers it (a warning says when it does not).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from knowit_app.archs import _checks as checks
from knowit_app.archs import hp_defaults
from knowit_app.archs._layers import OutputHead, conv1d, conv_norm, dilations, make_activation

NAME = "TCN"
NORMALIZATIONS = ("weight", "batch", "layer", None)

HP_RANGES: dict[str, dict[str, Any]] = {
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.8},
    # Not searched by default: see the MLP's note.
    "output_activation": {"values": [None]},
    "depth": {"distribution": "int_uniform", "min": 1, "max": 8},
    "num_filters": {"values": [16, 32, 64, 128, 256]},
    "kernel_size": {"values": [2, 3, 5, 7]},
    "normalization": {"values": ["weight", "batch", "layer", None]},
    "activations": {"values": ["ReLU", "LeakyReLU", "Tanh", "GELU"]},
    "dilation_base": {"distribution": "int_uniform", "min": 1, "max": 4},
}


def validate(hps: Mapping[str, Any]) -> None:
    """Check the TCN hyperparameters present in ``hps``; ConfigError names the first bad one."""
    checks.check_convolutional(hps, NAME, hp_defaults(NAME), NORMALIZATIONS)


def receptive_field(depth: int, kernel_size: int, dilation_base: int) -> int:
    """How many steps, up to and including the last, can influence the last step's features."""
    return 1 + 2 * (kernel_size - 1) * sum(dilation_base**i for i in range(depth))


def build(
    input_shape: tuple[int, int],
    output_shape: tuple[int, int],
    task: str,
    num_classes: int | None,
    hps: Mapping[str, Any],
) -> nn.Module:
    """A TCN for (B, steps, components) inputs; hyperparameters left out take the defaults."""
    hps = checks.checked_hps(NAME, hps, validate, input_shape, output_shape, task, num_classes)
    steps, channels = int(input_shape[0]), int(input_shape[1])
    depth, kernel, base = int(hps["depth"]), int(hps["kernel_size"]), int(hps["dilation_base"])
    norm = checks.optional_name(hps["normalization"])
    norm = norm.lower() if isinstance(norm, str) else norm
    field = receptive_field(depth, kernel, base)
    if field < steps:
        warnings.warn(
            f"TCN receptive field is {field} steps but the input window has {steps}: the "
            f"earliest {steps - field} steps cannot affect the output; raise arch.depth, "
            "arch.kernel_size or arch.dilation_base",
            stacklevel=2,
        )
    blocks: list[nn.Module] = []
    # Beyond `steps` every tap but the last reads left padding for every step.
    for d in dilations(depth, base, steps):
        blocks.append(
            TemporalBlock(
                channels, int(hps["num_filters"]), kernel, d, norm,
                hps["activations"], float(hps["dropout"]),
            )
        )
        channels = int(hps["num_filters"])
    head = OutputHead(channels, output_shape, task, num_classes, hps["output_activation"])
    return TCN(nn.Sequential(*blocks), head)


class TemporalBlock(nn.Module):
    """Two causal convolutions with a residual connection around them."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int,
        normalization: str | None,
        activation: str,
        dropout: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers += [
                nn.ConstantPad1d(((kernel_size - 1) * dilation, 0), 0.0),
                conv1d(c_in, out_channels, kernel_size, dilation, normalization, padding=0),
                conv_norm(normalization, out_channels),
                make_activation(activation),
                nn.Dropout(dropout),
            ]
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Conv1d(in_channels, out_channels, 1)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


class TCN(nn.Module):
    """(B, T, C) -> channels-first -> temporal blocks -> last step -> head."""

    def __init__(self, blocks: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.blocks = blocks
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.transpose(1, 2))[:, :, -1])
