"""The in-memory dataset: instances -> slices -> time steps, with named components.

One flat array of rows instead of nested per-slice frames: every later step (windows, splits,
batches) is index arithmetic on it, which keeps it vectorised and cheap to store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knowit_app.errors import ConfigError


@dataclass
class RawDataset:
    """A dataset as stored on disk.

    Rows are grouped by slice, chronological within a slice; the slices of an instance are in
    time order and instances follow each other. Slice ``k`` is rows
    ``[slice_starts[k], slice_ends[k])`` of instance ``slice_instance[k]``.
    """

    name: str
    components: list[str]
    time_delta: float  # seconds between consecutive steps of a slice
    values: np.ndarray  # float64 (n_rows, n_components); NaN marks a missing value
    times: np.ndarray  # int64 (n_rows,) nanoseconds since the epoch
    slice_starts: np.ndarray  # int64 (n_slices,)
    slice_ends: np.ndarray  # int64 (n_slices,)
    slice_instance: np.ndarray  # int64 (n_slices,)
    instance_names: list[str]
    # A user-defined split (KnowIt's 'split' column): int8 per row, 0 train, 1 valid, 2 eval,
    # -1 in no set. None when the dataset defines no split (split_method=custom refuses it).
    split: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.components = [str(c) for c in self.components]
        self.instance_names = [str(n) for n in self.instance_names]
        self.time_delta = float(self.time_delta)
        self.values = np.asarray(self.values, dtype=np.float64)
        self.times = np.asarray(self.times, dtype=np.int64)
        self.slice_starts = np.asarray(self.slice_starts, dtype=np.int64)
        self.slice_ends = np.asarray(self.slice_ends, dtype=np.int64)
        self.slice_instance = np.asarray(self.slice_instance, dtype=np.int64)
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=np.int8)
        self._check()

    def _check(self) -> None:
        """Catch a malformed dataset here rather than as an index error deep in training."""
        n_rows = len(self.times)
        if self.values.shape != (n_rows, len(self.components)):
            raise ValueError(
                f"dataset {self.name!r}: values shape {self.values.shape} does not match "
                f"{n_rows} rows x {len(self.components)} components"
            )
        n = len(self.slice_starts)
        if not (len(self.slice_ends) == len(self.slice_instance) == n):
            raise ValueError(f"dataset {self.name!r}: slice arrays differ in length")
        if n and (
            self.slice_starts[0] != 0
            or self.slice_ends[-1] != n_rows
            or np.any(self.slice_ends <= self.slice_starts)
            or np.any(self.slice_starts[1:] != self.slice_ends[:-1])
        ):
            raise ValueError(f"dataset {self.name!r}: slices must tile the rows in order")
        if n and (
            np.any(self.slice_instance < 0)
            or np.any(self.slice_instance >= len(self.instance_names))
            or np.any(np.diff(self.slice_instance) < 0)
        ):
            raise ValueError(f"dataset {self.name!r}: slice instances must be in order")
        if self.time_delta <= 0:
            raise ValueError(f"dataset {self.name!r}: time_delta must be positive")
        if self.split is not None and (
            self.split.shape != (n_rows,) or np.any((self.split < -1) | (self.split > 2))
        ):
            raise ValueError(f"dataset {self.name!r}: split must be -1, 0, 1 or 2 per row")

    @property
    def n_rows(self) -> int:
        return int(len(self.times))

    @property
    def n_slices(self) -> int:
        return int(len(self.slice_starts))

    @property
    def n_instances(self) -> int:
        return len(self.instance_names)

    def component_index(self, names: Sequence[str], key: str) -> np.ndarray:
        """Column indices of ``names``; an unknown name is the user's error, reported at ``key``."""
        lookup = {c: i for i, c in enumerate(self.components)}
        out = []
        for name in names:
            if name not in lookup:
                raise ConfigError(
                    key,
                    f"unknown component {name!r}; available: {', '.join(self.components)}",
                )
            out.append(lookup[name])
        return np.asarray(out, dtype=np.int64)

    def row_slice_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (exclusive) of the slice each row belongs to, one entry per row."""
        lengths = self.slice_ends - self.slice_starts
        return np.repeat(self.slice_starts, lengths), np.repeat(self.slice_ends, lengths)

    def row_slice(self) -> np.ndarray:
        """Slice index of each row."""
        lengths = self.slice_ends - self.slice_starts
        return np.repeat(np.arange(self.n_slices, dtype=np.int64), lengths)
