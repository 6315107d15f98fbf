"""Splits by point, slice and instance, in time order or shuffled, with limit, as KnowIt's.

``knowit_split`` (tests/knowit_oracle.py) restates KnowIt's ``DataSplitter._do_split`` in its
own terms, independently of our index arithmetic, and is the oracle for seeds, portions, limits
and methods that no hand-worked example covers."""

from __future__ import annotations

import numpy as np
import pytest
from knowit_oracle import knowit_split

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


@pytest.mark.parametrize("method", [m for m in SPLIT_METHODS if m != "custom"])
@pytest.mark.parametrize("seed", [0, 7, 123, 2024])
def test_every_method_matches_knowits_split(method, seed):
    ds = dataset()
    unit = method.split("-")[0] if "-" in method else "point"
    portions = [1 / 3] * 3 if unit == "instance" else [0.5, 0.25, 0.25]
    splits = split_points(ds, ALL, method, portions, None, seed)
    check_well_formed(splits, ALL)
    assert as_sets(splits) == knowit_split(ds, ALL, method, portions, None, seed)


def test_random_order_is_numpys_legacy_generator():
    # Instance-level with seed 7: numpy.random.seed(7); shuffle([0, 1, 2]) is the order.
    np.random.seed(7)
    order = np.arange(3)
    np.random.shuffle(order)
    splits = split_points(dataset(), ALL, "instance-random", [1 / 3] * 3, None, 7)
    by_inst = [rows_of([k for k in range(5) if INST[k] == u]) for u in order]
    assert as_sets(splits) == dict(zip(("train", "valid", "eval"), by_inst, strict=True))


def test_splitting_leaves_the_global_generator_alone():
    np.random.seed(99)
    before = np.random.random()
    np.random.seed(99)
    split_points(dataset(), ALL, "random", [0.5, 0.25, 0.25], None, 3)
    assert np.random.random() == before


def test_random_split_changes_with_the_seed():
    a = split_points(dataset(), ALL, "random", [0.5, 0.25, 0.25], None, 1)
    b = split_points(dataset(), ALL, "random", [0.5, 0.25, 0.25], None, 2)
    assert as_sets(a) != as_sets(b)


@pytest.mark.parametrize("method, limit", [("chronological", 8), ("slice-random", 3),
                                           ("random", 12), ("instance-chronological", 2)])
def test_limit_keeps_the_first_units_of_the_order(method, limit):
    portions = [0.5, 0.5, 0.0] if limit == 2 else [0.5, 0.25, 0.25]
    got = as_sets(split_points(dataset(), ALL, method, portions, limit, 5))
    assert got == knowit_split(dataset(), ALL, method, portions, limit, 5)
    if method == "chronological":  # the first 8 points in time order: 7 8 9 10 11 12 0 1
        assert got == {"train": {7, 8, 9, 10}, "valid": {11, 12}, "eval": {0, 1}}


def test_limit_beyond_the_units_is_refused():
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "instance-random", [1 / 3] * 3, 4, 0)
    assert info.value.key == "data.limit" and "3 instances" in str(info.value)


def test_units_without_points_do_not_count():
    points = np.array([r for r in range(16) if not 4 <= r <= 6])  # slice 1 has no points
    splits = split_points(dataset(), points, "slice-chronological", [0.5, 0.25, 0.25], None, 0)
    check_well_formed(splits, points)
    # 4 slices in order 2, 3, 0, 4: train 2, eval 1, valid 1.
    assert as_sets(splits) == {"train": rows_of([2, 3]), "valid": rows_of([0]),
                               "eval": rows_of([4])}


def test_an_empty_eval_split_is_allowed_as_in_knowit():
    # 3 instances by [0.6, 0.2, 0.2]: train floor(1.8) = 1, eval floor(0.6) = 0, valid 2.
    splits = split_points(dataset(), ALL, "instance-random", [0.6, 0.2, 0.2], None, 0)
    assert len(splits["eval"]) == 0 and len(splits["train"]) and len(splits["valid"])


def test_an_empty_split_says_how_many_units_there_were():
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "instance-chronological", [2 / 3, 0.0, 1 / 3], None, 0)
    msg = str(info.value)
    assert info.value.key == "data.split_portions" and "\n" not in msg
    assert "valid split is empty" in msg and "3 instances" in msg
    with pytest.raises(ConfigError, match="2 slices"):
        split_points(dataset(), ALL, "slice-chronological", [0.4, 0.3, 0.3], 2, 0)


def test_custom_split_uses_the_datasets_split_column():
    ds = dataset()
    ds.split = np.array([0, 0, 1, 2, -1, 0, 0, 1, 1, 2, 2, 0, 1, 2, 0, 0], dtype=np.int8)
    points = np.array([r for r in range(16) if r != 5])  # row 5 is not a prediction point
    splits = split_points(ds, points, "custom", [0.8, 0.1, 0.1], None, 0)
    assert as_sets(splits) == {"train": {0, 1, 6, 11, 14, 15}, "valid": {2, 7, 8, 12},
                               "eval": {3, 9, 10, 13}}


def test_custom_split_needs_a_split_column_and_no_limit():
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "custom", [0.8, 0.1, 0.1], None, 0)
    assert info.value.key == "data.split_method" and "'split' column" in str(info.value)
    ds = dataset()
    ds.split = np.zeros(16, dtype=np.int8)
    with pytest.raises(ConfigError) as info:
        split_points(ds, ALL, "custom", [0.8, 0.1, 0.1], 5, 0)
    assert info.value.key == "data.limit"
    with pytest.raises(ConfigError, match="valid"):
        split_points(ds, ALL, "custom", [0.8, 0.1, 0.1], None, 0)


@pytest.mark.parametrize("portions", [
    [0.5, 0.5], [0.5, 0.6, -0.1], [0.5, 0.2, 0.2], ["a", 0.5, 0.5], 1.0, [0.5, 0.5, float("nan")],
])
def test_bad_portions(portions):
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "chronological", portions, None, 0)
    assert info.value.key == "data.split_portions"


def test_portions_within_tolerance_are_accepted():
    split_points(dataset(), ALL, "chronological", [0.5, 0.25, 0.25 + 5e-7], None, 0)


def test_unknown_method_lists_the_methods():
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "sideways", [0.5, 0.25, 0.25], None, 0)
    assert info.value.key == "data.split_method"
    assert all(m in str(info.value) for m in SPLIT_METHODS)


@pytest.mark.parametrize("limit", [0, -3, 1.5, True, "4"])
def test_bad_limit(limit):
    with pytest.raises(ConfigError) as info:
        split_points(dataset(), ALL, "chronological", [0.5, 0.25, 0.25], limit, 0)
    assert info.value.key == "data.limit"
