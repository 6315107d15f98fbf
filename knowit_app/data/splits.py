"""Train/valid/eval splits of prediction points, by point, slice or instance, as KnowIt does them.

KnowIt's ``DataSplitter._do_split``: a split method orders *units* (prediction points, slices or
instances that hold at least one point), numbered in dataset order (instance, slice, time):

- ``*-chronological``: units sorted by the time of their first prediction point
  (``numpy.argsort``, as KnowIt);
- ``*-random`` and ``random``: the unit numbers shuffled by numpy's legacy generator seeded with
  the seed (KnowIt calls ``numpy.random.seed(seed)`` and then ``numpy.random.shuffle``; we use
  an own ``RandomState(seed)``, which draws the same permutation without touching global state).

``limit`` keeps the first units of that order (more than there are is an error); then train takes
the first ``floor(p0 * N)`` units, eval the last ``floor(p2 * N)`` and valid the rest. An empty
eval set is allowed (portions like [0.8, 0.2, 0]); an empty train or valid set is an error.
``custom`` uses the dataset's own per-row split (KnowIt's ``split`` column: 0 train, 1 valid,
2 eval), keeping only rows that are prediction points. Splitting by slice or instance keeps
neighbouring, strongly correlated windows out of different splits.
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
    "custom",
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


def check_method(method: object, limit: object = None) -> tuple[str, str]:
    """``(unit, order)``, e.g. ``("slice", "random")`` for "slice-random"; custom is special."""
    if method not in SPLIT_METHODS:
        raise ConfigError(
            "data.split_method",
            f"unknown split method {method!r}; allowed: {', '.join(SPLIT_METHODS)}",
        )
    if method == "custom":
        if limit is not None:
            raise ConfigError(
                "data.limit", "split_method=custom takes the whole user-defined split: set null"
            )
        return "custom", "custom"
    unit, _, order = str(method).rpartition("-")
    return unit or "point", order


def unit_of_points(ds: RawDataset, points: np.ndarray, unit: str) -> np.ndarray:
    """The unit number of each point: its own index, its slice, or its instance."""
    if unit == "point":
        return np.arange(len(points), dtype=np.int64)
    slice_of_point = np.searchsorted(ds.slice_starts, points, side="right") - 1
    return slice_of_point if unit == "slice" else ds.slice_instance[slice_of_point]


def unit_order(ds: RawDataset, points: np.ndarray, unit: str, order: str, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Unit of each point (points sorted), and the units in KnowIt's split order."""
    unit_of_point = unit_of_points(ds, points, unit)
    units, first = np.unique(unit_of_point, return_index=True)
    if order == "random":
        elements = np.arange(len(units))
        np.random.RandomState(seed).shuffle(elements)
    else:
        elements = np.argsort(ds.times[points[first]])
    return unit_of_point, units[elements]


def _custom_split(ds: RawDataset, points: np.ndarray) -> dict[str, np.ndarray]:
    if ds.split is None:
        raise ConfigError(
            "data.split_method",
            f"custom needs a dataset imported with a 'split' column (0 train, 1 valid, 2 eval); "
            f"{ds.name!r} has none",
        )
    label = ds.split[points]
    out = {name: points[label == i] for i, name in enumerate(SPLIT_NAMES)}
    for name in ("train", "valid"):
        if len(out[name]) == 0:
            raise ConfigError(
                "data.split_method",
                f"custom: no prediction point of {ds.name!r} is marked for {name} "
                f"({SPLIT_NAMES.index(name)} in its 'split' column)",
            )
    return out


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
    unit, order = check_method(method, check_limit(limit))
    limit = check_limit(limit)
    points = np.unique(np.asarray(points, dtype=np.int64))
    if unit == "custom":
        return _custom_split(ds, points)

    unit_of_point, ordered = unit_order(ds, points, unit, order, int(seed))
    if limit is not None:
        if limit > len(ordered):
            raise ConfigError(
                "data.limit",
                f"limit {limit} is more than the {len(ordered)} {_UNIT_WORD[unit]} that hold "
                f"prediction points (split_method={method})",
            )
        ordered = ordered[:limit]
    n = len(ordered)
    n_train = math.floor(p_train * n)
    n_eval = math.floor(p_eval * n)
    n_valid = n - n_train - n_eval
    counts = {"train": n_train, "valid": n_valid, "eval": n_eval}
    for split in ("train", "valid"):
        if counts[split] == 0:
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


def selection_order(ds: RawDataset, points: np.ndarray, method: str, seed: int,
                    split_rows: np.ndarray) -> np.ndarray:
    """``split_rows`` in KnowIt's selection-matrix order: units in split order, rows in time.

    KnowIt's shuffling sampler permutes positions in this order, so the app's training batches
    hold the same points as KnowIt's only when it permutes the same sequence. ``points`` are all
    prediction points (the order of units depends on all of them); custom keeps row order.
    """
    split_rows = np.asarray(split_rows, dtype=np.int64)
    unit, order = check_method(method)
    if unit == "custom" or len(split_rows) == 0:
        return np.sort(split_rows)
    points = np.unique(np.asarray(points, dtype=np.int64))
    unit_of_point, ordered = unit_order(ds, points, unit, order, int(seed))
    rank = np.empty(int(unit_of_point.max()) + 1, dtype=np.int64)
    rank[ordered] = np.arange(len(ordered))
    point_rank = rank[unit_of_point[np.searchsorted(points, split_rows)]]
    return split_rows[np.lexsort((split_rows, point_rank))]
