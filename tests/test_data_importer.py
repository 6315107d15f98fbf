"""Importing CSV, Parquet and DataFrames: sorting, slicing, naming, and refusing bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from knowit_app.cli.import_data import main
from knowit_app.data.importer import import_dataset
from knowit_app.data.store import list_datasets, load_dataset
from knowit_app.errors import ConfigError

S = 1_000_000_000


def two_instance_frame() -> pd.DataFrame:
    """Instance 'late' starts at 100 s, 'early' at 0 s; steps of 0.5 s; rows shuffled.

    'late' has a 10 s gap after its 4th step (two slices); 'early' has a NaN in b.
    """
    late = pd.DataFrame({"t": 100 + 0.5 * np.array([0, 1, 2, 3, 24, 25]), "who": "late"})
    early = pd.DataFrame({"t": 0.5 * np.arange(5), "who": "early"})
    df = pd.concat([late, early], ignore_index=True)
    df["a"] = np.arange(len(df), dtype=float)
    df["b"] = df["a"] * 10
    df.loc[8, "b"] = np.nan
    df["note"] = "text"
    df["t"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(df["t"], unit="s")
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_csv_with_time_and_instance_columns(tmp_path):
    df = two_instance_frame()
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    out = import_dataset(path, "two", tmp_path / "exp", time_column="t", instance_column="who")
    assert out == tmp_path / "exp" / "custom_datasets" / "two"
    ds = load_dataset("two", tmp_path / "exp")
    assert ds.components == ["a", "b"]  # numeric columns except time and instance
    assert ds.instance_names == ["early", "late"]  # sorted ids, as KnowIt groups them
    assert ds.time_delta == 0.5
    # early: 5 rows, one slice; late: 4 + 2 rows, cut by the 10 s gap.
    assert ds.slice_starts.tolist() == [0, 5, 9] and ds.slice_ends.tolist() == [5, 9, 11]
    assert ds.slice_instance.tolist() == [0, 1, 1]
    ordered = pd.concat([df[df.who == "early"].sort_values("t"),
                         df[df.who == "late"].sort_values("t")])
    assert np.array_equal(ds.values, ordered[["a", "b"]].to_numpy(), equal_nan=True)
    expected_ns = ordered["t"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    assert np.array_equal(ds.times, expected_ns)
    assert np.isnan(ds.values).sum() == 1  # the NaN is kept


def test_parquet_with_a_datetime_index_and_inferred_step(tmp_path):
    idx = pd.date_range("2024-01-01", periods=12, freq="200ms")
    idx = idx.delete([7])  # one missing step -> a gap of 400 ms cuts a slice
    df = pd.DataFrame({"u": np.arange(11.0), "v": np.arange(11.0) ** 2}, index=idx)
    path = tmp_path / "data.parquet"
    df.to_parquet(path)
    import_dataset(path, "pq", tmp_path)
    ds = load_dataset("pq", tmp_path)
    assert ds.time_delta == pytest.approx(0.2) and ds.components == ["u", "v"]
    assert ds.slice_starts.tolist() == [0, 7] and ds.slice_ends.tolist() == [7, 11]
    assert ds.instance_names == ["pq"]


def test_csv_whose_first_column_is_the_datetime_index(tmp_path):
    idx = pd.date_range("2024-01-01", periods=5, freq="2s", name="when")
    pd.DataFrame({"u": np.arange(5.0)}, index=idx).to_csv(tmp_path / "d.csv")
    import_dataset(tmp_path / "d.csv", "d", tmp_path)
    ds = load_dataset("d", tmp_path)
    assert ds.time_delta == 2.0 and ds.components == ["u"] and ds.n_rows == 5
    assert ds.times[0] == pd.Timestamp("2024-01-01").value


@pytest.mark.parametrize("delta, n_slices, seconds", [
    ("400ms", 1, 0.4), (0.4, 1, 0.4), ("0.2", 2, 0.2), ("1s", 1, 1.0),
])
def test_explicit_time_delta(tmp_path, delta, n_slices, seconds):
    # Steps of 200 ms with one missing: a gap of 400 ms, which cuts only when delta < 0.4 s.
    idx = pd.date_range("2024-01-01", periods=6, freq="200ms").delete([3])
    df = pd.DataFrame({"u": np.arange(5.0)}, index=idx)
    import_dataset(df, "d", tmp_path, time_delta=delta)
    ds = load_dataset("d", tmp_path)
    assert ds.n_slices == n_slices and ds.time_delta == pytest.approx(seconds)


def test_numeric_time_column_is_seconds_and_components_can_be_chosen(tmp_path):
    df = pd.DataFrame({"sec": [3.0, 1.0, 2.0], "x": [30.0, 10.0, 20.0], "y": [1.0, 2.0, 3.0]})
    import_dataset(df, "num", tmp_path, time_column="sec", components=["x"])
    ds = load_dataset("num", tmp_path)
    assert ds.times.tolist() == [1 * S, 2 * S, 3 * S] and ds.values[:, 0].tolist() == [10, 20, 30]
    assert ds.components == ["x"] and ds.time_delta == 1.0


def test_time_zones_are_converted_to_utc(tmp_path):
    idx = pd.date_range("2024-01-01 01:00", periods=3, freq="1s", tz="Europe/Berlin")
    import_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=idx), "tz", tmp_path)
    first = pd.Timestamp(load_dataset("tz", tmp_path).times[0])
    assert first == pd.Timestamp("2024-01-01 00:00:00")


def test_overwrite(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.date_range("2024", periods=2, freq="1s"))
    import_dataset(df, "d", tmp_path)
    with pytest.raises(ConfigError) as info:
        import_dataset(df * 2, "d", tmp_path)
    assert info.value.key == "overwrite" and "overwrite" in str(info.value)
    assert load_dataset("d", tmp_path).values[:, 0].tolist() == [1.0, 2.0]
    import_dataset(df * 2, "d", tmp_path, overwrite=True)
    assert load_dataset("d", tmp_path).values[:, 0].tolist() == [2.0, 4.0]
    assert [d["name"] for d in list_datasets(tmp_path) if d["source"] == "imported"] == ["d"]


def good_frame() -> pd.DataFrame:
    return pd.DataFrame({"t": pd.date_range("2024", periods=4, freq="1s"), "i": ["a"] * 4,
                         "x": [1.0, 2, 3, 4], "s": ["p", "q", "r", "s"]})


@pytest.mark.filterwarnings("ignore:Could not infer format")
@pytest.mark.parametrize("kwargs, key, words", [
    ({"name": "synth_2"}, "name", "built-in"),
    ({"name": "a/b"}, "name", "invalid dataset name"),
    ({"name": ".hidden"}, "name", "invalid dataset name"),
    ({"time_column": "when"}, "time_column", "unknown column 'when'"),
    ({"time_column": "s"}, "time_column", "cannot be read as times"),
    ({"time_column": None}, "time_column", "not time-indexed"),
    ({"instance_column": "who"}, "instance_column", "unknown column 'who'"),
    ({"components": ["x", "zz"]}, "components", "unknown column 'zz'"),
    ({"components": ["s"]}, "components", "not numeric"),
    ({"components": ["x", "x"]}, "components", "twice"),
    ({"components": ["t"]}, "components", "time, instance or split"),
    ({"components": []}, "components", "at least one"),
    ({"time_delta": "soon"}, "time_delta", "200ms"),
    ({"time_delta": -1.0}, "time_delta", "positive"),
    ({"time_delta": 0}, "time_delta", "positive"),
])
def test_bad_import_arguments(tmp_path, kwargs, key, words):
    args = {"name": "d", "time_column": "t", "instance_column": "i", **kwargs}
    with pytest.raises(ConfigError) as info:
        import_dataset(good_frame(), exp_dir=tmp_path, **args)
    assert info.value.key == key, str(info.value)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "custom_datasets" / "d").exists()


def test_a_csv_without_times_lists_its_first_column_among_the_candidates(tmp_path):
    """A CSV's first column becomes the index when no time_column is given: when it holds no
    times, the message still offers it."""
    path = tmp_path / "plain.csv"
    pd.DataFrame({"a": [0.1, 0.2], "b": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"time_column \(one of: a, b\)"):
        import_dataset(str(path), "d", tmp_path)


def test_rows_that_all_share_one_time_are_explained(tmp_path):
    frame = pd.DataFrame({"t": ["2024-01-01"] * 5, "x": [1.0, 2, 3, 4, 5]})
    with pytest.raises(ConfigError, match=r"no instance has two distinct times \(4 rows"):
        import_dataset(frame, "d", tmp_path, time_column="t")


def test_repeated_times_keep_the_first_row_as_knowit_does(tmp_path):
    df = good_frame()
    df.loc[2, "t"] = df.loc[1, "t"]
    import_dataset(df, "d", tmp_path, time_column="t", instance_column="i")
    assert load_dataset("d", tmp_path).values[:, 0].tolist() == [1.0, 2.0, 4.0]
    df.loc[2, "i"] = "b"  # the same time in another instance is another row
    import_dataset(df, "d", tmp_path, time_column="t", instance_column="i", overwrite=True)
    assert load_dataset("d", tmp_path).n_rows == 4


@pytest.mark.parametrize("bad, key", [
    ({"x": [np.inf]}, "components"),
    ({"t": [pd.NaT]}, "time_column"),
    ({"i": [None]}, "instance_column"),
])
def test_bad_cells_are_refused(tmp_path, bad, key):
    df = good_frame()
    for col, (v,) in bad.items():
        df[col] = df[col].astype(object)
        df.loc[1, col] = v
    with pytest.raises(ConfigError) as info:
        import_dataset(df, "d", tmp_path, time_column="t", instance_column="i")
    assert info.value.key == key


def test_files_that_cannot_be_used(tmp_path):
    with pytest.raises(ConfigError, match="file not found") as info:
        import_dataset(tmp_path / "missing.csv", "d", tmp_path)
    assert info.value.key == "raw_data"
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ConfigError, match="unsupported file type '.xlsx'"):
        import_dataset(tmp_path / "x.xlsx", "d", tmp_path)
    (tmp_path / "plain.csv").write_text("k,x\n1,2.0\n2,3.0\n")  # first column is not a time
    with pytest.raises(ConfigError) as info:
        import_dataset(tmp_path / "plain.csv", "d", tmp_path)
    assert info.value.key == "time_column"
    with pytest.raises(ConfigError, match="no rows"):
        import_dataset(good_frame().iloc[:0], "d", tmp_path, time_column="t")
    one = good_frame().iloc[:1]
    with pytest.raises(ConfigError, match="cannot infer the time step"):
        import_dataset(one, "d", tmp_path, time_column="t")


def test_cli_imports_and_summarises(tmp_path, capsys):
    df = two_instance_frame()
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    exp = tmp_path / "exp"
    argv = [str(path), "--name", "two", "--exp-dir", str(exp), "--time-column", "t",
            "--instance-column", "who", "--components", "a, b", "--time-delta", "500ms"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    summary, note = out.splitlines()  # the rows are shuffled: sorting them is said, not hidden
    assert "not in ascending order" in note and "sorted" in note
    assert "'two'" in out and "11 rows" in out and "2 instances" in out and "3 slices" in out
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: overwrite:") and err.count("\n") == 1
    assert main([*argv, "--overwrite"]) == 0
    assert main([str(path), "--name", "x", "--exp-dir", str(exp), "--time-column", "nope"]) == 2
    assert "error: time_column: unknown column 'nope'" in capsys.readouterr().err


def test_cli_module_does_not_import_torch():
    code = ("import sys, knowit_app.cli.import_data, knowit_app.data.importer; "
            "sys.exit(1 if 'torch' in sys.modules or 'lightning' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
