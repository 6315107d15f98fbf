"""Which prediction points to interpret: a contiguous block of one slice, as KnowIt picks them.

A block is a run of points on consecutive rows of one slice, so the selected points follow each
other in time and an animation over them reads as a film. ``random`` takes a random block of
``size`` points (seeded); ``success``/``failure`` the block with the lowest/highest mean
prediction error; ``all`` every point of the set.
"""

from __future__ import annotations

import numpy as np

from knowit_app.errors import ConfigError

NEEDS_ERRORS = ("success", "failure")


def contiguous_blocks(rows: np.ndarray, slice_start: np.ndarray) -> list[np.ndarray]:
    """Positions into ``rows`` (ascending dataset rows) cut where a row gap or a new slice is."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return []
    breaks = (np.diff(rows) != 1) | (np.diff(slice_start[rows]) != 0)
    cuts = np.flatnonzero(breaks) + 1
    return np.split(np.arange(len(rows)), cuts)


def select_points(rows: np.ndarray, slice_start: np.ndarray, selection: str, size: int,
                  seed: int, errors: np.ndarray | None = None, set_name: str = "chosen",
                  ) -> np.ndarray:
    """Positions (into ``rows``) of the points to interpret, in time order.

    ``errors`` (one per point, same order as ``rows``) is needed by success/failure. A
    ConfigError names ``size`` when no block of one slice holds ``size`` points.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if selection == "all":
        if len(rows) == 0:
            raise ConfigError("set", f"the {set_name} set has no prediction points")
        return np.arange(len(rows))
    if size > len(rows):
        raise ConfigError("size", f"{size} is more than the {len(rows)} prediction points of "
                          f"the {set_name} set; give size<={len(rows)} or selection=all")
    blocks = [b for b in contiguous_blocks(rows, slice_start) if len(b) >= size]
    if not blocks:
        longest = max((len(b) for b in contiguous_blocks(rows, slice_start)), default=0)
        raise ConfigError("size", f"no run of {size} consecutive prediction points in one slice "
                          f"of the {set_name} set (the longest has {longest}); give "
                          f"size<={longest}")
    if selection == "random":
        rng = np.random.default_rng(seed)
        block = blocks[int(rng.integers(len(blocks)))]
        start = int(rng.integers(0, len(block) - size + 1))
        return block[start:start + size]
    if selection not in NEEDS_ERRORS:
        raise ConfigError("selection", f"unknown value {selection!r}; allowed: random, success, "
                          "failure, all")
    if errors is None or len(errors) != len(rows):
        raise ValueError("success/failure selection needs one error per prediction point")
    sign = 1.0 if selection == "success" else -1.0
    best_score, best = np.inf, blocks[0][:size]
    for block in blocks:
        err = np.nan_to_num(np.asarray(errors, dtype=np.float64)[block], nan=np.inf * sign)
        window_mean = np.convolve(err, np.ones(size) / size, mode="valid")
        i = int(np.argmin(sign * window_mean))
        if sign * window_mean[i] < best_score:
            best_score, best = sign * window_mean[i], block[i:i + size]
    return best
