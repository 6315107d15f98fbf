"""LSTM: a stacked ``nn.LSTM`` over the window, its final state -> Dropout -> linear head.

``dropout`` acts between stacked layers (when ``depth`` > 1) and before the head. The head
reads the last layer's final hidden state: the last step's output going forward and, when
``bidirectional``, the first step's output going backward (the state that has seen the whole
window in that direction).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from knowit_app.archs import _checks as checks
from knowit_app.archs import hp_defaults
from knowit_app.archs._layers import OutputHead

NAME = "LSTM"

HP_RANGES: dict[str, dict[str, Any]] = {
    "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    # Not searched by default: see the MLP's note.
    "output_activation": {"values": [None]},
    "depth": {"distribution": "int_uniform", "min": 1, "max": 4},
    "width": {"values": [16, 32, 64, 128, 256]},
    "bidirectional": {"values": [False, True]},
}


def validate(hps: Mapping[str, Any]) -> None:
    """Check the LSTM hyperparameters present in ``hps``; ConfigError names the first bad one."""
    checks.check_known(hps, NAME, hp_defaults(NAME))
    checks.check_dropout(hps)
    checks.check_output_activation(hps)
    checks.check_int(hps, "depth", 1)
    checks.check_int(hps, "width", 1)
    checks.check_bool(hps, "bidirectional")


def build(
    input_shape: tuple[int, int],
    output_shape: tuple[int, int],
    task: str,
    num_classes: int | None,
    hps: Mapping[str, Any],
) -> nn.Module:
    """An LSTM for (B, steps, components) inputs; hyperparameters left out take the defaults."""
    hps = checks.checked_hps(NAME, hps, validate, input_shape, output_shape, task, num_classes)
    depth, width, dropout = int(hps["depth"]), int(hps["width"]), float(hps["dropout"])
    directions = 2 if hps["bidirectional"] else 1
    lstm = nn.LSTM(
        input_size=int(input_shape[1]),
        hidden_size=width,
        num_layers=depth,
        batch_first=True,
        dropout=dropout if depth > 1 else 0.0,
        bidirectional=directions == 2,
    )
    head = OutputHead(width * directions, output_shape, task, num_classes, hps["output_activation"])
    return LSTM(lstm, nn.Dropout(dropout), head)


class LSTM(nn.Module):
    """(B, T, C) -> nn.LSTM -> last layer's final hidden state(s) -> Dropout -> head."""

    def __init__(self, lstm: nn.LSTM, dropout: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.lstm = lstm
        self.dropout = dropout
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        directions = 2 if self.lstm.bidirectional else 1
        last = h_n[-directions:].transpose(0, 1).reshape(x.shape[0], -1)
        return self.head(self.dropout(last))
