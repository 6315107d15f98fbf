"""Hostile input to the command line and the config: one line naming the key, nothing written.

Each test is a class of bad input a user met: unsafe names and unusable experiment directories
(refused before Hydra creates its run dir), NaN/inf numbers, an accelerator the machine lacks,
keys the sweeper owns, settings that run but defeat themselves (target leakage, maximizing a
loss), errors that blamed the wrong key or counted epochs differently from the log.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import QUICK, run_cli

from knowit_app.api import compose_config
from knowit_app.config.checks import (
    available_accelerators,
    check_accelerator_available,
    validate_app,
)
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import check_name
from knowit_app.sweeps.grammar import parameters_from_overrides
from knowit_app.sweeps.spec import load_spec

LOSS_SWEEP = {"method": "grid", "parameters": {"arch.dropout": {"values": [0.1, 0.2]}}}


def tree(directory: Path) -> set[str]:
    """Every path under ``directory``, folders included: an empty folder is a leftover too."""
    return {str(p.relative_to(directory)) for p in Path(directory).rglob("*")}


def one_error_line(stderr: str, key: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}:"), stderr[-2000:]


def missing_accelerator() -> str:
    here = set(available_accelerators())
    return "gpu" if not {"cuda", "mps"} & here else "tpu"


def plan(*overrides: str):
    from knowit_app.training.run import plan_training

    return plan_training(compose_config([*QUICK, *overrides]))


# --------------------------------------------------------------- refused before anything exists

@pytest.mark.slow
@pytest.mark.parametrize(("args", "key"), [
    (["model_name=../../../../outside", "exp_dir=a/b"], "model_name"),
    (["model_name=../../escape", "exp_dir=exp"], "model_name"),
    (["model_name=a/b", "exp_dir=exp"], "model_name"),
    (["model_name=.hidden", "exp_dir=exp"], "model_name"),
    (["exp_dir=afile"], "exp_dir"),
    (["exp_dir=afile/below"], "exp_dir"),
    (["exp_dir=exp", "trainer.learning_rate=nan"], "trainer.learning_rate"),
    (["exp_dir=exp", f"trainer.accelerator={missing_accelerator()}"], "trainer.accelerator"),
    (["-m", "exp_dir=exp", "sweep.name=../../x", "arch.dropout=0.1,0.2"], "sweep.name"),
    (["-m", "exp_dir=exp", "wandb.project=a,b"], "wandb.project"),
    (["exp_dir="], "exp_dir"),
    (["exp_dir=loop"], "exp_dir"),
    (["exp_dir=exp", "trainer.devices=2"], "trainer.devices"),
    (["exp_dir=exp", "+trainer.optim_kwargs.bogus=1"], "trainer.optim_kwargs"),
    (["-m", "exp_dir=exp", "data.seed=-1,5"], "data.seed"),
    (["-m", "exp_dir=exp", f"model_name={'m' * 200}", "arch.dropout=0.1,0.2"], "model_name"),
])
def test_bad_start_is_one_line_exit_2_and_writes_nothing(tmp_path, args, key):
    work = tmp_path / "work"
    (work / "exp").mkdir(parents=True)
    (work / "afile").write_text("not a directory\n")
    (work / "loop").symlink_to(work / "loop")  # a symlink to itself
    before = tree(tmp_path)
    proc = run_cli([*args, *QUICK], cwd=work)
    assert proc.returncode == 2, proc.stderr[-2000:]
    one_error_line(proc.stderr, key)
    assert tree(tmp_path) == before


def without_write_permission(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the app as a user that chmod binds: root with its DAC capabilities dropped."""
    command = [sys.executable, "-m", "knowit_app", *args, *QUICK]
    if os.geteuid() != 0:
        return run_cli(args + QUICK, cwd=cwd)
    if shutil.which("capsh") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("capsh is needed to test permissions as root")
        pytest.skip("running as root (chmod is ignored) and capsh is not installed")
    drop = "--drop=cap_dac_override,cap_dac_read_search,cap_fowner"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(["capsh", drop, "--", "-c", 'exec "$0" "$@"', *command], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize(("args", "read_only"), [
    (["exp_dir=exp"], "exp"),
    (["exp_dir=exp/new/deeper"], "exp"),
    (["exp_dir=exp"], "exp/models"),
    (["-m", "exp_dir=exp", "model_name=m", "sweep.name=s", "arch.dropout=0.1,0.2"],
     "exp/models/m/sweeps/s"),
])
def test_no_write_permission_is_one_line(tmp_path, args, read_only):
    work = tmp_path / "work"
    (work / read_only).mkdir(parents=True)
    (work / read_only).chmod(0o555)
    before = tree(tmp_path)
    try:
        proc = without_write_permission(args, work)
    finally:
        (work / read_only).chmod(0o755)
    assert proc.returncode == 2, proc.stderr[-2000:]
    one_error_line(proc.stderr, "exp_dir")
    assert "no permission to write in" in proc.stderr and read_only in proc.stderr
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------------- numbers

@pytest.mark.parametrize(("override", "key"), [
    ("trainer.learning_rate=nan", "trainer.learning_rate"),
    ("trainer.learning_rate=inf", "trainer.learning_rate"),
    ("arch.dropout=nan", "arch.dropout"),
    ("trainer.gradient_clip_val=-inf", "trainer.gradient_clip_val"),
    ("data.split_portions=[0.8,0.1,nan]", "data.split_portions[2]"),
    ("+trainer.optim_kwargs.weight_decay=nan", "trainer.optim_kwargs.weight_decay"),
])
def test_nan_and_inf_refused_for_every_float_key(override, key):
    with pytest.raises(ConfigError) as info:
        validate_app(compose_config([override]))
    assert info.value.key == key and "finite" in str(info.value)


def test_nan_learning_rate_refused_when_planning():
    with pytest.raises(ConfigError, match=r"^trainer\.learning_rate: must be a finite"):
        plan("trainer.learning_rate=nan")


def test_nan_and_inf_refused_in_sweeps():
    app_cfg = compose_config([])
    nan_values = {"method": "grid", "parameters": {"arch.dropout": {"values": [0.1, "nan"]}}}
    nan_values["parameters"]["arch.dropout"]["values"][1] = float("nan")
    with pytest.raises(ConfigError, match=r"arch\.dropout.*finite"):
        load_spec(nan_values, app_cfg, default_name="s")
    params, _ = parameters_from_overrides(["trainer.learning_rate=interval(0.001,inf)"],
                                          "random")
    with pytest.raises(ConfigError, match="finite"):
        load_spec({"method": "random"}, app_cfg, default_name="s", extra_parameters=params)
    with pytest.raises(ConfigError, match=r"sweep\.metric\.target.*finite"):
        load_spec({**LOSS_SWEEP, "metric": {"name": "valid_loss", "target": float("inf")}},
                  app_cfg, default_name="s")


# ----------------------------------------------------- values that only fail inside torch

@pytest.mark.parametrize(("override", "key"), [
    ("data.seed=-1", "data.seed"),
    ("data.seed=4294967296", "data.seed"),
    ("trainer.seed=-1", "trainer.seed"),
])
def test_seeds_outside_what_numpy_and_lightning_take_are_refused(override, key):
    with pytest.raises(ConfigError) as info:
        plan(override)
    assert info.value.key == key and "4294967295" in str(info.value)


@pytest.mark.parametrize(("overrides", "key", "says"), [
    (["+trainer.optim_kwargs.bogus=1"], "trainer.optim_kwargs", "bogus"),
    (["+trainer.optim_kwargs.betas=[0.9]"], "trainer.optim_kwargs", "betas"),
    (["+trainer.loss_kwargs.reduction=none"], "trainer.loss_kwargs", "one number per batch"),
    (["trainer.optim=SparseAdam"], "trainer.optim", "dense gradients"),
    pytest.param(["trainer.optim=Muon"], "trainer.optim", "2D parameters",
                 marks=pytest.mark.skipif(not hasattr(__import__("torch").optim, "Muon"),
                                          reason="torch.optim.Muon is new in torch 2.9")),
])
def test_optimizer_and_loss_settings_that_cannot_train_are_refused_when_planning(
        overrides, key, says):
    """One optimizer step on two training points at planning: a torch error from inside
    Lightning becomes one line naming the key, before any run directory exists."""
    with pytest.raises(ConfigError) as info:
        plan(*overrides)
    assert info.value.key == key and says in str(info.value)


def test_one_device_id_is_accepted_and_reaches_lightning_as_an_id():
    from knowit_app.config.checks import devices_value

    assert devices_value("auto") == devices_value("1") == 1
    assert devices_value("1,") == [1]


@pytest.mark.parametrize("devices", ["2", "'0,1'", "-1"])
def test_more_than_one_device_is_refused(devices):
    with pytest.raises(ConfigError) as info:
        plan(f"trainer.devices={devices}")
    assert info.value.key == "trainer.devices" and "one device" in str(info.value)


def test_a_continuous_column_is_refused_as_classes():
    with pytest.raises(ConfigError) as info:
        plan("trainer=classification", "data.scaling_tag=in_only")
    assert info.value.key == "data.out_components" and "continuous" in str(info.value)


def test_names_too_long_say_the_limit_and_blame_the_key_the_user_gave():
    with pytest.raises(ConfigError, match=r"^model_name: 201 characters is too long.*200"):
        check_name("model_name", "m" * 201)
    with pytest.raises(ConfigError, match=r"^model_name: too long for the sweep's default"):
        load_spec(LOSS_SWEEP, compose_config([]), default_name=f"{'m' * 200}-20261202-005909")


def test_a_non_positive_stale_time_is_refused():
    from hydra_plugins.knowit_wandb_sweeper.config import WandbSweeperConf
    from knowit_app.sweeps.plan import check_options

    with pytest.raises(ConfigError, match=r"^hydra\.sweeper\.stale_after_min: must be a posi"):
        check_options(WandbSweeperConf(parallel=1, stale_after_min=-5))


@pytest.mark.slow
def test_ctrl_c_says_interrupted_exits_130_and_publishes_nothing(tmp_path):
    import signal

    from polling import wait_until

    log_file = tmp_path / "out.txt"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    with log_file.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "knowit_app", "model_name=m",
                                 f"exp_dir={tmp_path / 'exp'}", *QUICK, "trainer.max_epochs=500"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: "epoch 1/500" in log_file.read_text(), 300, "the first epoch",
                       lambda: "the training ended" if proc.poll() is not None else None)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=120) == 130, log_file.read_text()[-2000:]
        finally:
            proc.kill()
    errors = [line for line in log_file.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "training interrupted" in errors[0], errors
    assert "Traceback" not in log_file.read_text()
    assert not (tmp_path / "exp" / "models" / "m").exists()
    assert list((tmp_path / "exp" / "models" / ".staging").iterdir())  # kept, as it says


# ----------------------------------------------------------------------------- accelerator

def test_missing_accelerator_named_with_those_the_machine_has():
    wanted = missing_accelerator()
    with pytest.raises(ConfigError) as info:
        check_accelerator_available(wanted)
    assert info.value.key == "trainer.accelerator"
    assert f"available here: auto, {', '.join(available_accelerators())}" in str(info.value)
    check_accelerator_available("cpu")


# ------------------------------------------------------------------------- sweeper's keys

@pytest.mark.parametrize("key", ["wandb.project", "wandb.entity", "wandb.group", "wandb.dir",
                                 "wandb.mode", "model_name", "exp_dir", "hydra.job.name"])
def test_keys_the_sweep_owns_cannot_be_swept(key):
    with pytest.raises(ConfigError, match="cannot be swept"):
        load_spec({"method": "grid", "parameters": {key: {"values": ["a", "b"]}}},
                  compose_config([]), default_name="s")


def test_wandb_keys_refused_on_the_sweep_command_line():
    for override in ("wandb.project=a,b", "wandb.project=mine", "wandb.entity=me"):
        with pytest.raises(ConfigError, match="set by the sweeper"):
            parameters_from_overrides([override], "grid")


# ------------------------------------------------------------- runs, but defeats itself

def test_target_leakage_warns_once(caplog):
    leaky = ["data.in_components=[x1,x5]", "data.out_components=[x5]"]
    with caplog.at_level(logging.WARNING, logger="knowit_app"):
        plan(*leaky)
    warned = [r.getMessage() for r in caplog.records if "sees the values it predicts" in
              r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("data.out_components: x5")
    assert "\n" not in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="knowit_app"):
        validate_app(compose_config([*leaky, "data.in_chunk=[-32,-1]"]))
        validate_app(compose_config(["data.in_components=[x1,x2]"]))
    assert not [r for r in caplog.records if "predicts" in r.getMessage()]


def test_maximizing_a_loss_warns(caplog):
    app_cfg = compose_config(["trainer.performance_metrics=[mean_squared_error]"])
    with caplog.at_level(logging.WARNING, logger="knowit_app"):
        load_spec({**LOSS_SWEEP, "metric": {"name": "valid_loss", "goal": "maximize"}},
                  app_cfg, default_name="s")
    assert [r.getMessage() for r in caplog.records] == [
        "sweep.metric.goal: maximize on valid_loss keeps the worst model (a loss is better "
        "when lower); use minimize"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="knowit_app"):
        load_spec({**LOSS_SWEEP, "metric": {"name": "valid_loss", "goal": "minimize"}},
                  app_cfg, default_name="s")
        validate_app(compose_config(["trainer.ckpt_mode=max"]))
    assert [r.getMessage()[:31] for r in caplog.records] == ["trainer.ckpt_mode: max on valid"]


# ------------------------------------------------------------------ the key at fault

def test_chunk_that_leaves_no_point_is_named():
    with pytest.raises(ConfigError, match=r"^data\.out_chunk: no prediction points"):
        plan("data.out_chunk=[0,100000]")
    with pytest.raises(ConfigError, match=r"^data\.in_chunk: no prediction points"):
        plan("data.in_chunk=[-300000,0]")
    with pytest.raises(ConfigError, match=r"^data\.min_slice: no prediction points"):
        plan("data.min_slice=100000000")


def test_divergence_counts_epochs_as_the_log_does(tmp_path, caplog):
    from helpers import train_in_process

    with caplog.at_level(logging.INFO, logger="knowit_app"), pytest.raises(Exception) as info:
        train_in_process(tmp_path, "diverged", "trainer.optim=SGD",
                         "trainer.learning_rate=1e30")
    message = str(info.value)
    assert "epoch 1" in message and "epoch 0" not in message, message
