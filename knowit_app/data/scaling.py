"""Per-component scaling, fit on the training points only so nothing leaks from valid/eval.

A :class:`Scaler` is plain data (method, shift, scale) so it can live in YAML and in a checkpoint
that loads with ``torch.load(weights_only=True)``, unlike a pickled scikit-learn object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from knowit_app.errors import ConfigError

SCALING_TAGS = (None, "in_only", "full")
SCALING_METHODS = ("z-norm", "zero-one")


@dataclass
class Scaler:
    """``transform(v) = (v - shift) / scale``, one shift and scale per component."""

    method: str
    shift: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        self.shift = np.asarray(self.shift, dtype=np.float64)
        self.scale = np.asarray(self.scale, dtype=np.float64)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.shift) / self.scale

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.shift

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(method=str(d["method"]), shift=d["shift"], scale=d["scale"])


def check_scaling(tag: object, method: object, task: str) -> None:
    """Reject unknown tags/methods, and "full" for classification (labels are not scaled)."""
    if tag not in SCALING_TAGS:
        raise ConfigError(
            "data.scaling_tag",
            f"unknown scaling tag {tag!r}; allowed: null (no scaling), in_only, full",
        )
    if method not in SCALING_METHODS:
        raise ConfigError(
            "data.scaling_method",
            f"unknown scaling method {method!r}; allowed: {', '.join(SCALING_METHODS)}",
        )
    if tag == "full" and task == "classification":
        raise ConfigError(
            "data.scaling_tag",
            "'full' scales the outputs, but classification targets are class labels; use "
            "in_only or null",
        )


def fit_scaler(values: np.ndarray, method: str) -> Scaler:
    """Statistics per column of ``values`` (rows = training points), ignoring NaN.

    A zero spread becomes 1 so constant components pass through shifted but not divided by 0;
    a column with no finite value at all gets shift 0 and scale 1.
    """
    values = np.asarray(values, dtype=np.float64)
    n_cols = values.shape[1]
    finite = ~np.isnan(values)
    has = finite.any(axis=0)
    shift = np.zeros(n_cols)
    scale = np.ones(n_cols)
    if has.any():
        v = values[:, has]
        if method == "z-norm":
            shift[has] = np.nanmean(v, axis=0)
            scale[has] = np.nanstd(v, axis=0)  # population std, ddof=0
        elif method == "zero-one":
            shift[has] = np.nanmin(v, axis=0)
            scale[has] = np.nanmax(v, axis=0) - shift[has]
        else:
            raise ConfigError(
                "data.scaling_method",
                f"unknown scaling method {method!r}; allowed: {', '.join(SCALING_METHODS)}",
            )
    scale[scale == 0] = 1.0
    return Scaler(method=method, shift=shift, scale=scale)


def make_scalers(
    values: np.ndarray,
    train_rows: np.ndarray,
    in_idx: np.ndarray,
    out_idx: np.ndarray,
    tag: str | None,
    method: str,
    task: str,
) -> tuple[Scaler | None, Scaler | None]:
    """(in_scaler, out_scaler) for ``tag``, fit on the dataset rows of the training points."""
    check_scaling(tag, method, task)
    if tag is None:
        return None, None
    at_train = values[train_rows]
    in_scaler = fit_scaler(at_train[:, in_idx], method)
    out_scaler = fit_scaler(at_train[:, out_idx], method) if tag == "full" else None
    return in_scaler, out_scaler
