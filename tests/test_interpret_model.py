"""Interpreting trained models end to end: the file holds what the model did, in the right units.

Each model is trained once per module (one short epoch on 5 instances, real Lightning), then
interpreted through the command, the KnowIt-style API and the sweep callback's helper.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import train_in_process
from PIL import Image

from knowit_app.interpret.fileformat import INTERPRETATIONS_DIR, read_interpretation
from knowit_app.interpret.options import make_options
from knowit_app.interpret.pictures import VISUALIZATIONS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    exp = tmp_path_factory.mktemp("interp") / "outputs"
    train_in_process(exp, "reg")
    return exp


@pytest.fixture(scope="module")
def rnn(exp):
    train_in_process(exp, "rnn", "arch=lstm", "arch.width=8")
    return exp / "models/rnn"


def _model(exp, name="reg"):
    from knowit_app.evaluation.trained_model import load_trained_model

    model = load_trained_model(exp / "models" / name)
    return model, model.prepare_data()


def _raw_windows(exp, model, prepared, rows):
    """The inputs of ``rows`` read straight from the dataset (original units)."""
    from knowit_app.data.store import load_dataset

    ds = load_dataset(model.args["data"]["name"], exp)
    idx = ds.component_index(prepared.in_components, "in")
    return ds.values[rows[:, None] + prepared.in_offsets[None, :]][:, :, idx]


def test_integrated_gradients_is_complete_on_a_trained_model(exp):
    from knowit_app.interpret.run import interpret_model

    result = interpret_model(exp / "models/reg", make_options("IntegratedGradients", "eval",
                                                              size=40), pictures=False)
    arrays, meta = read_interpretation(exp / "models/reg", result.options.file_stem)
    model, prepared = _model(exp)
    # The stored inputs are the dataset's own values; scaled again, they give back the model's
    # stored predictions, and the attributions add up to f(input) - f(baseline).
    np.testing.assert_allclose(arrays["inputs"], _raw_windows(exp, model, prepared,
                                                              arrays["rows"]),
                               rtol=1e-5, atol=1e-4)  # float32 on the way through the network
    x = torch.as_tensor(prepared.in_scaler.transform(arrays["inputs"]), dtype=torch.float32)
    with torch.no_grad():
        out = model.network(x)
        gain = (out - model.network(torch.as_tensor(arrays["baselines"]))).numpy()
    pred = prepared.out_scaler.inverse_transform(out.numpy().astype(np.float64))
    np.testing.assert_allclose(arrays["predictions"], pred, rtol=1e-4, atol=1e-4)
    total = arrays["attributions"].sum(axis=(-2, -1))
    assert total.shape == gain.shape == (40, 1, 1)
    np.testing.assert_allclose(total, gain, atol=np.abs(arrays["convergence_delta"]).max() + 1e-4)
    assert meta["axes"]["attributions"] == ["point", "out_step", "out_component", "in_step",
                                            "in_component"]
    assert meta["inputs_units"] == "original"
    assert np.all(np.diff(arrays["rows"]) == 1)  # one contiguous block


def test_inputs_stay_scaled_when_rescale_inputs_is_off(exp):
    from knowit_app.interpret.run import interpret_model

    opts = make_options("DeepLift", "valid", "random", 10, rescale_inputs=False, seed=4)
    result = interpret_model(exp / "models/reg", opts, pictures=False)
    arrays, meta = read_interpretation(exp / "models/reg", result.options.file_stem)
    model, prepared = _model(exp)
    scaled, _ = prepared.batch(arrays["rows"])
    np.testing.assert_allclose(arrays["inputs"], scaled.numpy(), rtol=1e-6)
    assert not np.allclose(arrays["inputs"], _raw_windows(exp, model, prepared, arrays["rows"]))
    assert meta["inputs_units"] == "network (scaled)"


def _cli(exp, *words):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "knowit_app.cli.interpret",
                           f"exp_dir={exp}", *words], capture_output=True, text=True, env=env,
                          timeout=600)


def test_the_command_makes_missing_predictions_and_writes_file_and_pictures(exp):
    model_dir = exp / "models/reg"
    assert not (model_dir / "predictions/eval.parquet").exists()
    proc = _cli(exp, "model_name=reg", "method=IntegratedGradients", "set=eval",
                "selection=success", "size=100")
    assert proc.returncode == 0, proc.stderr
    stem = "IntegratedGradients-eval-success-100-True-123"
    npz = model_dir / INTERPRETATIONS_DIR / f"{stem}.npz"
    assert str(npz.relative_to(exp.parent)) in proc.stdout or npz.name in proc.stdout
    assert (model_dir / "predictions/eval.parquet").is_file()
    with np.load(npz, allow_pickle=False) as data:  # numpy alone, no pickle
        assert data["attributions"].shape == (100, 1, 1, 33, 4)
        assert data["timestamps"].dtype == np.dtype("datetime64[ns]")
        assert data["in_components"].tolist() == ["x1", "x2", "x3", "x4"]
    meta = json.loads((model_dir / INTERPRETATIONS_DIR / f"{stem}.json").read_text())
    assert meta["method"] == "IntegratedGradients" and meta["arguments"]["n_steps"] == 50
    # success = the block of 100 points with the lowest mean absolute error
    import pandas as pd

    table = pd.read_parquet(model_dir / "predictions/eval.parquet")
    err = (table["prediction"] - table["target"]).abs().to_numpy()
    with np.load(npz, allow_pickle=False) as data:
        ids = data["point_ids"]
    assert err[ids].mean() <= err.mean()
    pictures = model_dir / VISUALIZATIONS_DIR
    for suffix in ("-heatmap.png", "-bars.png"):
        with Image.open(pictures / f"{stem}{suffix}") as img:
            assert img.format == "PNG" and img.width > 500
    with Image.open(pictures / f"{stem}.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames > 10


def test_the_knowit_style_call_gives_the_same_kind_of_result(exp):
    from knowit_app.api import KnowIt

    KI = KnowIt(exp)
    result = KI.interpret_model("reg", kwargs={"interpreter": {
        "interpretation_method": "DeepLiftShap", "interpretation_set": "eval",
        "selection": "success", "size": 100}})
    assert result.npz_path.name == "DeepLiftShap-eval-success-100-True-123.npz"
    arrays, meta = read_interpretation(exp / "models/reg", "DeepLiftShap-eval-success-100-True-123")
    assert arrays["attributions"].shape == (100, 1, 1, 33, 4)
    assert arrays["baselines"].shape[0] > 1  # a distribution of training windows
    assert [p.suffix for p in result.pictures] == [".png", ".png", ".gif"]


def test_deeplift_on_an_lstm_is_refused_before_anything_is_written(exp, rnn):
    proc = _cli(exp, "model_name=rnn", "method=DeepLift")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith("error: method: DeepLift") and "LSTM" in line
    assert "method=IntegratedGradients" in line and "\n" not in line
    assert not (rnn / INTERPRETATIONS_DIR).exists() and not (rnn / "predictions").exists()


def test_a_classifier_is_explained_per_class(exp):
    from knowit_app.interpret.run import interpret_model

    train_in_process(exp, "cls", "data=synth_c", "trainer=classification")
    result = interpret_model(exp / "models/cls", make_options("DeepLift", "eval", "random", 30))
    arrays, meta = read_interpretation(exp / "models/cls", result.options.file_stem)
    assert arrays["attributions"].shape == (30, len(arrays["classes"]), 17, 4)
    assert meta["axes"]["attributions"][1] == "class"
    assert set(arrays["predictions"]) <= set(arrays["classes"])
    assert arrays["probabilities"].shape == (30, len(arrays["classes"]))
    assert all(p.is_file() for p in result.pictures)


def test_the_sweep_callback_checks_its_method_and_interprets_the_model(exp, rnn, caplog):
    from knowit_app.errors import ConfigError
    from knowit_app.interpret.after_sweep import interpret_safely
    from knowit_app.sweeps.callback import ConsolidateSweep

    with pytest.raises(ConfigError, match="hydra.callbacks.consolidate.interpret: unknown"):
        ConsolidateSweep(interpret="Shapley")
    assert ConsolidateSweep(interpret="integratedgradients").interpret == "IntegratedGradients"
    path = interpret_safely(exp / "models/reg", "DeepLift")
    assert path is not None and path.name == "DeepLift-valid-random-100-True-123.npz"
    with caplog.at_level("WARNING", logger="knowit_app.sweep"):
        assert interpret_safely(rnn, "DeepLiftShap") is None
    assert "no interpretation: ConfigError" in caplog.text
