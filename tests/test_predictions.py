"""Predictions tables and plots: row counts, raw targets, inverse-scaled outputs, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import train_in_process

from knowit_app.api import KnowIt
from knowit_app.cli.evaluate import predict_main
from knowit_app.data.store import load_dataset
from knowit_app.evaluation.predictions import COLUMNS, write_predictions
from knowit_app.evaluation.trained_model import load_trained_model


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return tmp_path_factory.mktemp("pred") / "exp"


@pytest.fixture(scope="module")
def regression(exp):
    """Three output steps x two output components, scaled (scaling_tag=full)."""
    model_dir = train_in_process(exp, "reg", "data.in_components=[x1,x2,x3]",
                      "data.out_components=[x4,x5]", "data.out_chunk=[0,2]")
    return model_dir, write_predictions(model_dir, "eval")


@pytest.fixture(scope="module")
def classification(exp):
    model_dir = train_in_process(exp, "cls", "data=synth_c", "trainer=classification")
    return model_dir, write_predictions(model_dir, "eval")


def network_outputs(model_dir, split):
    import torch

    model = load_trained_model(model_dir)
    prepared = model.prepare_data()
    x, _ = prepared.batch(prepared.points[split])
    with torch.no_grad():
        return prepared, model.network(x).double().numpy()


def raw_rows(ds, table):
    """The dataset row of each table row, found from its instance name and timestamp."""
    instance = np.asarray(ds.instance_names)[ds.slice_instance[ds.row_slice()]]
    lookup = {(i, t): r for r, (i, t) in enumerate(zip(instance, ds.times, strict=True))}
    stamps = table["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    return np.array([lookup[(i, t)] for i, t in zip(table["instance"], stamps, strict=True)])


def test_one_row_per_point_step_and_component(regression):
    model_dir, result = regression
    table = pd.read_parquet(result.table_path)
    prepared, _ = network_outputs(model_dir, "eval")
    assert result.table_path == model_dir / "predictions/eval.parquet"
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == result.rows == len(prepared.points["eval"]) * 3 * 2
    assert list(table["component"][:6]) == ["x4", "x5"] * 3
    assert list(table["step"][:6]) == [0, 0, 1, 1, 2, 2]
    assert str(table["timestamp"].dtype) == "datetime64[ns]"


def test_targets_are_the_raw_values(regression, exp):
    _, result = regression
    table = pd.read_parquet(result.table_path)
    ds = load_dataset("synth_2", exp)
    rows = raw_rows(ds, table)
    columns = [ds.components.index(c) for c in table["component"]]
    np.testing.assert_array_equal(table["target"].to_numpy(), ds.values[rows, columns])
    delta = (table["timestamp"] - table["point_timestamp"]).dt.total_seconds().to_numpy()
    np.testing.assert_allclose(delta, table["step"].to_numpy() * ds.time_delta)


def test_predictions_are_inverse_scaled_outputs(regression):
    model_dir, result = regression
    table = pd.read_parquet(result.table_path)
    prepared, out = network_outputs(model_dir, "eval")
    expected = out * prepared.out_scaler.scale + prepared.out_scaler.shift
    np.testing.assert_allclose(table["prediction"].to_numpy(), expected.reshape(-1), rtol=1e-6)


def test_plot_is_written(regression):
    model_dir, result = regression
    assert result.plot_path == model_dir / "predictions/eval.png"
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in result.plot_path.parent.iterdir()) == [
        "eval.parquet", "eval.png"]


def test_classification_predicts_class_labels(classification, exp):
    model_dir, result = classification
    table = pd.read_parquet(result.table_path)
    prepared, out = network_outputs(model_dir, "eval")
    assert list(table.columns) == [*COLUMNS, "probability"]
    assert len(table) == len(prepared.points["eval"])
    labels = np.asarray(prepared.class_set)
    np.testing.assert_array_equal(table["prediction"].to_numpy(), labels[out.argmax(axis=1)])
    probs = np.exp(out - out.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(table["probability"].to_numpy(), probs.max(axis=1), rtol=1e-9)
    ds = load_dataset("synth_c", exp)
    np.testing.assert_array_equal(table["target"].to_numpy(),
                                  ds.values[raw_rows(ds, table), ds.components.index("y1")])
    assert result.plot_path.is_file()


def test_cli_and_api(regression, exp, capsys):
    model_dir, _ = regression
    assert predict_main([f"exp_dir={exp}", "model_name=reg", "set=valid"]) == 0
    assert "predictions of the valid set" in capsys.readouterr().out
    assert (model_dir / "predictions/valid.parquet").is_file()
    result = KnowIt(exp).write_predictions("reg", "train")
    assert result.table_path == model_dir / "predictions/train.parquet"


@pytest.mark.parametrize("args, key", [
    (["model_name=nope"], "model_name"),
    (["model_name=reg", "set=test"], "set"),
    (["model_name=reg", "run=r1"], "sweep"),
    (["model_name=reg", "sets=eval"], "sets"),
])
def test_cli_errors_are_one_line(exp, capsys, args, key):
    assert predict_main([f"exp_dir={exp}", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {key}:") and err.count("\n") == 1
