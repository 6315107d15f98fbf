"""Prediction points: the rows at which a model sees an input window and predicts an output one.

Rules, for a point at row ``t`` of slice ``[s, e)``, ``in_chunk = [a, b]``, ``out_chunk = [c, d]``
(both inclusive, so ``[-32, 0]`` is 33 steps):

- the output rows ``t+c .. t+d`` lie inside the slice and hold no NaN in the out components;
- the input rows ``t+a .. t+b`` may stick out of the slice by at most ``n_in // 2`` steps in
  total (those steps are padded when batches are built), and the part inside the slice holds no
  NaN in the in components. NaNs in other components, or outside both windows, do not matter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from knowit_app.data.dataset import RawDataset
from knowit_app.errors import ConfigError


def parse_chunk(chunk: object, key: str) -> tuple[int, int]:
    """``[start, end]`` as two ints with start <= end, or a ConfigError at ``key``."""
    iterable = hasattr(chunk, "__iter__") and not isinstance(chunk, (str, bytes))
    items = list(chunk) if iterable else None  # also takes OmegaConf ListConfig and arrays
    ok = (
        items is not None
        and len(items) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items)
    )
    if not ok or int(items[0]) > int(items[1]):
        shown = items if items is not None else chunk
        raise ConfigError(
            key, f"expected two integers [start, end] with start <= end, got {shown!r}"
        )
    return int(items[0]), int(items[1])


def _window_nan_count(nan_cum: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """NaN rows in ``[lo, hi]`` (inclusive), from a cumulative count with a leading zero."""
    return nan_cum[hi + 1] - nan_cum[lo]


def prediction_points(
    ds: RawDataset,
    in_chunk: Sequence[int],
    out_chunk: Sequence[int],
    in_idx: np.ndarray,
    out_idx: np.ndarray,
) -> np.ndarray:
    """Rows that are valid prediction points (int64, ascending); see the module docstring."""
    a, b = parse_chunk(in_chunk, "data.in_chunk")
    c, d = parse_chunk(out_chunk, "data.out_chunk")
    n_in = b - a + 1
    max_out = n_in // 2

    t = np.arange(ds.n_rows, dtype=np.int64)
    s, e = ds.row_slice_bounds()

    out_ok = (t + c >= s) & (t + d <= e - 1)
    in_outside = np.maximum(s - (t + a), 0) + np.maximum((t + b) - (e - 1), 0)
    in_ok = in_outside <= max_out
    ok = out_ok & in_ok

    def clean(idx: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        nan_rows = np.isnan(ds.values[:, idx]).any(axis=1)
        cum = np.concatenate([[0], np.cumsum(nan_rows, dtype=np.int64)])
        res = np.zeros(ds.n_rows, dtype=bool)
        res[ok] = _window_nan_count(cum, lo[ok], hi[ok]) == 0
        return res

    ok &= clean(np.asarray(out_idx), t + c, t + d)
    ok &= clean(np.asarray(in_idx), np.maximum(t + a, s), np.minimum(t + b, e - 1))
    points = np.flatnonzero(ok).astype(np.int64)
    if points.size == 0:
        longest = int((ds.slice_ends - ds.slice_starts).max()) if ds.n_slices else 0
        raise ConfigError(
            "data.in_chunk",
            f"no prediction points in dataset {ds.name!r} for in_chunk [{a}, {b}] and out_chunk "
            f"[{c}, {d}]: the longest slice has {longest} steps (windows need the output inside "
            f"a slice, at most {max_out} input steps outside, and no NaN)",
        )
    return points
