"""Loaders that gather a split's windows once give exactly the batches built per step."""

from __future__ import annotations

import pytest
import torch
from helpers import toy_data_config as cfg
from helpers import toy_frame

from knowit_app.data.importer import import_dataset
from knowit_app.data.prepared import make_dataloader, prepare
from knowit_app.data.windows import (
    GATHER_BUDGET_BYTES,
    fits_budget,
    gathered_bytes,
    validation_batch_size,
)


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp")
    import_dataset(toy_frame(), "toy", exp, time_column="time", instance_column="inst")
    return exp


def epochs_of(loader, n=2):
    return [[(x.clone(), y.clone()) for x, y in loader] for _ in range(n)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        assert len(epoch_a) == len(epoch_b)
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            assert xa.dtype == xb.dtype and ya.dtype == yb.dtype
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


# Chunks reaching past both ends of the toy's slices (7 steps back, 5 ahead) pad at the edges.
CHUNKS = [([-6, 0], [0, 2]), ([-2, 3], [1, 1]), ([0, 0], [0, 0]), ([-12, -4], [-3, 4])]


@pytest.mark.parametrize("padding", ["constant", "edge"])
@pytest.mark.parametrize("in_chunk,out_chunk", CHUNKS)
@pytest.mark.parametrize("split,shuffle", [("train", True), ("valid", False),
                                           ("eval", False), ("train", False)])
def test_gathered_batches_equal_per_step_batches(exp_dir, padding, in_chunk, out_chunk,
                                                 split, shuffle):
    p = prepare(cfg(in_chunk=in_chunk, out_chunk=out_chunk, padding_method=padding),
                "regression", exp_dir)
    gathered = make_dataloader(p, split, 5, shuffle, seed=3, pregather=True)
    per_step = make_dataloader(p, split, 5, shuffle, seed=3, pregather=False)
    assert gathered.pregather and not per_step.pregather
    got = epochs_of(gathered)
    assert_same_batches(got, epochs_of(per_step))
    if padding == "constant" and in_chunk[0] < -6:  # windows reaching before a slice start
        assert any((x == 0).all(dim=-1).any() for epoch in got for x, _ in epoch)


@pytest.mark.parametrize("padding", ["constant", "edge"])
def test_gathered_classification_batches_equal_per_step_batches(exp_dir, padding):
    p = prepare(cfg(out_components=["label"], out_chunk=[2, 2], in_chunk=[-8, 1],
                    padding_method=padding, scaling_tag="in_only"),
                  "classification", exp_dir)
    for split, shuffle in [("train", True), ("valid", False)]:
        gathered = make_dataloader(p, split, 4, shuffle, seed=0, pregather=True)
        per_step = make_dataloader(p, split, 4, shuffle, seed=0, pregather=False)
        assert_same_batches(epochs_of(gathered, 3), epochs_of(per_step, 3))


def test_gathered_loader_keeps_knowit_batch_points_and_resume_order(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    loader = make_dataloader(p, "train", 7, shuffle=True, seed=4, pregather=True)
    reference = make_dataloader(p, "train", 7, shuffle=True, seed=4, pregather=False)
    for epoch in (2, 0, 5):  # Lightning's set_epoch, e.g. on resume
        loader.sampler.set_epoch(epoch)
        reference.sampler.set_epoch(epoch)
        for (x, y), batch_rows in zip(loader, reference.sampler, strict=True):
            rx, ry = p.batch(batch_rows)
            assert torch.equal(x, rx) and torch.equal(y, ry)


def test_a_model_changing_its_input_in_place_does_not_change_later_epochs(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    for split, shuffle in [("train", True), ("valid", False)]:
        loader = make_dataloader(p, split, 5, shuffle, seed=1, pregather=True)
        loader.sampler.set_epoch(0)
        first = [(x.clone(), y.clone()) for x, y in loader]
        loader.sampler.set_epoch(0)
        for x, y in loader:
            x.mul_(0.0)
            y.add_(1.0)
        loader.sampler.set_epoch(0)
        assert_same_batches([first], [[(x, y) for x, y in loader]])


def test_memory_rule_decides_between_gathering_and_per_step(exp_dir):
    p = prepare(cfg(), "regression", exp_dir)
    n = len(p.points["train"])
    # 7 steps x 3 inputs + 3 steps x 1 output, float32
    assert gathered_bytes(p, n) == n * (7 * 3 + 3) * 4
    assert fits_budget(GATHER_BUDGET_BYTES, available=2**50)
    assert not fits_budget(GATHER_BUDGET_BYTES + 1, available=2**50)
    assert not fits_budget(1000, available=3999) and fits_budget(1000, available=4000)
    # The default follows the rule: the toy's splits are tiny, so they are gathered.
    assert make_dataloader(p, "train", 5, True, 0).pregather


def test_validation_batch_is_larger_only_where_the_scores_cannot_change():
    assert validation_batch_size(64, {}, builtin_arch=True) == 256
    assert validation_batch_size(64, {"reduction": "mean", "delta": 0.5}, True) == 256
    assert validation_batch_size(64, {}, builtin_arch=False) == 64  # custom architecture
    assert validation_batch_size(64, {"reduction": "sum"}, True) == 64
    assert validation_batch_size(64, {"weight": [1.0, 2.0]}, True) == 64
    assert validation_batch_size(64, {"ignore_index": 0}, True) == 64


def test_sample_weighted_valid_loss_is_the_same_at_the_larger_batch(exp_dir):
    from knowit_app.archs import build_model

    p = prepare(cfg(), "regression", exp_dir)
    torch.manual_seed(0)
    model = build_model({"name": "MLP"}, p.in_shape, p.out_shape, "regression", None).eval()

    def weighted_mean(batch_size):
        total, n = 0.0, 0
        with torch.no_grad():
            for x, y in make_dataloader(p, "valid", batch_size, False, 0):
                total += torch.nn.functional.mse_loss(model(x), y).item() * len(x)
                n += len(x)
        return total / n

    small = weighted_mean(3)
    assert weighted_mean(validation_batch_size(3, {}, True)) == pytest.approx(small, rel=1e-6)


def test_a_later_run_on_the_same_data_reuses_the_gathered_windows(exp_dir):
    """A sweep worker prepares the data again for each run; the next run's loader takes the
    windows gathered for the run before, and data that differs in any way gathers its own."""
    first = make_dataloader(prepare(cfg(), "regression", exp_dir), "train", 5, True, seed=1,
                            pregather=True)
    again = make_dataloader(prepare(cfg(), "regression", exp_dir), "train", 9, True, seed=2,
                            pregather=True)
    assert again.windows()[0] is first.windows()[0]
    edge = prepare(cfg(padding_method="edge"), "regression", exp_dir)
    edge_loader = make_dataloader(edge, "train", 5, True, seed=1, pregather=True)
    assert edge_loader.windows()[0] is not first.windows()[0]
    # Same shapes, other values at the slice edges: what the windows would be built from.
    assert edge_loader.windows()[0].shape == first.windows()[0].shape
    assert not torch.equal(edge_loader.windows()[0], first.windows()[0])
    assert_same_batches(epochs_of(edge_loader),
                        epochs_of(make_dataloader(edge, "train", 5, True, seed=1,
                                                  pregather=False)))
