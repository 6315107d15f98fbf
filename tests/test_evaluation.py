"""Evaluation of a trained model: KnowIt's result_* columns, values checked by hand, the CLI."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import QUICK, snapshot, train_in_process

from knowit_app.api import KnowIt
from knowit_app.cli.evaluate import eval_main
from knowit_app.data.store import load_dataset
from knowit_app.evaluation.scores import evaluate_model, metrics_path, read_metrics_csv
from knowit_app.evaluation.trained_model import load_trained_model
from knowit_app.experiment.io import replace_atomically

PERF = "trainer.performance_metrics=[mean_absolute_error,r2_score]"


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return tmp_path_factory.mktemp("eval") / "exp"


@pytest.fixture(scope="module")
def regression(exp):
    """Two output steps, scaling_tag=full (the default): perf metrics get rescaled."""
    return train_in_process(exp, "reg", PERF, "data.out_chunk=[0,1]")


@pytest.fixture(scope="module")
def classification(exp):
    return train_in_process(exp, "cls", "data=synth_c", "trainer=classification")


def logged_at_checkpoint(model_dir):
    """The valid_* values Lightning logged in the epoch the checkpoint was saved."""
    ckpt = next(model_dir.glob("bestmodel-*.ckpt")).name
    epoch = re.search(r"epoch=(\d+)", ckpt).group(1)
    with open(model_dir / "lightning_logs/version_0/metrics.csv") as fh:
        return next(r for r in csv.DictReader(fh) if r["epoch"] == epoch and r["valid_loss"])


def outputs(model_dir, split):
    """Network outputs and targets of a whole split in one batch, as float64 numpy arrays."""
    import torch

    model = load_trained_model(model_dir)
    prepared = model.prepare_data()
    rows = prepared.points[split]
    x, y = prepared.batch(rows)
    with torch.no_grad():
        out = model.network(x).double().numpy()
    return prepared, rows, out, y.numpy()


def test_metrics_csv_has_knowit_columns(regression):
    result = evaluate_model(regression)
    assert result.csv_path == regression / "lightning_logs/evaluation/metrics.csv"
    assert result.outputs_rescaled
    expected = []
    for split in ("train", "valid", "eval"):
        expected += [f"result_{split}_loss"]
        for name in ("mean_absolute_error", "r2_score"):
            expected += [f"result_{split}_perf_{name}", f"result_{split}_perf_{name}_scaled"]
    with open(result.csv_path) as fh:
        header = next(csv.reader(fh))
    assert header == expected
    assert read_metrics_csv(result.csv_path) == result.metrics


def test_valid_scores_match_the_checkpoint(regression):
    """Loss and *_scaled metrics are computed as training computes them."""
    metrics = evaluate_model(regression, "valid").metrics
    logged = logged_at_checkpoint(regression)
    assert metrics["result_valid_loss"] == pytest.approx(float(logged["valid_loss"]), rel=1e-5)
    for name in ("mean_absolute_error", "r2_score"):
        assert metrics[f"result_valid_perf_{name}_scaled"] == pytest.approx(
            float(logged[f"valid_perf_{name}"]), rel=1e-5)


def test_eval_metrics_match_a_direct_computation(regression, exp):
    metrics = evaluate_model(regression, ["eval"]).metrics
    assert set(metrics) == {"result_eval_loss", "result_eval_perf_mean_absolute_error",
                            "result_eval_perf_mean_absolute_error_scaled",
                            "result_eval_perf_r2_score", "result_eval_perf_r2_score_scaled"}
    prepared, rows, out, y = outputs(regression, "eval")
    assert metrics["result_eval_loss"] == pytest.approx(np.mean((out - y) ** 2), rel=1e-5)
    scaler = prepared.out_scaler
    pred, target = out * scaler.scale + scaler.shift, y * scaler.scale + scaler.shift
    # Targets in original units are the raw dataset's values at the output steps.
    ds = load_dataset("synth_2", exp)
    raw = ds.values[rows[:, None] + prepared.out_offsets][:, :, [ds.components.index("x5")]]
    np.testing.assert_allclose(target, raw, rtol=1e-5, atol=1e-5)
    mae = np.mean(np.abs(pred - raw))
    r2 = 1 - np.sum((raw - pred) ** 2) / np.sum((raw - raw.mean()) ** 2)
    assert metrics["result_eval_perf_mean_absolute_error"] == pytest.approx(mae, rel=1e-5)
    assert metrics["result_eval_perf_mean_absolute_error_scaled"] == pytest.approx(
        np.mean(np.abs(out - y)), rel=1e-5)
    assert metrics["result_eval_perf_r2_score"] == pytest.approx(r2, rel=1e-4)


def test_classification_scores(classification):
    import torch

    result = evaluate_model(classification)
    assert not result.outputs_rescaled
    assert not [k for k in result.metrics if k.endswith("_scaled")]
    _, _, out, y = outputs(classification, "eval")
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(out), torch.from_numpy(y))
    assert result.metrics["result_eval_loss"] == pytest.approx(float(loss), rel=1e-5)
    accuracy = np.mean(out.argmax(axis=1) == y)
    assert result.metrics["result_eval_perf_accuracy"] == pytest.approx(accuracy, rel=1e-6)
    logged = logged_at_checkpoint(classification)
    assert result.metrics["result_valid_loss"] == pytest.approx(float(logged["valid_loss"]),
                                                                rel=1e-5)


def test_evaluation_touches_nothing_else(regression):
    def others():
        return {k: v for k, v in snapshot(regression).items()
                if not k.startswith("lightning_logs/evaluation")}

    before = others()
    evaluate_model(regression, "eval")
    assert others() == before
    assert sorted(p.name for p in metrics_path(regression).parent.iterdir()) == ["metrics.csv"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        replace_atomically(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_cli_scores_a_model_and_a_sweep_run(regression, exp, capsys):
    assert eval_main([f"exp_dir={exp}", "model_name=reg", "sets=eval"]) == 0
    printed = capsys.readouterr().out
    assert "perf_mean_absolute_error" in printed and "\neval " in printed
    assert printed.splitlines()[0].endswith(": perf metrics in original units (outputs "
                                            "inverse-scaled; *_scaled as in training)")
    assert all(k.startswith("result_eval_") for k in read_metrics_csv(metrics_path(regression)))

    run_dir = regression / "sweeps/s1/run-3"
    run_dir.mkdir(parents=True)
    for entry in [*regression.glob("bestmodel-*.ckpt"), regression / "model_args.yaml"]:
        shutil.copy2(entry, run_dir / entry.name)
    assert eval_main([f"exp_dir={exp}", "model_name=reg", "sweep=s1", "run=run-3",
                      "sets=valid,train"]) == 0
    assert list(read_metrics_csv(metrics_path(run_dir)))[0] == "result_train_loss"


def test_cli_header_of_a_model_without_perf_metrics_says_what_it_scored(exp, capsys):
    train_in_process(exp, "plain", *QUICK)
    assert eval_main([f"exp_dir={exp}", "model_name=plain", "sets=valid"]) == 0
    header, *table = capsys.readouterr().out.splitlines()
    assert header.endswith(": the training loss (no trainer.performance_metrics to score)")
    assert "perf" not in "\n".join(table) and "loss" in table[0]


def test_an_mlp_with_a_head_bias_from_an_older_version_still_loads(exp):
    """Older versions gave the MLP head a bias (KnowIt's has none) and recorded no
    ``output_bias``: such a model still loads and reproduces its checkpoint's valid_loss."""
    import json

    import yaml

    new = train_in_process(exp, "new_head", *QUICK)
    assert "head.linear.bias" not in load_trained_model(new).network.state_dict()
    old = train_in_process(exp, "old_head", *QUICK, "arch.output_bias=true")
    path = old / "model_args.yaml"
    record = yaml.safe_load(path.read_text())
    for section in (record["arch"], record["arch"]["arch_hps"]):
        del section["output_bias"]  # what an older version wrote
    path.write_text(yaml.safe_dump(record, sort_keys=False))
    model = load_trained_model(old)
    assert "head.linear.bias" in model.network.state_dict()
    best = json.loads((old / "run_result.json").read_text())["best_score"]
    assert model.score("valid") == pytest.approx(best, rel=1e-4)


def test_api_wrapper(regression, exp):
    result = KnowIt(exp).evaluate_model("reg", sets=["valid"])
    assert result.csv_path == metrics_path(regression)
    assert list(result.metrics)[0] == "result_valid_loss"


@pytest.mark.parametrize("args, key", [
    (["model_name=nope"], "model_name"),
    (["model_name=reg", "sweep=s1"], "run"),
    (["model_name=reg", "sets=train,test"], "sets"),
    (["model_name=reg", "set=eval"], "set"),
    ([], "model_name"),
])
def test_cli_errors_are_one_line(exp, capsys, args, key):
    assert eval_main([f"exp_dir={exp}", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {key}:") and err.count("\n") == 1


def test_cli_on_a_directory_without_a_model(tmp_path, capsys):
    (tmp_path / "models/empty").mkdir(parents=True)
    assert eval_main([f"exp_dir={tmp_path}", "model_name=empty"]) == 2
    err = capsys.readouterr().err
    assert "holds no trained model" in err and err.count("\n") == 1


def test_console_script_is_light_and_fails_in_one_line(tmp_path):
    code = ("import sys; from knowit_app.cli import evaluate as cli; "
            "from knowit_app.evaluation import scores, predictions, forward; "
            "print([m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules]); "
            "sys.exit(cli.eval_main(['model_name=nope']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.strip() == "[]"
    assert proc.stderr.startswith("error: model_name: no model 'nope'")
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("argv, expected", [
    (["--model-name", "nope"], "error: model_name: no model 'nope'"),
    (["model=nope"], "error: model_name: no model 'nope'"),  # KnowIt's spelling
    (["model_name=a", "--model-name", "b"], "error: model_name: given twice"),
    (["model_name=a", "colour=red"], "error: colour: unknown argument 'colour=red'"),
    (["sets=eval"], "error: model_name: missing"),
])
def test_key_value_words_and_options_are_one_syntax(tmp_path, capsys, argv, expected):
    assert eval_main([f"--exp-dir={tmp_path}", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err


def test_a_missing_sweep_or_run_names_its_own_key(tmp_path):
    """``sweep=`` naming no sweep blames ``sweep`` and lists the model's sweeps; a missing run
    in an existing sweep blames ``run`` and lists that sweep's runs."""
    from knowit_app.errors import ConfigError
    from knowit_app.evaluation.forward import find_model_dir
    from knowit_app.experiment.layout import ExperimentLayout

    ExperimentLayout(tmp_path).run_dir("m", "grid", "run_a").mkdir(parents=True)
    with pytest.raises(ConfigError) as wrong_sweep:
        find_model_dir(tmp_path, "m", sweep="gird", run="run_a")
    assert wrong_sweep.value.key == "sweep"
    assert "sweeps there: grid" in str(wrong_sweep.value)
    with pytest.raises(ConfigError) as wrong_run:
        find_model_dir(tmp_path, "m", sweep="grid", run="run_b")
    assert wrong_run.value.key == "run" and "runs there: run_a" in str(wrong_run.value)
    assert find_model_dir(tmp_path, "m", sweep="grid", run="run_a").name == "run_a"
