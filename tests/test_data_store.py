"""Built-in datasets (KnowIt's own, shipped in the package), the on-disk format, and lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from knowit_app.data import store
from knowit_app.data.bundled import builtin_meta, load_builtin
from knowit_app.data.dataset import RawDataset
from knowit_app.data.store import (
    builtin_names,
    custom_datasets_dir,
    list_datasets,
    load_dataset,
    read_dataset,
    save_dataset,
)
from knowit_app.errors import ConfigError


def make_synth_2() -> RawDataset:
    return load_builtin("synth_2")


def make_synth_c() -> RawDataset:
    return load_builtin("synth_c")


def assert_same(a: RawDataset, b: RawDataset) -> None:
    assert (a.name, a.components, a.time_delta, a.instance_names) == \
        (b.name, b.components, b.time_delta, b.instance_names)
    for k in ("values", "times", "slice_starts", "slice_ends", "slice_instance"):
        assert np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True), k
        assert getattr(a, k).dtype == getattr(b, k).dtype


def test_synth_2_is_knowits_dataset():
    ds = make_synth_2()
    meta = builtin_meta("synth_2")
    assert ds.components == ["x1", "x2", "x3", "x4", "x5"] == meta["components"]
    assert ds.values.shape == (120_592, 5) and ds.values.dtype == np.float64
    assert ds.n_instances == 30 and ds.n_slices == 30 and ds.time_delta == 0.2
    lengths = (ds.slice_ends - ds.slice_starts).tolist()
    assert lengths == [meta["rows_per_instance"][str(k)] for k in range(30)]
    assert min(lengths) == 3001 and max(lengths) == 4980
    assert ds.slice_instance.tolist() == list(range(30))
    assert ds.instance_names == [str(k) for k in range(30)]
    for s, e in zip(ds.slice_starts, ds.slice_ends, strict=True):
        assert np.all(np.diff(ds.times[s:e]) == 200_000_000)
    assert not np.isnan(ds.values).any()
    # The signal itself: KnowIt's component means, and x5 partly linear in x1..x4 (R^2 ~ 0.71).
    assert np.allclose(ds.values.mean(axis=0), [-47, 85, 0.7, 0.1, -66], atol=0.5)
    design = np.column_stack([ds.values[:, :4], np.ones(ds.n_rows)])
    coef, *_ = np.linalg.lstsq(design, ds.values[:, 4], rcond=None)
    resid = ds.values[:, 4] - design @ coef
    r2 = 1 - resid.var() / ds.values[:, 4].var()
    assert 0.70 < r2 < 0.72


def test_synth_c_is_knowits_dataset():
    ds = make_synth_c()
    assert ds.components == ["x1", "x2", "x3", "x4", "y1", "y2"]
    assert ds.values.shape == (45_000, 6) and ds.n_instances == 15 and ds.time_delta == 0.04
    assert ds.n_slices == 15 and np.all(ds.slice_ends - ds.slice_starts == 3000)
    # KnowIt's instance ids follow its metadata: subject_0, subject_1, subject_10, ...
    assert ds.instance_names == builtin_meta("synth_c")["instances"]
    assert ds.instance_names[:3] == ["subject_0", "subject_1", "subject_10"]
    assert np.all(np.diff(ds.times[:3000]) == 40_000_000)
    y1, y2 = ds.values[:, 4], ds.values[:, 5]
    assert set(np.unique(y1)) == {0.0, 1.0} and set(np.unique(y2)) == {0.0, 1.0, 2.0, 3.0}


def test_builtins_ship_with_their_licence_and_touch_no_disk(tmp_path):
    folder = resources.files("knowit_app.data").joinpath("builtin")
    assert "Apache License" in folder.joinpath("LICENSE").read_text()
    assert "North-West University" in folder.joinpath("NOTICE.md").read_text()
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    code = ("from knowit_app.data.store import load_dataset; "
            "print(load_dataset('synth_2', 'exp').n_rows)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, text=True,
                         capture_output=True, check=True)
    assert out.stdout.strip() == "120592"
    assert os.listdir(tmp_path) == [], "loading a built-in writes nothing anywhere"


def test_each_load_is_an_independent_copy():
    a = load_dataset("synth_c", "exp")
    a.values[:] = 0.0
    assert load_dataset("synth_c", "exp").values.any()


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
    # the replaced copy is kept (never deleted) under .replaced/<time>/d, nothing else is left
    assert sorted(os.listdir(tmp_path)) == [".replaced", "d"]
    (kept,) = (tmp_path / ".replaced").glob("*/d")
    assert_same(read_dataset(kept), a)


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
                                "slices": 30, "rows": 120_592, "time_delta": 0.2}
    assert found["mine"]["source"] == "imported" and found["mine"]["rows"] == 45_000


def test_two_writers_of_one_dataset_at_once_leave_one_whole_copy(tmp_path, monkeypatch):
    """Two imports of one name at once (two shells, two jobs). A barrier makes each writer
    finish its arrays before either publishes, so the race always happens: one copy is
    published whole, the other writer is told the dataset exists, nothing half is left."""
    import threading

    a, b = make_synth_c(), make_synth_c()
    b.values[:] = 1.0
    both_written = threading.Barrier(2, timeout=120)  # a deadline against a hang only
    real_savez = np.savez

    def savez_then_wait(*args, **kwargs):
        real_savez(*args, **kwargs)
        both_written.wait()

    monkeypatch.setattr(store.np, "savez", savez_then_wait)
    target = tmp_path / "sets" / "mine"
    outcome: dict[str, str] = {}

    def write(name: str, ds: RawDataset) -> None:
        try:
            save_dataset(ds, target, replace=False)
            outcome[name] = "saved"
        except FileExistsError:
            outcome[name] = "exists"
        except Exception as exc:  # reported by the assertion below
            outcome[name] = repr(exc)

    writers = [threading.Thread(target=write, args=item) for item in (("a", a), ("b", b))]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert sorted(outcome.values()) == ["exists", "saved"], outcome
    assert_same(read_dataset(target), a if outcome["a"] == "saved" else b)
    assert os.listdir(tmp_path / "sets") == ["mine"], "no temporary directory is left behind"
