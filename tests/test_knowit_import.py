"""KnowIt's import forms: a DataFrame prepared as KnowIt's how-to says, its files, its NaN
handling, its 'instance' and 'split' columns, and datasets stored in a KnowIt experiment dir."""

from __future__ import annotations

import datetime as dt
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from knowit_app.api import KnowIt
from knowit_app.data.importer import import_dataset, import_knowit_dataset
from knowit_app.data.store import load_dataset
from knowit_app.errors import ConfigError

STEP = pd.Timedelta("200ms")


def howto_frame() -> pd.DataFrame:
    """Two instances (ids 'b' then 'a' in the rows) of 6 steps, a 'split' column, attrs meta."""
    t = pd.date_range("2024-01-01", periods=6, freq=STEP)
    parts = []
    for k, inst in enumerate(["b", "a"]):
        parts.append(pd.DataFrame({"x1": np.arange(6.0) + 10 * k, "x2": np.arange(6.0) ** 2,
                                   "instance": inst, "split": [0, 0, 1, 1, 2, np.nan]},
                                  index=t))
    df = pd.concat(parts)
    df.attrs = {"name": "howto", "components": ["x1", "x2"], "time_delta": STEP,
                "instances": ["b", "a"]}
    return df


def test_a_dataframe_prepared_as_knowits_howto_imports_unchanged(tmp_path):
    df = howto_frame()
    ki = KnowIt(str(tmp_path))
    ki.import_dataset({"data_import": {"raw_data": df}})
    assert ki.available_datasets() == {"defaults": ["synth_2", "synth_c"], "custom": ["howto"]}
    ds = load_dataset("howto", tmp_path)
    assert ds.components == ["x1", "x2"]  # neither 'instance' nor 'split' is a component
    assert ds.instance_names == ["a", "b"] and ds.n_slices == 2 and ds.n_rows == 12
    assert ds.time_delta == pytest.approx(0.2)
    assert ds.values[:6, 0].tolist() == [10, 11, 12, 13, 14, 15]  # instance 'a' first
    assert ds.split.tolist() == [0, 0, 1, 1, 2, -1] * 2


def test_meta_argument_wins_over_attrs_and_the_split_is_optional(tmp_path):
    df = howto_frame().drop(columns="split")
    meta = {"name": "other", "components": ["x2"], "time_delta": dt.timedelta(seconds=0.2)}
    KnowIt(str(tmp_path)).import_dataset({"data_import": {"raw_data": df, "meta": meta}})
    ds = load_dataset("other", tmp_path)
    assert ds.components == ["x2"] and ds.split is None and ds.n_instances == 2


def test_an_instance_column_is_never_a_component(tmp_path):
    df = howto_frame().drop(columns="split")
    df.attrs = {}
    import_dataset(df, "plain", tmp_path)
    ds = load_dataset("plain", tmp_path)
    assert ds.components == ["x1", "x2"] and ds.instance_names == ["a", "b"]


@pytest.mark.parametrize("suffix", [".pickle", ".csv", ".parquet", ".json"])
def test_knowits_file_types(tmp_path, suffix):
    df = howto_frame()
    meta = dict(df.attrs)
    path = tmp_path / f"raw{suffix}"
    kwargs = {"raw_data": str(path), "meta": meta}
    if suffix == ".pickle":
        df.to_pickle(path)  # the metadata travels in attrs
        kwargs.pop("meta")
    elif suffix == ".csv":
        df.to_csv(path)
    elif suffix == ".parquet":
        df.attrs = {}
        df.to_parquet(path)
    else:
        df = df[df["instance"] == "a"]  # orient='index' needs unique times: one instance
        df.to_json(path, orient="index")
    KnowIt(str(tmp_path / "exp")).import_dataset({"data_import": kwargs})
    ds = load_dataset("howto", tmp_path / "exp")
    assert ds.components == ["x1", "x2"] and ds.time_delta == pytest.approx(0.2)
    assert ds.values[:6, 0].tolist() == [10, 11, 12, 13, 14, 15]
    assert ds.split.tolist()[:6] == [0, 0, 1, 1, 2, -1]


class _Boom:
    """A pickle payload that would create a file when unpickled, were it allowed to run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(ConfigError) as info:
        import_dataset(str(path), "evil", tmp_path)
    assert info.value.key == "raw_data" and "mkdir" in str(info.value)
    assert not marker.exists() and not (tmp_path / "custom_datasets").exists()
    (tmp_path / "list.pickle").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ConfigError, match="not a pandas DataFrame"):
        import_dataset(str(tmp_path / "list.pickle"), "x", tmp_path)


def nan_frame() -> pd.DataFrame:
    x = np.arange(10.0)
    x[[3, 4, 8]] = np.nan
    df = pd.DataFrame({"x": x, "y": np.arange(10.0)},
                      index=pd.date_range("2024", periods=10, freq="1s"))
    df.loc[df.index[6], "y"] = np.nan
    return df


def test_nan_split_cuts_slices_at_nans(tmp_path):
    import_dataset(nan_frame(), "cut", tmp_path, base_nan_filler="split")
    ds = load_dataset("cut", tmp_path)
    # rows 3, 4, 6 (y) and 8 go: slices [0,1,2] [5] [7] [9]
    assert ds.values[:, 1].tolist() == [0, 1, 2, 5, 7, 9]
    assert (ds.slice_ends - ds.slice_starts).tolist() == [3, 1, 1, 1]
    import_dataset(nan_frame(), "cutx", tmp_path, base_nan_filler="split",
                   nan_filled_components=["x"])
    ds = load_dataset("cutx", tmp_path)
    assert (ds.slice_ends - ds.slice_starts).tolist() == [3, 3, 1]
    assert np.isnan(ds.values[:, 1]).sum() == 1  # y's NaN is not checked, so it stays


def test_nan_interpolation_fills_both_directions(tmp_path):
    df = nan_frame()
    df.iloc[0, 0] = np.nan
    import_dataset(df, "lin", tmp_path, base_nan_filler="linear")
    ds = load_dataset("lin", tmp_path)
    assert ds.n_slices == 1 and not np.isnan(ds.values).any()
    assert ds.values[:, 0].tolist() == [1, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    import_dataset(nan_frame(), "kept", tmp_path)  # None: NaNs stay
    assert np.isnan(load_dataset("kept", tmp_path).values).sum() == 4


@pytest.mark.parametrize("kwargs, key", [
    ({"base_nan_filler": "smooth"}, "base_nan_filler"),
    ({"base_nan_filler": "split", "nan_filled_components": ["zz"]}, "nan_filled_components"),
])
def test_bad_nan_options(tmp_path, kwargs, key):
    with pytest.raises(ConfigError) as info:
        import_dataset(nan_frame(), "d", tmp_path, **kwargs)
    assert info.value.key == key
    assert not (tmp_path / "custom_datasets" / "d").exists()


def test_split_tags_other_than_0_1_2_are_refused(tmp_path):
    df = howto_frame()
    df.iloc[3, df.columns.get_loc("split")] = 3
    with pytest.raises(ConfigError, match="allowed: 0 \\(train\\)") as info:
        KnowIt(str(tmp_path)).import_dataset({"data_import": {"raw_data": df}})
    assert info.value.key == "split"


def write_knowit_dataset(exp, name, df: pd.DataFrame, components, splits=None, extra=None):
    """KnowIt's on-disk layout (KnowIt's writer is not installed here: same files via pandas)."""
    folder = exp / "custom_datasets"
    folder.mkdir(parents=True)
    df.to_parquet(folder / name, partition_cols=["instance", "slice"])
    structure = {int(i): {int(s): int(len(g)) for s, g in gi.groupby("slice")}
                 for i, gi in df.groupby("instance")}
    meta = {"name": name, "components": components, "time_delta": dt.timedelta(seconds=1),
            "instance_names": {0: "first", 1: 7.0}, "base_nan_filler": None,
            "nan_filled_components": None, "data_structure": structure, **(extra or {})}
    if splits is not None:
        meta["custom_splits"] = splits
    (folder / f"{name}_meta.pickle").write_bytes(pickle.dumps(meta))


def knowit_frame() -> pd.DataFrame:
    t = pd.date_range("2024", periods=4, freq="1s")
    parts = [pd.DataFrame({"a": np.arange(4.0) + 10 * i, "instance": i, "slice": 0}, index=t)
             for i in (0, 1)]
    return pd.concat(parts)


def test_a_knowit_experiments_dataset_is_imported_with_its_split(tmp_path):
    src = tmp_path / "knowit_exp"
    splits = {"train": np.array([[0, 0, 0], [0, 0, 1]]), "valid": np.array([[1, 0, 3]]),
              "eval": np.array([[1, 0, 0]])}
    write_knowit_dataset(src, "mine", knowit_frame(), ["a"], splits)
    import_knowit_dataset(src, "mine", tmp_path / "ours")
    ds = load_dataset("mine", tmp_path / "ours")
    assert ds.instance_names == ["first", "7"] and ds.components == ["a"]
    assert ds.values[:, 0].tolist() == [0, 1, 2, 3, 10, 11, 12, 13]
    assert ds.split.tolist() == [0, 0, -1, -1, 2, -1, -1, 1] and ds.time_delta == 1.0
    # the KnowIt experiment dir itself is usable as ours: its dataset is read in place
    assert load_dataset("mine", src).values.tolist() == ds.values.tolist()
    assert KnowIt(str(src)).available_datasets()["custom"] == ["mine"]  # listed, as KnowIt does


def test_a_knowit_meta_pickle_naming_a_class_is_refused(tmp_path):
    src = tmp_path / "knowit_exp"
    marker = tmp_path / "ran"
    write_knowit_dataset(src, "bad", knowit_frame(), ["a"], extra={"x": _Boom(str(marker))})
    with pytest.raises(ConfigError) as info:
        import_knowit_dataset(src, "bad", tmp_path / "ours")
    assert info.value.key == "knowit_dataset" and "mkdir" in str(info.value)
    assert not marker.exists() and not (tmp_path / "ours").exists()
    with pytest.raises(ConfigError, match="no KnowIt dataset 'nope'"):
        import_knowit_dataset(src, "nope", tmp_path / "ours")
