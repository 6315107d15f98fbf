"""Prediction points: KnowIt's edge rule (output inside the slice, input trimmed at half its
reach), plus our NaN rule."""

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
    # in_chunk [-3, 0]: floor(-3 / 2) = -2, so t >= start + 2; the end is 0, so no upper trim.
    # Slice 0: 2..9 (c's NaN at row 5 is not an input or output). Slice 1: 12..15 but the
    # output y is NaN at 12. Slice 2: 18..23, but the input a is NaN at 19, which windows
    # t = 19..22 cover.
    expected = list(range(2, 10)) + [13, 14, 15] + [18, 23]
    assert points(small_dataset(), [-3, 0], [0, 0]) == expected


def test_points_by_hand_for_a_future_output():
    # out_chunk [1, 2] must fit in the slice: t <= end - 3. in_chunk [-2, 1]: floor(-1) = -1
    # gives t >= start + 1, floor(0.5) = 0 no upper trim.
    # Slice 0: 1..7. Slice 1: 11..13, but the outputs of 11 cover y's NaN at 12.
    # Slice 2: 17..21, but inputs of 18..21 (rows t-2..t+1) cover a's NaN at 19.
    expected = list(range(1, 8)) + [12, 13] + [17]
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


def knowit_mask(length: int, in_chunk: list[int], out_chunk: list[int]) -> np.ndarray:
    """KnowIt's ``_appropriate_mask`` on a NaN-free slice, written the way KnowIt writes it."""

    def trim(mask, chunk):
        negatives, positives = chunk[chunk < 0], chunk[chunk > 0]
        if len(negatives) > 0:
            mask[:abs(min(negatives))] = False
        if len(positives) > 0:
            mask[-max(positives):] = False
        return mask

    y_mask = trim(np.ones(length, dtype=bool), np.array(out_chunk))
    x_mask = trim(np.ones(length, dtype=bool),
                  np.floor(np.array(in_chunk) * 0.5).astype(int))
    return y_mask & x_mask


CHUNKS = [([-32, 0], [0, 0]), ([-32, -10], [0, 0]), ([-5, 5], [0, 0]), ([0, 8], [0, 0]),
          ([-3, 3], [0, 0]), ([-1, 0], [0, 0]), ([0, 0], [0, 0]), ([2, 7], [-3, -1]),
          ([-7, -3], [1, 4]), ([-9, 4], [-2, 3]), ([-11, -11], [0, 0]), ([3, 3], [5, 5])]


@pytest.mark.parametrize(("in_chunk", "out_chunk"), CHUNKS)
@pytest.mark.parametrize("length", [1, 4, 9, 50])
def test_edge_rule_is_knowits(in_chunk, out_chunk, length):
    want = np.flatnonzero(knowit_mask(length, in_chunk, out_chunk)).tolist()
    ds = one_slice(length)
    if not want:
        with pytest.raises(ConfigError):
            points(ds, in_chunk, out_chunk, ins=("v",), outs=("v",))
    else:
        assert points(ds, in_chunk, out_chunk, ins=("v",), outs=("v",)) == want


def test_a_window_may_lie_wholly_outside_its_slice():
    # KnowIt trims only at half of each end: in_chunk [-12, -11] at t = 6 reads rows -6..-5,
    # all padding, and is still a prediction point.
    assert points(one_slice(10), [-12, -11], [0, 0], ins=("v",), outs=("v",))[0] == 6


def test_padding_is_judged_at_each_end_separately():
    # in_chunk [-3, 3]: floor(-1.5) = -2 and floor(1.5) = 1, so t in 2..n-2.
    assert points(one_slice(5), [-3, 3], [0, 0], ins=("v",), outs=("v",)) == [2, 3]
    # In a slice of 3 steps no t is both >= 2 and <= 1: no point at all.
    with pytest.raises(ConfigError) as info:
        points(one_slice(3), [-3, 3], [0, 0], ins=("v",), outs=("v",))
    assert info.value.key == "data.in_chunk"
    assert "longest slice has 3 steps" in str(info.value)
    assert "[-3, 3]" in str(info.value) and "[0, 0]" in str(info.value)


def test_min_slice_drops_short_slices():
    ds = small_dataset()  # slices of 10, 6 and 8 rows
    all_points = points(ds, [0, 0], [0, 0])
    got = prediction_points(ds, [0, 0], [0, 0], ds.component_index(["a", "b"], "k"),
                            ds.component_index(["y"], "k"), min_slice=6).tolist()
    # KnowIt keeps a slice only when min_slice < its length: the 6-row slice goes.
    assert got == [p for p in all_points if not 10 <= p < 16]
    with pytest.raises(ConfigError) as info:
        prediction_points(ds, [0, 0], [0, 0], np.array([0]), np.array([2]), min_slice=-1)
    assert info.value.key == "data.min_slice"


@pytest.mark.parametrize(("in_chunk", "expected"), [
    ([-32, 0], 120_112), ([-32, -10], 120_112), ([-5, 5], 120_442), ([0, 8], None)])
def test_knowits_counts_on_synth_2(in_chunk, expected):
    from knowit_app.data.bundled import load_builtin

    ds = load_builtin("synth_2")
    got = prediction_points(ds, in_chunk, [0, 0], np.arange(4), np.array([4]))
    lengths = ds.slice_ends - ds.slice_starts
    derived = sum(int(knowit_mask(int(n), in_chunk, [0, 0]).sum()) for n in lengths)
    assert len(got) == derived
    if expected is not None:  # KnowIt 1.0.1's own figures for these chunks
        assert len(got) == expected


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
