"""Trainer features and up-front validation, in process through the same core as the app."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import checkpoints

from knowit_app.api import compose_config
from knowit_app.data.importer import import_dataset
from knowit_app.errors import ConfigError
from knowit_app.training.run import execute, plan_training

FAST = ["data.limit=5", "arch.width=32", "trainer.max_epochs=2"]


def cfg_for(tmp_path, *overrides):
    return compose_config([f"exp_dir={tmp_path / 'exp'}", *FAST, *overrides])


def metrics_rows(out_dir):
    with open(out_dir / "lightning_logs/version_0/metrics.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_metrics_scheduler_clipping_and_early_stopping(tmp_path):
    cfg = cfg_for(tmp_path, "trainer.max_epochs=6",
                  "trainer.performance_metrics=[mean_absolute_error,r2_score]",
                  "trainer.lr_scheduler=StepLR", "+trainer.lr_scheduler_kwargs.step_size=1",
                  "trainer.gradient_clip_val=0.5",
                  "trainer.early_stopping=true",
                  "+trainer.early_stopping_args={patience:1,min_delta:100.0}")
    plan = plan_training(cfg)
    # The first metric is monitored; MAE is better when lower.
    assert (plan.monitor, plan.mode) == ("valid_perf_mean_absolute_error", "min")
    out = tmp_path / "run"
    result = execute(plan, out)
    rows = metrics_rows(out)
    epochs = {int(r["epoch"]) for r in rows if r.get("valid_loss")}
    assert epochs == {0, 1}, "early stopping should end the run after two epochs"
    assert result.epochs == 2
    cols = set(rows[0])
    for name in ("valid_perf_mean_absolute_error", "train_perf_r2_score", "valid_perf_r2_score"):
        assert name in cols
    assert "valid_perf_mean_absolute_error=" in checkpoints(out)[0].name


class _Recorder:
    """A Lightning callback keeping the learning rate per epoch and the largest gradient."""

    def __new__(cls):
        import lightning as L

        class Recorder(L.Callback):
            def __init__(self):
                self.lrs, self.max_grads = [], []

            def on_train_epoch_start(self, trainer, pl_module):
                self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

            def on_before_optimizer_step(self, trainer, pl_module, optimizer):
                self.max_grads.append(max(float(p.grad.abs().max())
                                          for p in pl_module.parameters() if p.grad is not None))

        return Recorder()


@pytest.mark.slow
@pytest.mark.parametrize("clip", [None, 1e-4])
def test_gradient_clipping_bounds_every_step(tmp_path, clip):
    """trainer.gradient_clip_val (algorithm value) caps every gradient the optimizer sees."""
    cfg = cfg_for(tmp_path, "trainer.max_epochs=1", "trainer.optim=SGD",
                  f"trainer.gradient_clip_val={'null' if clip is None else clip}",
                  "trainer.gradient_clip_algorithm=value")
    recorder = _Recorder()
    execute(plan_training(cfg), tmp_path / "run", callbacks=[recorder])
    assert recorder.max_grads, "the optimizer never stepped"
    if clip is None:
        assert max(recorder.max_grads) > 1e-4, "unclipped gradients should exceed the cap"
    else:
        assert max(recorder.max_grads) <= clip * (1 + 1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler, kwargs, factors", [
    ("StepLR", "{step_size:1,gamma:0.5}", [1, 0.5, 0.25]),
    # never "improves" (threshold 1e9): the plateau scheduler halves the rate from epoch 2 on
    ("ReduceLROnPlateau", "{patience:0,factor:0.5,threshold:1e9,threshold_mode:abs}",
     [1, 1, 0.5]),
])
def test_lr_scheduler_steps_once_per_epoch(tmp_path, scheduler, kwargs, factors):
    cfg = cfg_for(tmp_path, "trainer.max_epochs=3", "trainer.learning_rate=0.01",
                  f"trainer.lr_scheduler={scheduler}", f"+trainer.lr_scheduler_kwargs={kwargs}")
    recorder = _Recorder()
    execute(plan_training(cfg), tmp_path / "run", callbacks=[recorder])
    assert recorder.lrs == pytest.approx([0.01 * f for f in factors])


@pytest.mark.slow
def test_epoch_metric_is_over_the_whole_epoch(tmp_path):
    """valid_perf_mean_absolute_error equals the MAE over the whole valid split."""
    import torch

    from knowit_app.data.prepared import make_dataloader
    from knowit_app.evaluation.trained_model import load_trained_model

    cfg = cfg_for(tmp_path, "trainer.max_epochs=1",
                  "trainer.performance_metrics=[mean_absolute_error]", "trainer.monitor=valid_loss")
    plan = plan_training(cfg)
    out = tmp_path / "run"
    execute(plan, out)
    logged = float(next(r for r in metrics_rows(out) if r.get("valid_perf_mean_absolute_error"))
                   ["valid_perf_mean_absolute_error"])
    model = load_trained_model(out)
    errors = []
    with torch.no_grad():
        for x, y in make_dataloader(plan.prepared, "valid", 97, False, 0):
            errors.append((model.network(x) - y).abs().reshape(-1))
    assert logged == pytest.approx(float(torch.cat(errors).mean()), rel=1e-4)


def _single_class_dataset(exp_dir):
    times = pd.date_range("2024-01-01", periods=400, freq="1s")
    frame = pd.DataFrame({"time": times, "a": np.sin(np.arange(400) / 5.0),
                          "label": np.ones(400)})
    frame["instance"] = np.repeat(["i0", "i1", "i2", "i3"], 100)
    import_dataset(frame, "mono", exp_dir, time_column="time", instance_column="instance")


@pytest.mark.parametrize("overrides, key", [
    (["data.name=no_such_data"], "data.name"),
    (["data.in_components=[x1,x9]"], "data.in_components"),
    (["data.out_components=[zz]"], "data.out_components"),
    (["data.in_chunk=[-20000,0]"], "data.in_chunk"),
    (["data.in_chunk=[3,1]"], "data.in_chunk"),
    (["data.split_portions=[0.7,0.2,0.2]"], "data.split_portions"),
    (["data.limit=1"], "data.split_portions"),  # 1 instance: train floor(0.6) = 0
    (["data.batch_size=0"], "data.batch_size"),
    (["data.split_method=sideways"], "data.split_method"),
    (["data.scaling_tag=most"], "data.scaling_tag"),
    (["arch.dropout=1.0"], "arch.dropout"),
    (["arch.dropout=-0.1"], "arch.dropout"),
    (["arch.depth=0"], "arch.depth"),
    (["trainer.max_epochs=0"], "trainer.max_epochs"),
    (["trainer.learning_rate=0"], "trainer.learning_rate"),
    (["trainer.optim=Adamm"], "trainer.optim"),
    (["trainer.loss_fn=mse"], "trainer.loss_fn"),
    (["trainer.performance_metrics=[nonsense_metric]"], "trainer.performance_metrics"),
    (["trainer.monitor=valid_acc"], "trainer.monitor"),
    (["trainer.task=forecasting"], "trainer.task"),
    (["trainer.precision=12"], "trainer.precision"),
    (["trainer.early_stopping=true", "+trainer.early_stopping_args.patients=3"],
     "trainer.early_stopping_args"),
])
def test_bad_values_raise_one_line_errors_naming_the_key(tmp_path, overrides, key):
    cfg = cfg_for(tmp_path, *overrides)
    with pytest.raises(ConfigError) as info:
        plan_training(cfg)
    assert info.value.key == key, str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "exp").exists()


def test_single_class_target_is_refused(tmp_path):
    _single_class_dataset(tmp_path / "exp")
    cfg = cfg_for(tmp_path, "data.name=mono", "data.in_components=[a]",
                  "data.out_components=[label]", "trainer=classification", "data.limit=null",
                  "data.in_chunk=[-4,0]", "data.scaling_tag=null")
    with pytest.raises(ConfigError) as info:
        plan_training(cfg)
    assert info.value.key == "data.out_components" and "class" in str(info.value)


def test_imported_dataset_trains(tmp_path):
    exp = tmp_path / "exp"
    times = pd.date_range("2024-01-01", periods=600, freq="1s")
    rng = np.random.default_rng(0)
    a = rng.normal(size=600).cumsum()
    frame = pd.DataFrame({"a": a, "b": np.roll(a, 1)}, index=times)
    path = tmp_path / "mine.parquet"
    frame.to_parquet(path)
    import_dataset(path, "mine", exp)
    cfg = cfg_for(tmp_path, "data.name=mine", "data.in_components=[a]",
                  "data.out_components=[b]", "data.in_chunk=[-8,0]",
                  "data.split_method=chronological", "data.limit=null")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = execute(plan_training(cfg), tmp_path / "run")
    assert result.state == "finished" and np.isfinite(result.best_score)


def test_lightning_options_pass_through(tmp_path):
    """Precision, accelerator and devices reach Lightning's Trainer as given (precision and
    devices are not the defaults, so a value dropped on the way would show)."""
    from lightning.pytorch.accelerators import CPUAccelerator

    from knowit_app.config.checks import devices_value
    from knowit_app.training.trainer import build_trainer

    cfg = cfg_for(tmp_path, "trainer.accelerator=cpu", "trainer.precision=bf16-mixed",
                  "trainer.devices=1")
    trainer, checkpoint = build_trainer(cfg.trainer, tmp_path / "out", "valid_loss", "max",
                                        devices_value(cfg.trainer.devices))
    assert trainer.precision == "bf16-mixed"
    assert isinstance(trainer.accelerator, CPUAccelerator)
    assert trainer.num_devices == 1
    assert checkpoint.monitor == "valid_loss" and checkpoint.mode == "max"


@pytest.mark.slow
def test_bf16_autocast_trains_on_cpu(tmp_path):
    cfg = cfg_for(tmp_path, "trainer.accelerator=auto", "trainer.precision=bf16-mixed",
                  "trainer.max_epochs=1")
    result = execute(plan_training(cfg), tmp_path / "run")
    assert result.state == "finished" and np.isfinite(result.best_score)
