"""The ``knowit-app`` command end to end: real Hydra composition, real Lightning training."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import CKPT_NAME, FAST, checkpoints, run_cli, snapshot


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tutorial-shaped model trained through the command line, shared by several tests."""
    work = tmp_path_factory.mktemp("cli")
    proc = run_cli(["model_name=m1", *FAST], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, work / "outputs" / "models" / "m1", proc


@pytest.mark.slow
def test_model_dir_has_knowit_layout(trained):
    work, model_dir, _ = trained
    ckpts = checkpoints(model_dir)
    assert len(ckpts) == 1 and CKPT_NAME.match(ckpts[0].name), ckpts
    assert (model_dir / "model_args.yaml").is_file()
    assert (model_dir / ".hydra" / "config.yaml").is_file()
    with open(model_dir / "lightning_logs" / "version_0" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    epochs = {int(r["epoch"]) for r in rows if r.get("valid_loss")}
    assert epochs == {0, 1}
    assert any(r.get("train_loss") for r in rows)
    # The staging area is gone once the model is in place.
    assert not (work / "outputs" / "models" / ".staging").exists() or not any(
        (work / "outputs" / "models" / ".staging").iterdir())


@pytest.mark.slow
def test_checkpoint_name_matches_best_logged_valid_loss(trained):
    _, model_dir, _ = trained
    ckpt = checkpoints(model_dir)[0]
    epoch, shown = CKPT_NAME.match(ckpt.name).groups()
    with open(model_dir / "lightning_logs" / "version_0" / "metrics.csv") as fh:
        losses = {int(r["epoch"]): float(r["valid_loss"]) for r in csv.DictReader(fh)
                  if r.get("valid_loss")}
    best_epoch = min(losses, key=losses.get)
    assert int(epoch) == best_epoch
    assert shown == f"{losses[best_epoch]:.2f}"


@pytest.mark.slow
def test_checkpoint_loads_weights_only(trained):
    _, model_dir, _ = trained
    state = torch.load(checkpoints(model_dir)[0], map_location="cpu", weights_only=True)
    assert any(k.startswith("model.") for k in state["state_dict"])


@pytest.mark.slow
def test_model_args_records_config_and_data_dynamics(trained):
    _, model_dir, _ = trained
    args = yaml.safe_load((model_dir / "model_args.yaml").read_text())
    assert args["data"]["name"] == "synth_2"
    assert args["data"]["in_components"] == ["x1", "x2", "x3", "x4"]
    assert args["data"]["split_method"] == "instance-random"
    assert args["arch"]["name"] == "MLP" and args["arch"]["width"] == 32
    assert args["trainer"]["loss_fn"] == "mse_loss" and args["trainer"]["optim"] == "Adam"
    dyn = args["data_dynamics"]
    assert list(dyn["in_shape"]) == [33, 4] and list(dyn["out_shape"]) == [1, 1]
    sizes = dyn["split_sizes"]
    assert all(sizes[s] > 0 for s in ("train", "valid", "eval"))


@pytest.mark.slow
def test_existing_model_is_refused_and_left_untouched(trained):
    work, model_dir, _ = trained
    before = snapshot(model_dir)
    proc = run_cli(["model_name=m1", *FAST], cwd=work)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    assert "model_name" in out and "overwrite=true" in out
    assert "Traceback" not in out
    assert snapshot(model_dir) == before


@pytest.mark.slow
def test_overwrite_keeps_the_replaced_model(tmp_path):
    first = run_cli(["model_name=m", *FAST, "trainer.max_epochs=1"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    model_dir = tmp_path / "outputs" / "models" / "m"
    old = snapshot(model_dir)
    second = run_cli(["model_name=m", *FAST, "trainer.max_epochs=1", "overwrite=true",
                      "trainer.learning_rate=0.01"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    args = yaml.safe_load((model_dir / "model_args.yaml").read_text())
    assert args["trainer"]["learning_rate"] == 0.01
    kept = list((model_dir / ".replaced").iterdir())
    assert len(kept) == 1
    assert (kept[0] / "model_args.yaml").read_bytes() == old["model_args.yaml"]
    assert len(checkpoints(kept[0])) == 1 and len(checkpoints(model_dir)) == 1


@pytest.mark.slow
def test_overrides_reach_the_model(tmp_path):
    proc = run_cli(["model_name=m2", "arch=cnn", "arch.dropout=0.1", "data.batch_size=128",
                    "trainer.learning_rate=0.01", "data.limit=5", "trainer.max_epochs=1",
                    "arch.num_filters=8", "exp_dir=elsewhere"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    args = yaml.safe_load((tmp_path / "elsewhere/models/m2/model_args.yaml").read_text())
    assert args["arch"]["name"] == "CNN" and args["arch"]["dropout"] == 0.1
    assert args["data"]["batch_size"] == 128 and args["trainer"]["learning_rate"] == 0.01


@pytest.mark.slow
def test_classification_monitors_accuracy(tmp_path):
    proc = run_cli(["model_name=c1", "data=synth_c", "arch=tcn", "trainer=classification",
                    "data.limit=5", "trainer.max_epochs=1", "arch.num_filters=8",
                    "arch.depth=2"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model_dir = tmp_path / "outputs/models/c1"
    ckpt = checkpoints(model_dir)
    assert len(ckpt) == 1 and "valid_perf_accuracy=" in ckpt[0].name
    args = yaml.safe_load((model_dir / "model_args.yaml").read_text())
    assert args["checkpoint"] == {"monitor": "valid_perf_accuracy", "mode": "max"}
    assert args["data_dynamics"]["class_set"] == [0, 1]


@pytest.mark.parametrize("override, key", [
    ("data.name=nope", "data.name"),
    ("arch.dropout=1.5", "arch.dropout"),
    ("data.split_portions=[0.5,0.2,0.2]", "data.split_portions"),
    ("trainer.max_epochs=0", "trainer.max_epochs"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, override, key):
    proc = run_cli(["model_name=bad", override], cwd=tmp_path)
    assert proc.returncode == 2
    out = proc.stdout + proc.stderr
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and key in errors[0], out
    assert "Traceback" not in out
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("override,line", [
    ("arch.dropuot=0.1", "error: arch.dropuot: Key 'dropuot' not in 'MLPConfig'; see the keys"),
    ("data.batch_size=many", "error: data.batch_size: Value 'many' of type 'str' could not be "
                             "converted to Integer"),
    ("arch=mpl", "error: arch: no option 'mpl'; available: cnn, custom, lstm, mlp, tcn"),
    ("hydra.sweeper.cuont=2", "error: hydra.sweeper.cuont: Key 'cuont' not in"),
    ("trainer.learning_rate=[1", "error: trainer.learning_rate=[1: cannot parse this override"),
    ("data.in_components=[température]", "error: data.in_components=[température]: cannot "
                                         "parse this override"),
])
def test_what_hydra_refuses_is_one_line_too(tmp_path, override, line):
    """A misspelt key, a wrong type, an unknown group option or an unparsable override: Hydra
    refuses them while composing, before the app runs; the app still says so in one line,
    exit status 2, and nothing is written."""
    proc = run_cli(["model_name=x", override], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith(line), proc.stderr
    if not override.isascii():  # Hydra reads unquoted ASCII only: the line says to quote
        assert "quote a value" in proc.stderr, proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_hydra_full_error_still_gets_hydras_own_report(tmp_path):
    """A user's HYDRA_FULL_ERROR=1 (Hydra's switch for the whole traceback) is honoured."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "knowit_app", "model_name=x",
                           "arch.dropuot=0.1"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigCompositionException" in proc.stderr


def test_wrong_type_fails_at_composition(tmp_path):
    proc = run_cli(["data.batch_size=many"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "data.batch_size" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_help_lists_user_options_and_composes_overrides(tmp_path):
    """--help shows the groups a user picks from (not the schema bases) and the config as the
    given overrides make it; a bad override is one line and exit 2."""
    proc = run_cli(["--help", "arch=cnn", "data.batch_size=128"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    arch_line = next(ln for ln in text.splitlines() if ln.startswith("  arch: "))
    assert {"cnn", "lstm", "mlp", "tcn"} <= set(arch_line[8:].split(", "))
    assert "base_" not in text
    assert "hydra/launcher: local_slurm, slurm" in text
    config = yaml.safe_load(text.split("add a new one with +key=value.\n", 1)[1])
    assert config["arch"]["name"] == "CNN" and config["data"]["batch_size"] == 128
    bad = run_cli(["--help", "arch=nope"], cwd=tmp_path)
    assert bad.returncode == 2 and "arch/nope" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
