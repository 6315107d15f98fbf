"""Building blocks the architectures share: activations, normalisation, dilations, output head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from knowit_app.archs._checks import optional_name, resolve_activation

# Activations that act along one dimension and must be told which.
_NEEDS_DIM = ("Softmax", "Softmin", "LogSoftmax")


def make_activation(name: str, dim: int = 1) -> nn.Module:
    """A fresh torch.nn activation; ``dim`` is the feature axis for softmax-like ones."""
    canonical = resolve_activation("activations", name)
    cls = getattr(nn, canonical)
    return cls(dim=dim) if canonical in _NEEDS_DIM else cls()


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that also trains on a batch holding one value per channel.

    Such a batch has no variance and stock BatchNorm raises; it happens when the last training
    batch has one sample. That batch is normalised with the running statistics instead (which
    then stay unchanged); weight and bias still learn from it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each time step of a (B, C, T) tensor.

    Normalising per step keeps causal models causal: no statistic mixes in future steps.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def conv_norm(kind: str | None, channels: int) -> nn.Module:
    """The normalisation layer after a convolution ("weight" and None add no layer)."""
    kind = optional_name(kind)
    if kind == "batch":
        return BatchNorm1d(channels)
    if kind == "layer":
        return ChannelLayerNorm(channels)
    return nn.Identity()


def conv1d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    dilation: int,
    normalization: str | None,
    padding: str | int,
) -> nn.Conv1d:
    """A Conv1d, weight-normalised when ``normalization`` is "weight"."""
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation)
    return weight_norm(conv) if optional_name(normalization) == "weight" else conv


def dilations(depth: int, base: int, cap: int) -> list[int]:
    """``base ** i`` for each of ``depth`` blocks, but at most ``cap``.

    ``cap`` is chosen by the caller so that every kernel tap but one falls in the padding for
    every output step: a larger dilation computes exactly the same function while padding the
    sequence to enormous lengths (dilation_base=4, depth=12 would pad by millions of steps).
    """
    out, d = [], 1
    for _ in range(depth):
        out.append(min(d, cap))
        d = min(d * base, cap)
    return out


class OutputHead(nn.Module):
    """Features (B, F) -> regression (B, steps, components) or class logits (B, num_classes)."""

    def __init__(
        self,
        in_features: int,
        output_shape: tuple[int, int],
        task: str,
        num_classes: int | None,
        output_activation: Any = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.task = task
        self.output_shape = (int(output_shape[0]), int(output_shape[1]))
        steps, components = self.output_shape
        n_out = num_classes if task == "classification" else steps * components
        self.linear = nn.Linear(in_features, int(n_out), bias=bias)
        name = optional_name(output_activation)
        self.activation = make_activation(name, dim=-1) if name is not None else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.linear(features)
        if self.task == "classification":
            return out
        return self.activation(out.reshape(out.shape[0], *self.output_shape))
