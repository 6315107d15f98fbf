"""Prediction points: which rows get a full output window and a mostly-inside input window."""

from __future__ import annotations

import numpy as np
import pytest

from knowit_app.data.dataset import RawDataset
from knowit_app.data.points import prediction_points
from knowit_app.errors import ConfigError


def small_dataset() -> RawDataset:
    """Two instances: instance 0 has slices rows 0..9 and 10..15, instance 1 rows 16..23.

    Components a, b (inputs), y (output), c (unused). NaNs: a at row 19, y at row 12, c at row 5.
    """
    n = 24
    values = np.arange(n * 4, dtype=np.float64).reshape(n, 4)
    values[19, 0] = np.nan
    values[12, 2] = np.nan
    values[5, 3] = np.nan
    times = np.arange(n, dtype=np.int64) * 1_000_000_000
    times[10:16] += 100_000_000_000  # the gap that cuts instance 0 into two slices
    return RawDataset(
        name="small",
        components=["a", "b", "y", "c"],
        time_delta=1.0,
        values=values,
        times=times,
        slice_starts=np.array([0, 10, 16]),
        slice_ends=np.array([10, 16, 24]),
        slice_instance=np.array([0, 0, 1]),
        instance_names=["i0", "i1"],
    )


def points(ds, in_chunk, out_chunk, ins=("a", "b"), outs=("y",)):
    return prediction_points(ds, in_chunk, out_chunk, ds.component_index(list(ins), "k"),
                             ds.component_index(list(outs), "k")).tolist()


def test_points_by_hand_for_a_past_window():
    # in_chunk [-3, 0]: 4 input steps, at most 2 may precede the slice, so t >= start + 1.
    # Slice 0: 1..9 (c's NaN at row 5 is not an input or output). Slice 1: 11..15 but the
    # output y is NaN at 12. Slice 2: 17..23, but the input a is NaN at 19, which windows
    # t = 19..22 cover.
    expected = list(range(1, 10)) + [11, 13, 14, 15] + [17, 18, 23]
    assert points(small_dataset(), [-3, 0], [0, 0]) == expected


def test_points_by_hand_for_a_future_output():
    # out_chunk [1, 2] must fit in the slice: t <= end - 3. in_chunk [-2, 1] then sticks out
    # only before the slice, by 2 - (t - start) <= 2 steps: t >= start.
    # Slice 0: 0..7. Slice 1: 10..13, but outputs of 10 and 11 cover y's NaN at 12.
    # Slice 2: 16..20, but inputs of 18..20 (rows t-2..t+1) cover a's NaN at 19.
    expected = list(range(0, 8)) + [12, 13] + [16, 17]
    assert points(small_dataset(), [-2, 1], [1, 2]) == expected


def test_nan_only_matters_in_the_chosen_components():
    ds = small_dataset()
    # With c as the only input, its NaN at row 5 excludes the windows over row 5 instead.
    got = points(ds, [-3, 0], [0, 0], ins=("c",))
    assert 5 not in got and 8 not in got and 9 in got and 4 in got
    assert 19 in got  # a is not an input now


def one_slice(n: int) -> RawDataset:
    return RawDataset(
        name="one", components=["v"], time_delta=1.0, values=np.zeros((n, 1)),
        times=np.arange(n, dtype=np.int64), slice_starts=np.array([0]),
        slice_ends=np.array([n]), slice_instance=np.array([0]), instance_names=["i"],
    )


@pytest.mark.parametrize("in_chunk", [[-5, 0], [-6, 0], [-32, 0], [-1, 0], [0, 0]])
def test_exactly_half_the_input_window_may_be_padded(in_chunk):
    a, b = in_chunk
    n_in = b - a + 1
    got = points(one_slice(50), in_chunk, [0, 0], ins=("v",), outs=("v",))
    first = -a - n_in // 2  # the first t with exactly n_in // 2 steps before the slice
    assert got[0] == first
    assert got == list(range(first, 50))


def test_padding_counts_both_ends_of_the_slice():
    # in_chunk [-3, 3] is 7 steps, at most 3 outside. In a slice of 5 steps every t has
    # (3 - t) steps before and (t - 1) after: at most 3 outside for all t = 0..4.
    assert points(one_slice(5), [-3, 3], [0, 0], ins=("v",), outs=("v",)) == [0, 1, 2, 3, 4]
    # In a slice of 3 steps every t has 4 steps outside: no point at all.
    with pytest.raises(ConfigError) as info:
        points(one_slice(3), [-3, 3], [0, 0], ins=("v",), outs=("v",))
    assert info.value.key == "data.in_chunk"
    assert "longest slice has 3 steps" in str(info.value)
    assert "[-3, 3]" in str(info.value) and "[0, 0]" in str(info.value)


@pytest.mark.parametrize("chunk", [[0, -1], [1], [0, 1, 2], "ab", [0.5, 1], [True, 1], 3, None])
def test_malformed_chunks_are_refused(chunk):
    ds = one_slice(10)
    with pytest.raises(ConfigError) as info:
        points(ds, chunk, [0, 0], ins=("v",), outs=("v",))
    assert info.value.key == "data.in_chunk" and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        points(ds, [-1, 0], chunk, ins=("v",), outs=("v",))
    assert info.value.key == "data.out_chunk"


def test_unknown_component_names_the_key_and_lists_the_available():
    with pytest.raises(ConfigError) as info:
        small_dataset().component_index(["a", "q"], "data.in_components")
    assert info.value.key == "data.in_components"
    assert "unknown component 'q'; available: a, b, y, c" in str(info.value)
