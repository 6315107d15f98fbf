"""Scalers: statistics per component from the training rows, matching numpy."""

from __future__ import annotations

import numpy as np
import pytest

from knowit_app.data.scaling import Scaler, check_scaling, fit_scaler, make_scalers
from knowit_app.errors import ConfigError


def values_with_nan() -> np.ndarray:
    rng = np.random.default_rng(3)
    v = rng.normal(loc=[1.0, -4.0, 10.0], scale=[2.0, 0.5, 3.0], size=(50, 3))
    v[[4, 17], 0] = np.nan
    v[9, 2] = np.nan
    return v


def test_z_norm_matches_numpy_population_std_ignoring_nan():
    v = values_with_nan()
    sc = fit_scaler(v, "z-norm")
    for k in range(3):
        col = v[:, k][~np.isnan(v[:, k])]
        assert sc.shift[k] == pytest.approx(col.mean(), rel=1e-12)
        assert sc.scale[k] == pytest.approx(col.std(ddof=0), rel=1e-12)
    z = sc.transform(v)
    assert np.allclose(np.nanmean(z, axis=0), 0, atol=1e-12)
    assert np.allclose(np.nanstd(z, axis=0), 1)


def test_zero_one_maps_the_training_range_to_0_1():
    v = values_with_nan()
    sc = fit_scaler(v, "zero-one")
    z = sc.transform(v)
    assert np.allclose(np.nanmin(z, axis=0), 0) and np.allclose(np.nanmax(z, axis=0), 1)
    assert np.allclose(sc.shift, np.nanmin(v, axis=0))


@pytest.mark.parametrize("method", ["z-norm", "zero-one"])
def test_constant_component_gets_scale_one(method):
    v = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    sc = fit_scaler(v, method)
    assert sc.scale[0] == 1.0 and sc.shift[0] == 3.0
    assert np.all(sc.transform(v)[:, 0] == 0)


def test_inverse_and_dict_round_trip():
    v = values_with_nan()
    sc = fit_scaler(v, "z-norm")
    assert np.allclose(sc.inverse_transform(sc.transform(v)), v, equal_nan=True)
    d = sc.to_dict()
    assert isinstance(d["shift"], list) and all(isinstance(x, float) for x in d["scale"])
    back = Scaler.from_dict(d)
    assert back.method == "z-norm" and np.array_equal(back.shift, sc.shift)
    assert np.array_equal(back.scale, sc.scale)


def test_make_scalers_fits_on_train_rows_only():
    v = values_with_nan()
    train = np.array([0, 2, 4, 6, 8, 30])
    in_sc, out_sc = make_scalers(v, train, np.array([0, 1]), np.array([2]), "full",
                                 "z-norm", "regression")
    assert np.allclose(in_sc.shift, np.nanmean(v[train][:, [0, 1]], axis=0))
    assert np.allclose(out_sc.scale, np.nanstd(v[train][:, [2]], axis=0))
    in_sc, out_sc = make_scalers(v, train, np.array([0]), np.array([2]), "in_only",
                                 "zero-one", "regression")
    assert out_sc is None and in_sc.shift[0] == np.nanmin(v[train, 0])
    assert make_scalers(v, train, np.array([0]), np.array([2]), None, "z-norm",
                        "regression") == (None, None)


@pytest.mark.parametrize("tag, method, task, key", [
    ("most", "z-norm", "regression", "data.scaling_tag"),
    ("None", "z-norm", "regression", "data.scaling_tag"),
    ("full", "minmax", "regression", "data.scaling_method"),
    (None, "minmax", "regression", "data.scaling_method"),
    ("full", "z-norm", "classification", "data.scaling_tag"),
])
def test_bad_scaling_options(tag, method, task, key):
    with pytest.raises(ConfigError) as info:
        check_scaling(tag, method, task)
    assert info.value.key == key and "\n" not in str(info.value)


def test_full_scaling_for_classification_says_what_to_use():
    with pytest.raises(ConfigError, match="class labels; use in_only or null"):
        check_scaling("full", "z-norm", "classification")
