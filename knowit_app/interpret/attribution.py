"""Feature attributions with Captum: one array per call, for any torch network.

The network sees what it saw in training (scaled inputs); attributions explain its raw output
(scaled units when ``scaling_tag=full``, logits for classification). Baselines come from the
training points: DeepLift and integrated gradients use the mean training window, DeepLiftShap a
seeded sample of training windows. Works for every architecture of the registry and any custom
``nn.Module`` mapping (B, steps, components) to (B, out_steps, out_components) or class logits.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from knowit_app.errors import ConfigError

MEAN_BASELINE_POINTS = 1000  # training windows averaged into the DeepLift / IG baseline
SHAP_BASELINE_POINTS = 100  # training windows in DeepLiftShap's baseline distribution
ROWS_PER_CALL = 20_000  # inputs x baselines (or x IG steps) per Captum call, to bound memory
IG_STEPS = 50  # Captum's default number of integration steps
# DeepLift's rescale rules cover feed-forward layers only; through these it is wrong or fails.
RECURRENT = (nn.RNNBase, nn.RNNCellBase)


@dataclass
class Attributions:
    """``values``: (points, targets, in_steps, in_components); ``delta``: (points, targets)."""

    values: np.ndarray
    delta: np.ndarray
    baseline_count: int


def check_supported(network: nn.Module, method: str, arch: str = "custom") -> None:
    """Refuse a method Captum cannot apply to this network, before any work, in one line."""
    if method in ("DeepLift", "DeepLiftShap"):
        layers = sorted({type(m).__name__ for m in network.modules() if isinstance(m, RECURRENT)})
        if layers:
            raise ConfigError("method", f"{method} cannot attribute through the recurrent "
                              f"{'/'.join(layers)} layer of the {arch} architecture (Captum's "
                              "DeepLift rules cover feed-forward layers only); use "
                              "method=IntegratedGradients")


def sample_baseline_rows(train_rows: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` distinct training rows, drawn with ``seed`` (sorted)."""
    if len(train_rows) == 0:
        raise ConfigError("data", "the model's training set has no points to build baselines")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_rows), size=min(count, len(train_rows)), replace=False)
    return np.sort(np.asarray(train_rows)[pick])


def make_baselines(train_windows: torch.Tensor, method: str) -> torch.Tensor:
    """The mean window (1, T, C) for DeepLift/IG; the windows themselves for DeepLiftShap."""
    if method == "DeepLiftShap":
        return train_windows
    return train_windows.mean(dim=0, keepdim=True)


def _explainer(network: nn.Module, method: str, multiply_by_inputs: bool) -> Any:
    from captum.attr import DeepLift, DeepLiftShap, IntegratedGradients

    cls = {"DeepLift": DeepLift, "DeepLiftShap": DeepLiftShap,
           "IntegratedGradients": IntegratedGradients}[method]
    return cls(network, multiply_by_inputs=multiply_by_inputs)


def _chunk_size(method: str, baseline_count: int) -> int:
    per_point = {"DeepLiftShap": baseline_count, "IntegratedGradients": IG_STEPS}.get(method, 2)
    return max(1, ROWS_PER_CALL // per_point)


def attribute(network: nn.Module, inputs: torch.Tensor, baselines: torch.Tensor, method: str,
              targets: Sequence[Any], multiply_by_inputs: bool = True) -> Attributions:
    """Attributions of each output in ``targets`` (a (step, component) tuple or a class index).

    ``inputs`` (P, T, C) and ``baselines`` ((1 or B), T, C) are on the network's scale.
    """
    network.eval()
    explainer = _explainer(network, method, multiply_by_inputs)
    chunk = _chunk_size(method, len(baselines))
    values = np.zeros((len(inputs), len(targets), *inputs.shape[1:]), dtype=np.float32)
    delta = np.zeros((len(inputs), len(targets)), dtype=np.float64)
    for start in range(0, len(inputs), chunk):
        x = inputs[start:start + chunk].detach().clone().requires_grad_(True)
        base = baselines if method == "DeepLiftShap" else baselines.expand_as(x).contiguous()
        for t, target in enumerate(targets):
            kwargs = {"internal_batch_size": len(x) * IG_STEPS} if (
                method == "IntegratedGradients") else {}
            with warnings.catch_warnings():  # Captum's note that it hooks activations
                warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
                attr, d = explainer.attribute(x, baselines=base, target=target,
                                              return_convergence_delta=True, **kwargs)
            values[start:start + len(x), t] = attr.detach().numpy()
            d = d.detach().to(torch.float64).reshape(len(x), -1).mean(dim=1)
            delta[start:start + len(x), t] = d.numpy()
    return Attributions(values, delta, len(baselines))
