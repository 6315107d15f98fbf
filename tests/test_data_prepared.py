"""prepare(): from a data config to scaled tensors, split points, batches and loaders."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import toy_data_config as cfg
from helpers import toy_frame

from knowit_app.data.importer import import_dataset
from knowit_app.data.prepared import make_dataloader, prepare
from knowit_app.data.store import load_dataset
from knowit_app.errors import ConfigError


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp")
    import_dataset(toy_frame(), "toy", exp, time_column="time", instance_column="inst")
    return exp


def reference_windows(ds, x_scaled, y_scaled, rows, in_chunk, out_chunk, padding, task):
    """One point at a time, step by step: what batch() must produce."""
    xs, ys = [], []
    for t in rows:
        k = int(np.flatnonzero((ds.slice_starts <= t) & (t < ds.slice_ends))[0])
        s, e = ds.slice_starts[k], ds.slice_ends[k]
        win = []
        for r in range(t + in_chunk[0], t + in_chunk[1] + 1):
            if s <= r < e:
                win.append(x_scaled[r])
            elif padding == "constant":
                win.append(np.zeros(x_scaled.shape[1]))
            else:
                win.append(x_scaled[s] if r < s else x_scaled[e - 1])
        xs.append(win)
        if task == "classification":
            ys.append(y_scaled[t])
        else:
            ys.append([y_scaled[r] for r in range(t + out_chunk[0], t + out_chunk[1] + 1)])
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize("padding", ["constant", "edge"])
def test_batch_equals_a_per_point_reference(exp_dir, padding):
    p = prepare(cfg(padding_method=padding), "regression", exp_dir)
    ds = load_dataset("toy", exp_dir)
    raw = ds.values
    x_scaled = (raw[:, :3] - p.in_scaler.shift) / p.in_scaler.scale
    y_scaled = (raw[:, [3]] - p.out_scaler.shift) / p.out_scaler.scale
    rows = np.concatenate(list(p.points.values()))
    starts = set(ds.slice_starts.tolist())
    assert any(t - 3 in starts for t in rows), "some windows must be padded by 3 steps"
    xb, yb = p.batch(rows)
    xr, yr = reference_windows(ds, x_scaled, y_scaled, rows, [-6, 0], [0, 2], padding,
                               "regression")
    assert xb.dtype == torch.float32 and xb.shape == (len(rows), 7, 3)
    assert yb.shape == (len(rows), 3, 1)
    assert np.allclose(xb.numpy(), xr, atol=1e-6) and np.allclose(yb.numpy(), yr, atol=1e-6)
    assert not torch.isnan(xb).any() and not torch.isnan(yb).any()


def test_points_and_shapes(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    assert p.in_shape == (7, 3) and p.out_shape == (3, 1)
    assert p.in_offsets.tolist() == list(range(-6, 1)) and p.out_offsets.tolist() == [0, 1, 2]
    # Slices of 40, 25, 15, 40 steps: points from start + 3 to end - 3 (output 3 steps long),
    # minus the windows over NaNs: a in row 10 (inputs of points 10..16), y in row 80 + 20
    # (outputs of points 98..100).
    ds = load_dataset("toy", exp_dir)
    expected = [t for s, e in zip(ds.slice_starts, ds.slice_ends, strict=True)
                for t in range(s + 3, e - 2)
                if not 10 <= t <= 16 and not 98 <= t <= 100]
    got = sorted(np.concatenate(list(p.points.values())).tolist())
    assert got == expected
    # Slices start at 0 s (i0), 1000 s (i1), 4625 s (i1 after its gap), 2000 s (i2): train
    # takes i0 and i1's first slice (rows 0..64), valid i2 (rows 80..119), eval i1's second.
    assert p.split_sizes() == {"train": len([t for t in expected if t < 65]),
                               "valid": len([t for t in expected if t >= 80]),
                               "eval": len([t for t in expected if 65 <= t < 80])}


@pytest.mark.parametrize("tag, method", [("full", "z-norm"), ("in_only", "zero-one"),
                                         (None, "z-norm")])
def test_scaling_is_fit_on_train_rows(exp_dir, tag, method):
    p = prepare(cfg(scaling_tag=tag, scaling_method=method), "regression", exp_dir)
    raw = load_dataset("toy", exp_dir).values
    train = raw[p.points["train"]]
    if method == "z-norm":
        shift, scale = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    else:
        shift = np.nanmin(train, axis=0)
        scale = np.nanmax(train, axis=0) - shift
    scale[scale == 0] = 1.0  # c is constant
    expect_x = raw[:, :3] if tag is None else (raw[:, :3] - shift[:3]) / scale[:3]
    expect_y = raw[:, [3]] if tag != "full" else (raw[:, [3]] - shift[3]) / scale[3]
    assert np.allclose(p.x.numpy(), expect_x, atol=1e-5, equal_nan=True)
    assert np.allclose(p.y.numpy(), expect_y, atol=1e-5, equal_nan=True)
    assert (p.in_scaler is None) == (tag is None)
    assert (p.out_scaler is None) == (tag != "full")
    if tag is not None:
        assert np.allclose(p.in_scaler.shift, shift[:3]) and p.in_scaler.scale[2] == 1.0


def test_classification_targets_are_class_indices(exp_dir):
    p = prepare(cfg(out_components=["label"], out_chunk=[0, 0], scaling_tag="in_only"),
                "classification", exp_dir)
    raw = load_dataset("toy", exp_dir).values[:, 4]
    assert p.class_set == [0, 1, 2] and all(type(v) is int for v in p.class_set)
    assert p.y.dtype == torch.int64 and p.y.shape == (len(raw),)
    assert p.y[np.isnan(raw)].tolist() == [-1]
    known = ~np.isnan(raw)
    assert np.array_equal(p.y.numpy()[known], raw[known].astype(int))
    rows = p.points["train"]
    xb, yb = p.batch(rows)
    assert xb.shape == (len(rows), 7, 3) and yb.shape == (len(rows),)
    assert (yb >= 0).all()
    dyn = p.dynamics()
    assert dyn["class_count"] == 3 and dyn["out_scaler"] is None
    ahead = prepare(cfg(out_components=["label"], out_chunk=[2, 2], scaling_tag=None),
                    "classification", exp_dir)
    rows = ahead.points["valid"]
    assert np.array_equal(ahead.batch(rows)[1].numpy(), raw[rows + 2].astype(int))


def test_dynamics_are_plain_yaml(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    dyn = p.dynamics()
    assert yaml.safe_load(yaml.safe_dump(dyn)) == dyn
    assert dyn["in_shape"] == [7, 3] and dyn["out_shape"] == [3, 1]
    assert dyn["split_sizes"] == p.split_sizes() and dyn["class_set"] is None
    assert dyn["in_components"] == ["a", "b", "c"] and dyn["out_components"] == ["y"]


def test_loader_covers_each_point_once_and_reshuffles(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    train = p.points["train"]
    assert len(train) % 7, "the toy train split must leave a partial batch for this test"
    loader = make_dataloader(p, "train", 7, shuffle=True, seed=4)
    # KnowIt drops the last partial training batch.
    assert len(loader) == len(train) // 7
    ref, _ = p.batch(train)
    ref_rows = [tuple(r) for r in ref.reshape(len(ref), -1).tolist()]
    epochs, left_out = [], []
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader)
        assert [len(x) for x, _ in batches] == [7] * len(batches)
        xs = torch.cat([x for x, _ in batches])
        epochs.append(xs)
        # windows of the unshuffled batch, each at most once; the rest is the dropped remainder
        got = [tuple(r) for r in xs.reshape(len(xs), -1).tolist()]
        assert len(set(got)) == len(got) and set(got) <= set(ref_rows)
        left_out.append(set(ref_rows) - set(got))
        assert len(left_out[-1]) == len(train) % 7
    assert left_out[0] != left_out[1], "a different remainder is dropped each epoch"
    assert not torch.equal(epochs[0], epochs[1]), "each epoch has its own order"
    again = make_dataloader(p, "train", 7, shuffle=True, seed=4)
    assert torch.equal(torch.cat([x for x, _ in again]), epochs[0])
    assert torch.equal(torch.cat([x for x, _ in again]), epochs[1])
    other = make_dataloader(p, "train", 7, shuffle=True, seed=5)
    assert not torch.equal(torch.cat([x for x, _ in other]), epochs[0])


@pytest.mark.parametrize("split", ["valid", "eval", "train"])
def test_unshuffled_loader_keeps_row_order_and_every_point(exp_dir, split):
    p = prepare(cfg(), "regression", exp_dir)
    loader = make_dataloader(p, split, 5, shuffle=False, seed=0)
    assert len(loader) == math.ceil(len(p.points[split]) / 5)
    xs = torch.cat([x for x, _ in loader])
    ys = torch.cat([y for _, y in loader])
    ref_x, ref_y = p.batch(p.points[split])
    assert torch.equal(xs, ref_x) and torch.equal(ys, ref_y)


def test_batch_size_above_the_smallest_split_is_lowered(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    smallest = min(n for n in p.split_sizes().values() if n)
    train = make_dataloader(p, "train", 10_000, shuffle=True, seed=0)
    assert [len(x) for x, _ in train] == [smallest] * (len(p.points["train"]) // smallest)
    valid = make_dataloader(p, "valid", 10_000, shuffle=False, seed=0)
    assert len(valid) == math.ceil(len(p.points["valid"]) / smallest)


def test_components_keep_the_datasets_order(exp_dir):
    p = prepare(cfg(in_components=["c", "a", "b"]), "regression", exp_dir)
    q = prepare(cfg(), "regression", exp_dir)
    assert p.in_components == ["a", "b", "c"]
    assert torch.allclose(p.x, q.x, equal_nan=True)
    assert p.dynamics()["in_components"] == ["a", "b", "c"]


def test_min_slice_leaves_short_slices_out(exp_dir):
    ds = load_dataset("toy", exp_dir)
    lengths = (ds.slice_ends - ds.slice_starts).tolist()
    assert sorted(lengths) == [15, 25, 40, 40]
    p = prepare(cfg(min_slice=25), "regression", exp_dir)
    kept = [k for k, n in enumerate(lengths) if n > 25]
    got = np.concatenate(list(p.points.values()))
    slice_of = np.searchsorted(ds.slice_starts, got, side="right") - 1
    assert sorted(set(slice_of.tolist())) == kept


def test_default_data_config_is_knowits(exp_dir):
    from dataclasses import asdict

    from knowit_app.config.schema import DataConfig

    d = asdict(DataConfig())
    assert (d["split_method"], d["split_portions"], d["scaling_tag"], d["limit"]) == \
        ("chronological", [0.8, 0.1, 0.1], None, None)
    p = prepare(d, "regression", exp_dir)
    # KnowIt's synth_2: slices of 3,001-4,980 steps; in_chunk [-32, 0] trims 16 per slice.
    ds = load_dataset("synth_2", exp_dir)
    n = int((ds.slice_ends - ds.slice_starts - 16).sum())
    assert n == 120_112
    n_train, n_eval = math.floor(0.8 * n), math.floor(0.1 * n)
    assert p.split_sizes() == {"train": n_train, "valid": n - n_train - n_eval, "eval": n_eval}
    assert p.in_scaler is None and p.out_scaler is None
    assert p.in_shape == (33, 4) and p.out_shape == (1, 1) and p.x.shape == (120_592, 4)


def test_omegaconf_config_is_accepted(exp_dir):
    from omegaconf import OmegaConf

    p = prepare(OmegaConf.create(cfg()), "regression", exp_dir)
    assert p.in_shape == (7, 3)


@pytest.mark.parametrize("task, overrides, key, words", [
    ("regression", {"batch_size": 0}, "data.batch_size", "positive"),
    ("regression", {"scaling_method": "minmax"}, "data.scaling_method", "z-norm"),
    ("regression", {"scaling_tag": "None"}, "data.scaling_tag", "in_only"),
    ("classification", {"out_components": ["label"], "out_chunk": [0, 0]}, "data.scaling_tag",
     "class labels"),
    ("classification", {"out_components": ["c"], "out_chunk": [0, 0], "scaling_tag": None},
     "data.out_components", "single class"),
    ("classification", {"out_components": ["label", "y"], "out_chunk": [0, 0],
                        "scaling_tag": None}, "data.out_components", "exactly one"),
    ("classification", {"out_components": ["label"], "scaling_tag": None}, "data.out_chunk",
     "one step"),
    ("forecasting", {}, "trainer.task", "regression, classification"),
    ("regression", {"padding_method": "reflect"}, "data.padding_method", "constant, edge"),
    ("regression", {"in_components": ["a", "zz"]}, "data.in_components", "unknown component"),
    ("regression", {"in_components": []}, "data.in_components", "non-empty"),
    ("regression", {"in_components": ["a", "a"]}, "data.in_components", "twice"),
    ("regression", {"out_components": ["q"]}, "data.out_components", "unknown component"),
    ("regression", {"name": "nope"}, "data.name", "synth_2, synth_c, toy"),
    ("regression", {"in_chunk": [-100, 0]}, "data.in_chunk", "longest slice has 40 steps"),
    ("regression", {"in_chunk": [0, -1]}, "data.in_chunk", "start <= end"),
    ("regression", {"split_portions": [0.5, 0.5, 0.5]}, "data.split_portions", "sum"),
    ("regression", {"split_method": "instance-random", "split_portions": [0.2, 0.4, 0.4]},
     "data.split_portions", "3 instances"),
    ("regression", {"split_method": "custom"}, "data.split_method", "'split' column"),
    ("regression", {"split_method": "custom", "limit": 3}, "data.limit", "custom"),
    ("regression", {"min_slice": -2}, "data.min_slice", "non-negative"),
    ("regression", {"split_method": "sorted"}, "data.split_method", "slice-random"),
    ("regression", {"limit": 0}, "data.limit", "positive"),
    ("regression", {"batch_sise": 8}, "data.batch_sise", "unknown data option"),
])
def test_bad_configs_raise_config_errors(exp_dir, task, overrides, key, words):
    with pytest.raises(ConfigError) as info:
        prepare(cfg(**overrides), task, exp_dir)
    assert info.value.key == key, str(info.value)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_loader_refuses_a_bad_batch_size(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    with pytest.raises(ConfigError) as info:
        make_dataloader(p, "train", 0, shuffle=False, seed=0)
    assert info.value.key == "data.batch_size"


def test_custom_split_comes_from_the_split_column(tmp_path):
    times = pd.date_range("2024-01-01", periods=300, freq="1s")
    frame = pd.DataFrame({"a": np.sin(np.arange(300) / 7), "b": np.cos(np.arange(300) / 5)},
                         index=times)
    frame["split"] = np.repeat([0, 1, 2], 100)
    frame.loc[frame.index[150], "split"] = np.nan  # in no set
    import_dataset(frame, "cs", tmp_path)
    p = prepare(cfg(name="cs", in_components=["a"], out_components=["b"], in_chunk=[-4, 0],
                    out_chunk=[0, 0], split_method="custom"), "regression", tmp_path)
    # in_chunk [-4, 0] trims the first floor(4 / 2) = 2 rows of the slice, as KnowIt does.
    assert p.points["train"].tolist() == list(range(2, 100))
    assert p.points["valid"].tolist() == [r for r in range(100, 200) if r != 150]
    assert p.points["eval"].tolist() == list(range(200, 300))


@pytest.mark.parametrize("method, limit", [("instance-random", 6), ("random", 3000),
                                           ("slice-chronological", 5)])
def test_training_batches_hold_the_points_knowits_sampler_gives(tmp_path, method, limit):
    from knowit_oracle import knowit_batches, knowit_selection

    from knowit_app.data.points import prediction_points

    config = cfg(name="synth_2", in_components=["x1", "x2", "x3", "x4"], out_components=["x5"],
                 in_chunk=[-32, 0], out_chunk=[0, 0], split_method=method, limit=limit,
                 split_portions=[0.5, 0.25, 0.25], seed=123, batch_size=64)
    p = prepare(config, "regression", tmp_path)
    ds = load_dataset("synth_2", tmp_path)
    points = prediction_points(ds, [-32, 0], [0, 0], np.arange(4), np.array([4]))
    selection = knowit_selection(ds, points, method, [0.5, 0.25, 0.25], limit, 123)["train"]
    sampler = make_dataloader(p, "train", 64, shuffle=True, seed=123).sampler
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        assert [b.tolist() for b in sampler] == knowit_batches(selection, 64, 123, epoch)
