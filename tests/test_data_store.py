"""Built-in datasets, the on-disk format, the cache and dataset lookup by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from knowit_app.data import store, synthetic
from knowit_app.data.dataset import RawDataset
from knowit_app.data.store import (
    builtin_names,
    cache_dir,
    custom_datasets_dir,
    list_datasets,
    load_dataset,
    read_dataset,
    save_dataset,
)
from knowit_app.data.synthetic import make_synth_2, make_synth_c
from knowit_app.errors import ConfigError


def assert_same(a: RawDataset, b: RawDataset) -> None:
    assert (a.name, a.components, a.time_delta, a.instance_names) == \
        (b.name, b.components, b.time_delta, b.instance_names)
    for k in ("values", "times", "slice_starts", "slice_ends", "slice_instance"):
        assert np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True), k
        assert getattr(a, k).dtype == getattr(b, k).dtype


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KNOWIT_APP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_synth_2_shape():
    ds = make_synth_2()
    assert ds.components == ["x1", "x2", "x3", "x4", "x5"]
    assert ds.values.shape == (120_000, 5) and ds.values.dtype == np.float64
    assert ds.n_instances == 30 and ds.n_slices == 30 and ds.time_delta == 0.2
    assert np.all(ds.slice_ends - ds.slice_starts == 4000)
    assert ds.slice_instance.tolist() == list(range(30))
    steps = np.diff(ds.times[:4000])
    assert np.all(steps == 200_000_000)
    assert not np.isnan(ds.values).any()


def test_synth_c_shape_and_classes():
    ds = make_synth_c()
    assert ds.components == ["x1", "x2", "x3", "x4", "y1", "y2"]
    assert ds.values.shape == (45_000, 6) and ds.n_instances == 15 and ds.time_delta == 0.04
    assert np.all(np.diff(ds.times[:3000]) == 40_000_000)
    y1, y2 = ds.values[:, 4], ds.values[:, 5]
    assert set(np.unique(y1)) == {0.0, 1.0} and set(np.unique(y2)) == {0.0, 1.0, 2.0, 3.0}
    for y, k in ((y1, 2), (y2, 4)):  # no class is rare
        assert np.bincount(y.astype(int)).min() > 0.5 * len(y) / k


@pytest.mark.parametrize("make", [make_synth_2, make_synth_c])
def test_generators_are_deterministic(make):
    assert_same(make(), make())


def test_save_and_read_round_trip(tmp_path):
    ds = make_synth_c()
    ds.values[5, 1] = np.nan
    out = save_dataset(ds, tmp_path / "sets" / "mine")
    assert out == tmp_path / "sets" / "mine"
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "meta.json"]
    assert os.listdir(tmp_path / "sets") == ["mine"], "no temporary directory is left behind"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["components"] == ds.components and meta["rows"] == 45_000
    assert meta["format_version"] == store.FORMAT_VERSION
    assert_same(read_dataset(out), ds)


def test_save_replaces_or_refuses_an_existing_directory(tmp_path):
    a, b = make_synth_c(), make_synth_c()
    b.values[:] = 1.0
    target = save_dataset(a, tmp_path / "d")
    with pytest.raises(FileExistsError):
        save_dataset(b, target, replace=False)
    assert_same(read_dataset(target), a)
    save_dataset(b, target)
    assert_same(read_dataset(target), b)
    assert os.listdir(tmp_path) == ["d"]


def test_cache_dir_follows_the_environment(fresh_cache):
    assert cache_dir() == fresh_cache


def test_builtin_is_generated_once_then_loaded(fresh_cache, monkeypatch):
    first = load_dataset("synth_c", fresh_cache / "exp")
    arrays = fresh_cache / "datasets" / "synth_c" / "arrays.npz"
    stamp = arrays.stat().st_mtime_ns

    def fail():
        raise AssertionError("generated again")

    monkeypatch.setitem(synthetic.GENERATORS, "synth_c", fail)
    second = load_dataset("synth_c", fresh_cache / "exp")
    assert arrays.stat().st_mtime_ns == stamp
    assert_same(first, second)


def test_stale_builtin_cache_is_regenerated(fresh_cache):
    load_dataset("synth_c", "exp")
    meta_path = fresh_cache / "datasets" / "synth_c" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["origin"] = "builtin:synth_c:v0"
    meta_path.write_text(json.dumps(meta))
    assert_same(load_dataset("synth_c", "exp"), make_synth_c())
    assert json.loads(meta_path.read_text())["origin"] != "builtin:synth_c:v0"


def test_two_processes_generating_at_once_agree(fresh_cache):
    code = ("from knowit_app.data.store import load_dataset; "
            "print(load_dataset('synth_2', 'exp').values.sum())")
    env = {**os.environ, "KNOWIT_APP_CACHE": str(fresh_cache)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    assert os.listdir(fresh_cache / "datasets") == ["synth_2"]
    assert_same(read_dataset(fresh_cache / "datasets" / "synth_2"), make_synth_2())


def test_unknown_dataset_lists_builtins_and_imports(tmp_path):
    ds = make_synth_c()
    ds.name = "mine"
    save_dataset(ds, custom_datasets_dir(tmp_path) / "mine")
    with pytest.raises(ConfigError) as info:
        load_dataset("nope", tmp_path)
    assert info.value.key == "data.name"
    assert str(info.value) == "data.name: unknown dataset 'nope'; available: synth_2, synth_c, mine"
    with pytest.raises(ConfigError):
        load_dataset("../mine", tmp_path / "sub")


def test_imported_dataset_wins_over_a_builtin(tmp_path):
    ds = make_synth_c()
    ds.name = "synth_2"
    save_dataset(ds, custom_datasets_dir(tmp_path) / "synth_2")
    assert load_dataset("synth_2", tmp_path).components == ds.components
    assert load_dataset("synth_2", tmp_path / "other").components[-1] == "x5"


def test_list_datasets(tmp_path):
    ds = make_synth_c()
    ds.name = "mine"
    save_dataset(ds, custom_datasets_dir(tmp_path) / "mine")
    found = {d["name"]: d for d in list_datasets(tmp_path)}
    assert sorted(found) == sorted(builtin_names() + ["mine"])
    assert found["synth_2"] == {"name": "synth_2", "source": "builtin",
                                "components": ["x1", "x2", "x3", "x4", "x5"], "instances": 30,
                                "slices": 30, "rows": 120_000, "time_delta": 0.2}
    assert found["mine"]["source"] == "imported" and found["mine"]["rows"] == 45_000


def test_losing_the_generation_race_keeps_the_winners_copy(fresh_cache, monkeypatch):
    real = synthetic.GENERATORS["synth_c"]

    def racing():
        # Another process publishes its copy while this one is still generating.
        monkeypatch.setitem(synthetic.GENERATORS, "synth_c", real)
        load_dataset("synth_c", "exp")
        return real()

    monkeypatch.setitem(synthetic.GENERATORS, "synth_c", racing)
    assert_same(load_dataset("synth_c", "exp"), make_synth_c())
    assert os.listdir(fresh_cache / "datasets") == ["synth_c"]
    assert_same(read_dataset(fresh_cache / "datasets" / "synth_c"), make_synth_c())
