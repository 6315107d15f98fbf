"""Train/valid/eval splits of prediction points, by point, slice or instance.

A split method orders *units* (points, slices or instances that hold at least one point), by
time or by a seeded shuffle; ``limit`` keeps the first units of that order; then train takes the
first ``floor(p0 * N)`` units, eval the last ``floor(p2 * N)`` and valid the rest. Splitting by
slice or instance keeps neighbouring, strongly correlated windows out of different splits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from knowit_app.data.dataset import RawDataset
from knowit_app.errors import ConfigError

SPLIT_METHODS = (
    "chronological",
    "random",
    "slice-chronological",
    "slice-random",
    "instance-chronological",
    "instance-random",
)
SPLIT_NAMES = ("train", "valid", "eval")
_UNIT_WORD = {"point": "prediction points", "slice": "slices", "instance": "instances"}


def check_portions(portions: object) -> tuple[float, float, float]:
    """Three non-negative numbers summing to 1 (within 1e-6), or a ConfigError."""
    iterable = hasattr(portions, "__iter__") and not isinstance(portions, (str, bytes))
    items = list(portions) if iterable else []
    ok = len(items) == 3 and all(
        isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool)
        and math.isfinite(p) and p >= 0
        for p in items
    )
    if not ok or abs(sum(items) - 1.0) > 1e-6:
        shown = items if iterable else portions
        raise ConfigError(
            "data.split_portions",
            f"expected three non-negative numbers [train, valid, eval] summing to 1, got {shown!r}",
        )
    return float(items[0]), float(items[1]), float(items[2])


def check_limit(limit: object) -> int | None:
    """None or a positive int, or a ConfigError."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit <= 0:
        raise ConfigError("data.limit", f"expected null or a positive integer, got {limit!r}")
    return int(limit)


def check_method(method: object) -> tuple[str, str]:
    """``(unit, order)``, e.g. ``("slice", "random")`` for "slice-random"."""
    if method not in SPLIT_METHODS:
        raise ConfigError(
            "data.split_method",
            f"unknown split method {method!r}; allowed: {', '.join(SPLIT_METHODS)}",
        )
    unit, _, order = str(method).rpartition("-")
    return unit or "point", order


def _unit_order(
    ds: RawDataset, points: np.ndarray, unit: str, order: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit id of each point, and the unit ids in split order (only units that hold points)."""
    if unit == "point":
        unit_of_point = np.arange(len(points), dtype=np.int64)
        units = unit_of_point
        start_time = ds.times[points]
    else:
        slice_of_point = np.searchsorted(ds.slice_starts, points, side="right") - 1
        if unit == "slice":
            unit_of_point = slice_of_point
            start_time_all = ds.times[ds.slice_starts]
        else:
            unit_of_point = ds.slice_instance[slice_of_point]
            first_slice = np.searchsorted(ds.slice_instance, np.arange(ds.n_instances))
            first_slice = np.minimum(first_slice, max(ds.n_slices - 1, 0))
            start_time_all = ds.times[ds.slice_starts[first_slice]]
        units = np.unique(unit_of_point)
        start_time = start_time_all[units]
    if order == "random":
        ordered = units[np.random.default_rng(seed).permutation(len(units))]
    else:
        ordered = units[np.lexsort((units, start_time))]
    return unit_of_point, ordered


def split_points(
    ds: RawDataset,
    points: np.ndarray,
    method: str,
    portions: Sequence[float],
    limit: int | None,
    seed: int,
) -> dict[str, np.ndarray]:
    """Split the prediction ``points`` into {"train", "valid", "eval"} arrays of sorted rows."""
    p_train, _, p_eval = check_portions(portions)
    unit, order = check_method(method)
    limit = check_limit(limit)
    points = np.unique(np.asarray(points, dtype=np.int64))

    unit_of_point, ordered = _unit_order(ds, points, unit, order, int(seed))
    if limit is not None:
        ordered = ordered[:limit]
    n = len(ordered)
    eps = 1e-9  # so that 0.29 * 100 counts as 29 despite binary floating point
    n_train = math.floor(p_train * n + eps)
    n_eval = math.floor(p_eval * n + eps)
    n_valid = n - n_train - n_eval
    counts = {"train": n_train, "valid": n_valid, "eval": n_eval}
    for split, count in counts.items():
        if count == 0:
            raise ConfigError(
                "data.split_portions",
                f"the {split} split is empty: {n} {_UNIT_WORD[unit]} split by "
                f"{[float(p) for p in portions]} give train {n_train}, valid {n_valid}, eval "
                f"{n_eval}; use more units (a finer split_method, a larger limit) or other "
                "portions",
            )

    label = np.full(int(unit_of_point.max()) + 1, -1, dtype=np.int8)
    label[ordered[:n_train]] = 0
    label[ordered[n_train:n_train + n_valid]] = 1
    label[ordered[n_train + n_valid:]] = 2
    point_label = label[unit_of_point]
    return {name: points[point_label == i] for i, name in enumerate(SPLIT_NAMES)}
