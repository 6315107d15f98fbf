"""KnowIt's NaN handling at import: cut slices at NaNs, or interpolate them with pandas.

``base_nan_filler='split'`` removes rows with a NaN in the checked components and starts a new
slice after each gap; a pandas interpolation method fills NaNs in both directions within each
slice and drops a slice it cannot fill; None keeps NaNs (windows over them never become
prediction points). The checked components are ``nan_filled_components``, by default all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from knowit_app.errors import ConfigError

log = logging.getLogger("knowit_app")

# pandas.DataFrame.interpolate's methods (KnowIt passes base_nan_filler to it unchanged).
INTERPOLATION_METHODS = ("linear", "time", "index", "values", "pad", "nearest", "zero",
                         "slinear", "quadratic", "cubic", "barycentric", "krogh",
                         "piecewise_polynomial", "pchip", "akima", "cubicspline",
                         "from_derivatives")


def refuse_all_nan(names: Sequence[str], values: np.ndarray, key: str = "components") -> None:
    """An all-NaN component is refused (KnowIt refuses it too): it could never be a window."""
    empty = np.isnan(values).all(axis=0) if len(values) else np.zeros(len(names), dtype=bool)
    if empty.any():
        raise ConfigError(key, f"column {names[int(np.argmax(empty))]!r} is all NaN; KnowIt "
                          "refuses all-NaN components")


def nan_leaves_no_points(values: np.ndarray, components: Sequence[str], in_idx: np.ndarray,
                         out_idx: np.ndarray, dataset: str) -> ConfigError:
    """The error when windows fit in the slices but a NaN spoils every one: it names the
    components holding NaNs (most first) instead of blaming the chunks."""
    used = [int(i) for i in dict.fromkeys([*np.asarray(out_idx).tolist(),
                                           *np.asarray(in_idx).tolist()])]
    share = {i: float(np.isnan(values[:, i]).mean()) for i in used}
    blamed = sorted((i for i in used if share[i] > 0), key=lambda i: -share[i])
    key = "data.out_components" if blamed and blamed[0] in set(np.asarray(out_idx).tolist()) \
        else "data.in_components"
    listed = ", ".join(f"{components[i]} ({share[i]:.0%} of rows NaN)" for i in blamed)
    return ConfigError(key, f"no prediction points in dataset {dataset!r}: a NaN lies in every "
                       f"window, from {listed}; leave the component out, or re-import the data "
                       "with base_nan_filler ('split' or an interpolation method)")


def check_nan_options(filler: Any, comps: Any) -> None:
    if filler is not None and filler != "split" and filler not in INTERPOLATION_METHODS:
        raise ConfigError("base_nan_filler", f"unknown value {filler!r}; allowed: None, 'split' "
                          f"or a pandas interpolation method ({', '.join(INTERPOLATION_METHODS)})")
    if comps is not None and (isinstance(comps, str) or not isinstance(comps, Sequence)):
        raise ConfigError("nan_filled_components", f"must be a list of components; got {comps!r}")


class Rows:
    """The sorted rows being imported; NaN handling drops some of them."""

    def __init__(self, times: np.ndarray, inst: np.ndarray, values: np.ndarray,
                 split: np.ndarray | None) -> None:
        self.times, self.inst, self.values, self.split = times, inst, values, split

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(self.times[mask], self.inst[mask], self.values[mask],
                     self.split[mask] if self.split is not None else None)


def nan_columns(comp_names: list[str], chosen: Sequence[str] | None) -> np.ndarray:
    if chosen is None:
        return np.arange(len(comp_names))
    lookup = {c: i for i, c in enumerate(comp_names)}
    for c in chosen:
        if c not in lookup:
            raise ConfigError("nan_filled_components",
                              f"unknown component {c!r}; available: {', '.join(comp_names)}")
    return np.asarray([lookup[c] for c in chosen], dtype=np.int64)


def split_at_nans(rows: Rows, cut: np.ndarray, cols: np.ndarray) -> tuple[Rows, np.ndarray]:
    """KnowIt's 'split': rows with a NaN in ``cols`` go, and each gap they leave cuts a slice
    (every maximal run of NaN-free rows of a slice becomes a slice)."""
    ok = ~np.isnan(rows.values[:, cols]).any(axis=1)
    after_drop = np.zeros(len(ok), dtype=bool)
    after_drop[1:] = ~ok[:-1]
    return rows.take(ok), (cut | after_drop)[ok]


def fill_nans(rows: Rows, cut: np.ndarray, cols: np.ndarray, method: str,
               name: str) -> tuple[Rows, np.ndarray]:
    """Interpolate NaNs in ``cols`` slice by slice in both directions; drop slices left with
    a NaN (all-NaN in a column), as KnowIt does."""
    starts = np.flatnonzero(cut)
    ends = np.append(starts[1:], len(cut))
    keep = np.ones(len(cut), dtype=bool)
    values = rows.values.copy()
    for s, e in zip(starts, ends, strict=True):
        block = values[s:e][:, cols]
        if not np.isnan(block).any():
            continue
        df = pd.DataFrame(block, index=pd.DatetimeIndex(rows.times[s:e].astype("datetime64[ns]")))
        try:
            filled = df.interpolate(method=method, limit_direction="both").to_numpy()
        except (ValueError, TypeError, ImportError) as exc:
            if e - s == 1 and method not in ("time", "linear"):
                filled = block  # a one-row slice cannot be interpolated; dropped below
            else:
                raise ConfigError("base_nan_filler", f"interpolation {method!r} failed: "
                                  f"{str(exc).splitlines()[0]}") from exc
        values[s:e, cols] = filled
        if np.isnan(filled).any():
            keep[s:e] = False
    if not keep.all():
        log.warning("dataset %r: %d rows in slices with nothing to interpolate from are "
                    "dropped", name, int((~keep).sum()))
    rows.values = values
    return rows.take(keep), cut[keep]
