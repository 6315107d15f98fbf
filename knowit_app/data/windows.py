"""Batches over one split: KnowIt's batch order, with each split's windows gathered once.

A loader iterates a split many times (every epoch). When a split's windows fit the memory
budget below, they are built once, with :meth:`PreparedData.batch` itself, into one contiguous
tensor (in the loader's point order), and each batch is then a single index into it: the same
values, padding and order as building every batch from the series, at a fraction of the
per-step cost. Splits over the budget keep building each batch from the series.

Memory rule: a split's gathered windows (inputs + targets) are kept when they take at most
``GATHER_BUDGET_BYTES`` (512 MiB) and at most a quarter of the memory the system has available
when the loader is made; otherwise batches are built per step as before.

Between runs: a sweep worker trains many runs on the same data, and gathering synth_2's windows
takes about 0.13 s of each run's start. The last ``KEPT_GATHERS`` gathers of a process (each at
most ``KEPT_MAX_BYTES``) are kept, keyed by a digest of everything the windows are built from
(series, targets, slice bounds, offsets, padding, task, the points in order), so a run on the
same data reuses them and a run on any other data cannot. Nothing writes into gathered windows
(every batch is a copy).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch

from knowit_app.errors import ConfigError

if TYPE_CHECKING:
    from knowit_app.data.prepared import PreparedData

GATHER_BUDGET_BYTES = 512 * 2**20
KEPT_GATHERS = 2  # a run's train and valid splits
KEPT_MAX_BYTES = 128 * 2**20  # larger gathers are not kept once their loader is gone
_kept: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
GATHER_CHUNK_ROWS = 8192  # rows gathered per call while building, to bound index arrays


class PointBatches:
    """Point rows cut into batches; a fresh seeded permutation each epoch when shuffling.

    As KnowIt's sampler: the permutation of epoch ``e`` is
    ``numpy.random.default_rng(seed + e).shuffle`` of the positions in ``rows`` (for training,
    KnowIt's selection order), so batches hold the points KnowIt's would. Lightning calls
    :meth:`set_epoch` before each epoch, so a run resumed at epoch ``e`` sees the same order it
    would have seen without the interruption. With ``drop_last`` a final batch smaller than
    ``batch_size`` is left out (KnowIt's ``drop_small`` for training).
    """

    def __init__(self, rows: np.ndarray, batch_size: int, shuffle: bool, seed: int,
                 drop_last: bool = False) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def positions(self) -> Iterator[np.ndarray | slice]:
        """Each batch as positions into :attr:`rows` (a slice when not shuffled)."""
        stop = len(self) * self.batch_size
        if not self.shuffle:
            for i in range(0, stop, self.batch_size):
                yield slice(i, min(i + self.batch_size, len(self.rows)))
            return
        order = np.arange(len(self.rows))
        np.random.default_rng(self.seed + self.epoch).shuffle(order)
        self.epoch += 1
        for i in range(0, stop, self.batch_size):
            yield order[i:i + self.batch_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        for pos in self.positions():
            yield self.rows[pos]

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.rows) // self.batch_size
        return math.ceil(len(self.rows) / self.batch_size)


def _available_bytes() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform
        return None


def gathered_bytes(prepared: PreparedData, n_points: int) -> int:
    """Bytes that ``n_points`` gathered windows (inputs and targets) take."""
    per_x = math.prod(prepared.in_shape) * prepared.x.element_size()
    n_out = 1 if prepared.task == "classification" else math.prod(prepared.out_shape)
    return n_points * (per_x + n_out * prepared.y.element_size())


def fits_budget(nbytes: int, available: int | None = None) -> bool:
    """The memory rule of this module (see its docstring)."""
    available = _available_bytes() if available is None else available
    return nbytes <= GATHER_BUDGET_BYTES and (available is None or nbytes <= available // 4)


def gather_windows(prepared: PreparedData,
                   rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of ``rows`` in that order, built in chunks with ``prepared.batch``."""
    rows = np.asarray(rows, dtype=np.int64)
    xs, ys = [], []
    for i in range(0, len(rows), GATHER_CHUNK_ROWS):
        xb, yb = prepared.batch(rows[i:i + GATHER_CHUNK_ROWS])
        xs.append(xb)
        ys.append(yb)
    if not xs:
        return prepared.batch(rows)
    return torch.cat(xs), torch.cat(ys)


def _gather_key(prepared: PreparedData, rows: np.ndarray) -> str:
    """A digest of every input of ``gather_windows(prepared, rows)``."""
    digest = hashlib.blake2b(digest_size=20)
    for array in (prepared.x, prepared.y, prepared.row_slice_start, prepared.row_slice_end,
                  prepared.in_offsets, prepared.out_offsets, rows):
        data = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        digest.update(f"{data.dtype}{data.shape}".encode())
        digest.update(np.ascontiguousarray(data).data)
    digest.update(f"{prepared.padding_method}/{prepared.task}".encode())
    return digest.hexdigest()


def kept_windows(prepared: PreparedData, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``gather_windows(prepared, rows)``, reused from an earlier run of this process if any."""
    rows = np.asarray(rows, dtype=np.int64)
    if gathered_bytes(prepared, len(rows)) > KEPT_MAX_BYTES:  # never kept: no digest either
        return gather_windows(prepared, rows)
    key = _gather_key(prepared, rows)
    windows = _kept.get(key)
    if windows is None:
        windows = gather_windows(prepared, rows)
        _kept[key] = windows
        while len(_kept) > KEPT_GATHERS:
            _kept.popitem(last=False)
    _kept.move_to_end(key)
    return windows


class WindowLoader:
    """An iterable of ready ``(inputs, targets)`` batches over one split.

    Not a ``DataLoader``: batches are whole tensors (one index into the gathered windows, or
    built by index arithmetic), so its fetch/collate machinery would only add per-step cost.
    Lightning accepts any iterable with ``len``; it finds :attr:`sampler` and calls its
    ``set_epoch``. Each batch is a fresh tensor, never a view of the gathered windows, so a
    model that changes its input in place cannot change later epochs.
    """

    batch_sampler = None

    def __init__(self, prepared: PreparedData, sampler: PointBatches,
                 pregather: bool | None = None) -> None:
        self.prepared = prepared
        self.sampler = sampler
        if pregather is None:
            pregather = fits_budget(gathered_bytes(prepared, len(sampler.rows)))
        self.pregather = bool(pregather)
        self._windows: tuple[torch.Tensor, torch.Tensor] | None = None

    def windows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's windows in the sampler's row order, gathered on first use."""
        if self._windows is None:
            self._windows = kept_windows(self.prepared, self.sampler.rows)
        return self._windows

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.pregather:
            batch = self.prepared.batch
            for rows in self.sampler:
                yield batch(rows)
            return
        x_all, y_all = self.windows()
        for pos in self.sampler.positions():
            if isinstance(pos, slice):
                yield x_all[pos].clone(), y_all[pos].clone()
            else:
                index = torch.from_numpy(pos)  # index_select: 2-3x faster than x_all[index]
                yield x_all.index_select(0, index), y_all.index_select(0, index)

    def __len__(self) -> int:
        return len(self.sampler)


# Loss options under which a batch's mean loss is a plain mean over its samples, so the
# sample-weighted epoch mean is the same for any batch size (weights and ignored targets change
# each batch's denominator; other reductions are not means).
MEAN_SAFE_LOSS_KWARGS = ("delta", "beta", "label_smoothing")
EVAL_BATCH_FACTOR = 4


def validation_batch_size(batch_size: int, loss_kwargs: Mapping[str, object],
                          builtin_arch: bool) -> int:
    """The validation pass's batch size: ``EVAL_BATCH_FACTOR`` x the training one when safe.

    Validation runs without gradients in eval mode, so a larger batch gives the same
    predictions (to float rounding) at a fraction of the per-batch cost, and needs no more
    memory than a training step at the training batch size (which also keeps every layer's
    activations for backward). Safe means: a built-in architecture (no batch-dependent eval
    behaviour) and a loss whose batch value is a plain per-sample mean, so the logged
    ``valid_loss`` and metrics (torchmetrics accumulate over batches) do not depend on how
    the split is cut. Otherwise validation keeps the training batch size.
    """
    kwargs = dict(loss_kwargs or {})
    mean = kwargs.pop("reduction", "mean") == "mean"
    if builtin_arch and mean and set(kwargs) <= set(MEAN_SAFE_LOSS_KWARGS):
        return int(batch_size) * EVAL_BATCH_FACTOR
    return int(batch_size)


def effective_batch_size(prepared: PreparedData, batch_size: int) -> int:
    """KnowIt lowers a batch size larger than the smallest non-empty split to that split's size."""
    sizes = [n for n in prepared.split_sizes().values() if n > 0]
    return min([batch_size, *sizes])


def make_dataloader(
    prepared: PreparedData, split: str, batch_size: int, shuffle: bool, seed: int,
    drop_last: bool | None = None, pregather: bool | None = None,
) -> WindowLoader:
    """An iterable over one split whose items are whole batches.

    ``drop_last`` defaults to KnowIt's choice: training batches (train split, shuffled) drop a
    final partial batch; evaluation and prediction keep every point. ``pregather`` defaults to
    the memory rule of this module; True or False forces one way.
    """
    if split not in prepared.points:
        raise ValueError(f"unknown split {split!r}; have {', '.join(prepared.points)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size <= 0):
        raise ConfigError("data.batch_size",
                          f"expected a positive integer, got {batch_size!r}")
    batch_size = effective_batch_size(prepared, int(batch_size))
    if drop_last is None:
        drop_last = split == "train" and bool(shuffle)
    rows = prepared.points[split]
    if shuffle and split == "train" and prepared.train_order is not None:
        rows = prepared.train_order
    sampler = PointBatches(rows, batch_size, bool(shuffle), int(seed), bool(drop_last))
    return WindowLoader(prepared, sampler, pregather)
