"""KnowIt's split rule restated for tests, independently of the app's index arithmetic.

``knowit_split`` follows KnowIt's ``DataSplitter._do_split`` step by step: a selection matrix of
(instance, slice-in-instance, position) rows, blocks from ``numpy.unique(..., return_index=True)``,
``numpy.random.seed(seed)`` then ``numpy.random.shuffle`` for the random methods, ``argsort`` of
each block's first time for the chronological ones, then ``floor`` portions.
"""

from __future__ import annotations

import numpy as np


def knowit_selection(ds, points, method, portions, limit, seed):
    """KnowIt's selection matrices (train, valid, eval) as lists of our rows, in its order."""
    rows = np.sort(points)
    slice_of = np.searchsorted(ds.slice_starts, rows, side="right") - 1
    inst = ds.slice_instance[slice_of]
    first_slice = {i: int(np.flatnonzero(ds.slice_instance == i)[0]) for i in set(inst.tolist())}
    sel = np.column_stack([inst, slice_of - np.array([first_slice[i] for i in inst]),
                           rows - ds.slice_starts[slice_of]])
    times = ds.times[rows]
    level = {"slice": 2, "instance": 1}.get(method.split("-")[0], 3)
    _, idx = np.unique(sel[:, :level], return_index=True, axis=0)
    bounds = np.append(idx, len(sel))
    if method.endswith("random"):
        np.random.seed(seed)
        elements = np.arange(len(idx))
        np.random.shuffle(elements)
    else:
        elements = np.argsort(times[idx])
    if limit:
        elements = elements[:limit]
    n_train = int(np.floor(portions[0] * len(elements)))
    n_eval = int(np.floor(portions[2] * len(elements)))
    parts = (elements[:n_train], elements[n_train:len(elements) - n_eval],
             elements[len(elements) - n_eval:])
    return {name: [int(r) for e in part for r in rows[bounds[e]:bounds[e + 1]]]
            for name, part in zip(("train", "valid", "eval"), parts, strict=True)}


def knowit_split(ds, points, method, portions, limit, seed):
    """KnowIt's split of a NaN-free dataset's points, as sets of our row numbers."""
    return {k: set(v) for k, v in knowit_selection(ds, points, method, portions, limit,
                                                   seed).items()}


def knowit_batches(selection, batch_size, seed, epoch):
    """KnowIt's CustomSampler, independent mode with shuffling and drop_small, for one epoch."""
    sampling = np.arange(len(selection))
    np.random.default_rng(seed + epoch).shuffle(sampling)
    batches = [[selection[i] for i in sampling[b:b + batch_size]]
               for b in range(0, len(selection), batch_size)]
    return [b for b in batches if len(b) >= batch_size]
