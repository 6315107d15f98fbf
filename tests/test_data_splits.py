"""Splits by point, slice and instance, in time order or shuffled, with limit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from knowit_app.data.dataset import RawDataset
from knowit_app.data.splits import SPLIT_METHODS, split_points
from knowit_app.errors import ConfigError

S = 1_000_000_000  # one second in ns
# Three instances. i0: slice 0 rows 0..3 (t 10..13 s), slice 1 rows 4..6 (t 20..22).
# i1: slice 2 rows 7..10 (t 0..3), the earliest. i2: slice 3 rows 11..12 (t 5..6),
# slice 4 rows 13..15 (t 12..14), which ties with rows 2 and 3 of i0.
TIMES = [10, 11, 12, 13, 20, 21, 22, 0, 1, 2, 3, 5, 6, 12, 13, 14]
STARTS, ENDS, INST = [0, 4, 7, 11, 13], [4, 7, 11, 13, 16], [0, 0, 1, 2, 2]
ALL = np.arange(16)


def dataset() -> RawDataset:
    return RawDataset(
        name="three", components=["v"], time_delta=1.0, values=np.zeros((16, 1)),
        times=np.array(TIMES) * S, slice_starts=np.array(STARTS), slice_ends=np.array(ENDS),
        slice_instance=np.array(INST), instance_names=["i0", "i1", "i2"],
    )


def as_sets(splits):
    return {k: set(v.tolist()) for k, v in splits.items()}


def rows_of(slices):
    return {r for k in slices for r in range(STARTS[k], ENDS[k])}


def check_well_formed(splits, points):
    assert set(splits) == {"train", "valid", "eval"}
    for v in splits.values():
        assert v.dtype == np.int64 and np.all(np.diff(v) > 0)
    got = np.concatenate(list(splits.values()))
    assert sorted(got.tolist()) == sorted(points.tolist())


def test_chronological_orders_points_by_time_then_row():
    # By (time, row): 7 8 9 10 11 12 0 1 2 13 3 14 15 4 5 6. Row 2 and row 13 share t=12:
    # train (9 points) takes row 2, not row 13.
    splits = split_points(dataset(), ALL, "chronological", [9 / 16, 3 / 16, 4 / 16], None, 0)
    check_well_formed(splits, ALL)
    assert as_sets(splits) == {
        "train": {7, 8, 9, 10, 11, 12, 0, 1, 2},
        "valid": {13, 3, 14},
        "eval": {15, 4, 5, 6},
    }


def test_slice_chronological_orders_slices_by_start_time():
    # Start times: slice 0 10 s, 1 20 s, 2 0 s, 3 5 s, 4 12 s -> order 2, 3, 0, 4, 1.
    splits = split_points(dataset(), ALL, "slice-chronological", [0.4, 0.4, 0.2], None, 0)
    check_well_formed(splits, ALL)
    assert as_sets(splits) == {"train": rows_of([2, 3]), "valid": rows_of([0, 4]),
                               "eval": rows_of([1])}


def test_instance_chronological_orders_instances_by_first_time():
    # First times: i0 10 s, i1 0 s, i2 5 s -> order i1, i2, i0.
    splits = split_points(dataset(), ALL, "instance-chronological", [1 / 3] * 3, None, 0)
    assert as_sets(splits) == {"train": rows_of([2]), "valid": rows_of([3, 4]),
                               "eval": rows_of([0, 1])}


@pytest.mark.parametrize("method, units, unit_rows", [
    ("random", list(range(16)), lambda u: {u}),
    ("slice-random", list(range(5)), lambda u: rows_of([u])),
    ("instance-random", [0, 1, 2], lambda u: rows_of([k for k in range(5) if INST[k] == u])),
])
@pytest.mark.parametrize("seed", [0, 7])
def test_random_methods_follow_the_seeded_permutation(method, units, unit_rows, seed):
    portions = [0.5, 0.25, 0.25] if len(units) > 3 else [1 / 3] * 3
    order = [units[i] for i in np.random.default_rng(seed).permutation(len(units))]
    n = len(order)
    n_train, n_eval = math.floor(portions[0] * n + 1e-9), math.floor(portions[2] * n + 1e-9)
    expected = {
        "train": set().union(*(unit_rows(u) for u in order[:n_train])),
        "valid": set().union(*(unit_rows(u) for u in order[n_train:n - n_eval])),
        "eval": set().union(*(unit_rows(u) for u in order[n - n_eval:])),
    }
    splits = split_points(dataset(), ALL, method, portions, None, seed)
    check_well_formed(splits, ALL)
    assert as_sets(splits) == expected
    assert as_sets(split_points(dataset(), ALL, method, portions, None, seed)) == expected


def test_random_split_changes_with_the_seed():
    a = split_points(dataset(), ALL, "random", [0.5, 0.25, 0.25], None, 1)
    b = split_points(dataset(), ALL, "random", [0.5, 0.25, 0.25], None, 2)
    assert as_sets(a) != as_sets(b)


def test_limit_keeps_the_first_units_of_the_order():
    # The first 8 points in time order are 7 8 9 10 11 12 0 1; the rest are dropped.
    splits = split_points(dataset(), ALL, "chronological", [0.5, 0.25, 0.25], 8, 0)
    assert as_sets(splits) == {"train": {7, 8, 9, 10}, "valid": {11, 12}, "eval": {0, 1}}
    # With slice-random, the first 3 slices of the seeded permutation.
    order = np.random.default_rng(5).permutation(5)[:3]
    splits = split_points(dataset(), ALL, "slice-random", [1 / 3] * 3, 3, 5)
    assert as_sets(splits) == {"train": rows_of([order[0]]), "valid": rows_of([order[1]]),
                               "eval": rows_of([order[2]])}


def test_units_without_points_do_not_count():
    points = np.array([r for r in range(16) if not 4 <= r <= 6])  # slice 1 has no points
    splits = split_points(dataset(), points, "slice-chronological", [0.5, 0.25, 0.25], None, 0)
    check_well_formed(splits, points)
    # 4 slices in order 2, 3, 0, 4: train 2, eval 1, valid 1.
    assert as_sets(splits) == {"train": rows_of([2, 3]), "valid": rows_of([0]),
                               "eval": rows_of([4])}


def test_an_empty_split_says_how_many_units_there_were():
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "instance-random", [0.6, 0.2, 0.2], None, 0)
    msg = str(info.value)
    assert info.value.key == "data.split_portions" and "\n" not in msg
    assert "eval split is empty" in msg and "3 instances" in msg
    with pytest.raises(ConfigError, match="2 slices"):
        split_points(dataset(), ALL, "slice-chronological", [0.4, 0.3, 0.3], 2, 0)


@pytest.mark.parametrize("portions", [
    [0.5, 0.5], [0.5, 0.6, -0.1], [0.5, 0.2, 0.2], ["a", 0.5, 0.5], 1.0, [0.5, 0.5, float("nan")],
])
def test_bad_portions(portions):
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "chronological", portions, None, 0)
    assert info.value.key == "data.split_portions"


def test_portions_within_tolerance_are_accepted():
    split_points(dataset(), ALL, "chronological", [0.5, 0.25, 0.25 + 5e-7], None, 0)


def test_unknown_method_lists_the_six():
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "sideways", [0.5, 0.25, 0.25], None, 0)
    assert info.value.key == "data.split_method"
    assert all(m in str(info.value) for m in SPLIT_METHODS)


@pytest.mark.parametrize("limit", [0, -3, 1.5, True, "4"])
def test_bad_limit(limit):
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "chronological", [0.5, 0.25, 0.25], limit, 0)
    assert info.value.key == "data.limit"
