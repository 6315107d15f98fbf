"""Prediction points: the rows at which a model sees an input window and predicts an output one.

KnowIt's rule (``DataSplitter._select_prediction_points`` with its default ``in_portion=0.5``), for
a point at position ``t`` of a slice of ``L`` rows, ``in_chunk = [a, b]`` and ``out_chunk = [c, d]``
(both inclusive, so ``[-32, 0]`` is 33 steps):

- the slice counts only if ``min_slice`` is null or ``L > min_slice``;
- the output window lies inside the slice: ``t + c >= 0`` when ``c < 0`` and ``t + d <= L - 1``
  when ``d > 0``;
- the input window is trimmed at half its reach: ``t >= -(a // 2)`` when ``a // 2 < 0`` and
  ``t <= L - 1 - b // 2`` when ``b // 2 > 0`` (``//`` floors, as KnowIt's ``floor(chunk * 0.5)``);
  input steps outside the slice are padded when batches are built.

So the rule looks at each end of the window separately, not at the total overhang. On data
without NaN these are exactly KnowIt's points. Where NaN remain, KnowIt only checks the out
components at row ``t``; we also drop points whose output window, or the part of the input window
inside the slice, holds a NaN in the components used, since such a window gives a NaN loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from knowit_app.data.dataset import RawDataset
from knowit_app.data.nans import nan_leaves_no_points
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


def check_min_slice(min_slice: object) -> int | None:
    """None or a non-negative int, or a ConfigError."""
    if min_slice is None:
        return None
    if isinstance(min_slice, bool) or not isinstance(min_slice, (int, np.integer)) or min_slice < 0:
        raise ConfigError(
            "data.min_slice", f"expected null or a non-negative integer, got {min_slice!r}"
        )
    return int(min_slice)


def edge_ok(t: np.ndarray, length: np.ndarray, in_chunk: tuple[int, int],
            out_chunk: tuple[int, int]) -> np.ndarray:
    """KnowIt's edge rule for positions ``t`` in slices of ``length`` rows (see module doc)."""
    a, b = in_chunk[0] // 2, in_chunk[1] // 2
    c, d = out_chunk
    ok = np.ones(np.shape(t), dtype=bool)
    if c < 0:
        ok &= t >= -c
    if d > 0:
        ok &= t <= length - 1 - d
    if a < 0:
        ok &= t >= -a
    if b > 0:
        ok &= t <= length - 1 - b
    return ok


def prediction_points(
    ds: RawDataset,
    in_chunk: Sequence[int],
    out_chunk: Sequence[int],
    in_idx: np.ndarray,
    out_idx: np.ndarray,
    min_slice: int | None = None,
) -> np.ndarray:
    """Rows that are valid prediction points (int64, ascending); see the module docstring."""
    a, b = parse_chunk(in_chunk, "data.in_chunk")
    c, d = parse_chunk(out_chunk, "data.out_chunk")
    min_slice = check_min_slice(min_slice)

    t = np.arange(ds.n_rows, dtype=np.int64)
    s, e = ds.row_slice_bounds()
    ok = edge_ok(t - s, e - s, (a, b), (c, d))
    if min_slice is not None:
        ok &= (e - s) > min_slice
    fits = ok.any()  # some windows fit in their slices, before NaNs are looked at

    def clean(idx: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        nan_rows = np.isnan(ds.values[:, idx]).any(axis=1)
        cum = np.concatenate([[0], np.cumsum(nan_rows, dtype=np.int64)])
        res = np.zeros(ds.n_rows, dtype=bool)
        res[ok] = _window_nan_count(cum, lo[ok], hi[ok]) == 0
        return res

    ok &= clean(np.asarray(out_idx), t + c, t + d)
    lo, hi = np.maximum(t + a, s), np.minimum(t + b, e - 1)
    inside = lo <= hi
    # A window wholly outside its slice is all padding: nothing to check (any row stands in).
    in_clean = clean(np.asarray(in_idx), np.where(inside, lo, s), np.where(inside, hi, s))
    ok &= in_clean | ~inside
    points = np.flatnonzero(ok).astype(np.int64)
    if points.size == 0 and fits:  # NaNs, not the chunks, leave no point: name the component
        raise nan_leaves_no_points(ds.values, ds.components, in_idx, out_idx, ds.name)
    if points.size == 0:
        longest = int((ds.slice_ends - ds.slice_starts).max()) if ds.n_slices else 0
        # Blame the key at fault: min_slice may leave no slice, or out_chunk alone not fit.
        kept = np.ones(ds.n_rows, dtype=bool) if min_slice is None else (e - s) > min_slice
        key = ("data.min_slice" if not kept.any() else "data.in_chunk"
               if (edge_ok(t - s, e - s, (0, 0), (c, d)) & kept).any() else "data.out_chunk")
        raise ConfigError(
            key,
            f"no prediction points in dataset {ds.name!r} for in_chunk [{a}, {b}] and out_chunk "
            f"[{c}, {d}]: the longest slice has {longest} steps (the output window must lie in "
            "a slice, the input window may reach out of it by half its ends, no NaN"
            + ("" if min_slice is None else f", slices longer than min_slice={min_slice}")
            + ")",
        )
    return points
