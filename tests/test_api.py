"""The KnowIt-compatible Python API: tutorial dicts, same core as the app, results on disk."""

from __future__ import annotations

import csv
import warnings

import pytest
from helpers import checkpoints, snapshot

from knowit_app import KnowIt, load_trained_model
from knowit_app.config.checks import available_accelerators
from knowit_app.errors import ConfigError, ModelExistsError


def tutorial_kwargs(batch_size=64, dropout=0.2, learning_rate=0.001):
    """The KnowIt W&B sweep tutorial's runner dicts, verbatim (its HPs as arguments)."""
    data_args = {'name': 'synth_2',
                 'task': 'regression',
                 'in_components': ['x1', 'x2', 'x3', 'x4'],
                 'out_components': ['x5'],
                 'in_chunk': [-32, 0],
                 'out_chunk': [0, 0],
                 'split_portions': [0.6, 0.2, 0.2],
                 'batch_size': batch_size,
                 'split_method': 'instance-random',
                 'scaling_tag': 'full',
                 'rescale_logged_output_metrics': False}
    arch_args = {'task': 'regression',
                 'name': 'MLP',
                 'arch_hps': {'dropout': dropout}}
    trainer_args = {'loss_fn': 'mse_loss',
                    'optim': 'Adam',
                    'max_epochs': 5,
                    'learning_rate': learning_rate,
                    'task': 'regression'}
    return {'data': data_args, 'arch': arch_args, 'trainer': trainer_args}


def small(kwargs, epochs=1):
    """Shrink a tutorial run for a test: 5 instances, a narrow MLP, few epochs."""
    kwargs['data']['limit'] = 5
    kwargs['arch']['arch_hps']['width'] = 32
    kwargs['trainer']['max_epochs'] = epochs
    return kwargs


def test_tutorial_dicts_compose_to_the_app_defaults(tmp_path):
    ki = KnowIt(tmp_path / "exp")
    with pytest.warns(UserWarning, match="rescale_logged_output_metrics"):
        cfg = ki.config_for("some_model", tutorial_kwargs(dropout=0.2))
    assert cfg.arch.name == "MLP" and cfg.arch.dropout == 0.2
    assert cfg.data.split_portions == [0.6, 0.2, 0.2] and cfg.data.scaling_tag == "full"
    assert cfg.trainer.learning_rate == 0.001 and cfg.trainer.max_epochs == 5
    assert cfg.trainer.task == "regression"
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_train_model_writes_the_model_dir(tmp_path):
    ki = KnowIt(tmp_path / "exp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ki.train_model("api_model", small(tutorial_kwargs()))
    model_dir = tmp_path / "exp/models/api_model"
    assert len(checkpoints(model_dir)) == 1
    assert (model_dir / "model_args.yaml").is_file()
    assert (model_dir / "lightning_logs/version_0/metrics.csv").is_file()
    assert result.state == "finished" and result.monitor == "valid_loss"
    # The rebuilt model reproduces the checkpoint's valid_loss over the whole valid set.
    trained = load_trained_model(model_dir)
    assert trained.score("valid") == pytest.approx(result.best_score, rel=1e-4)
    # Same name again: refused, nothing changed.
    before = snapshot(model_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelExistsError, match="model_name"):
            ki.train_model("api_model", small(tutorial_kwargs()))
    assert snapshot(model_dir) == before
    # KnowIt's safe_mode=False lets the same name replace it, trained on the device asked for.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ki.train_model("api_model", small(tutorial_kwargs()), safe_mode=False, device="cpu")
    assert not [w for w in caught if "has no effect" in str(w.message)]
    assert snapshot(model_dir) != before and len(checkpoints(model_dir)) == 1


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(tmp_path):
    def metrics(exp):
        kwargs = small(tutorial_kwargs(), epochs=2)
        kwargs['trainer']['seed'] = 7
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            KnowIt(tmp_path / exp).train_model("m", kwargs)
        return (tmp_path / exp / "models/m/lightning_logs/version_0/metrics.csv").read_text()

    first, second = metrics("a"), metrics("b")
    assert first == second
    rows = list(csv.DictReader(first.splitlines()))
    assert any(r["valid_loss"] for r in rows)


@pytest.mark.slow
def test_sweep_kwargs_write_into_the_sweep_layout(tmp_path):
    ki = KnowIt(tmp_path / "exp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ki.train_model("swept", small(tutorial_kwargs()),
                       sweep_kwargs={"sweep_name": "my_sweep", "log_to_local": True,
                                     "run_name": "batch_size_64-dropout_0.2-learning_rate_0.001"})
    run_dir = (tmp_path / "exp/models/swept/sweeps/my_sweep"
               / "batch_size_64-dropout_0.2-learning_rate_0.001")
    assert len(checkpoints(run_dir)) == 1 and (run_dir / "model_args.yaml").is_file()


@pytest.mark.parametrize("section, key, value, error_key", [
    ("data", "in_components", ["x1", "nope"], "data.in_components"),
    ("data", "split_method", "sideways", "data.split_method"),
    ("data", "colour", "red", "data.colour"),
    ("trainer", "optim", "Adamm", "trainer.optim"),
    ("trainer", "loss_fn", "mse", "trainer.loss_fn"),
    ("trainer", "learning_rate", -1.0, "trainer.learning_rate"),
    ("arch", "name", "Transformer", "arch.name"),
])
def test_bad_kwargs_name_the_key_and_write_nothing(tmp_path, section, key, value, error_key):
    kwargs = small(tutorial_kwargs())
    kwargs[section][key] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError) as info:
            KnowIt(tmp_path / "exp").train_model("m", kwargs)
    assert info.value.key == error_key
    assert "\n" not in str(info.value)
    assert not (tmp_path / "exp").exists()


def test_global_device_is_checked_and_used_by_later_trainings(tmp_path, monkeypatch):
    """KnowIt's ``global_args(device=...)``: a bad name is refused at once; the device becomes
    the accelerator of later trainings unless the call or the kwargs name one."""
    import knowit_app.training.run as run_module

    class Planned(Exception):
        """Raised by the stand-in planner: the config reached training, nothing was trained."""

    def capture(cfg):
        raise Planned(cfg.trainer.accelerator)

    monkeypatch.setattr(run_module, "plan_training", capture)

    def accelerator(ki, kwargs=None, **call):
        with pytest.raises(Planned) as info:
            ki.train_model("m", kwargs or small(tutorial_kwargs()), **call)
        return str(info.value)

    ki = KnowIt(tmp_path / "exp")
    assert ki.global_args()["global_device"] == "cpu"
    with pytest.raises(ConfigError) as info:
        ki.global_args(device="tpu")
    assert info.value.key == "device" and "cpu, gpu, cuda, mps" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert accelerator(ki) == "cpu"  # the trainer config's
        assert ki.global_args(device="cpu")["global_device"] == "cpu"
        assert accelerator(ki) == "cpu"
        given = small(tutorial_kwargs())
        given["trainer"]["accelerator"] = "auto"
        assert accelerator(ki, given) == "auto"  # the kwargs name one: the global yields
        assert accelerator(ki, given, device="cpu") == "cpu"  # the call's own wins
    assert not (tmp_path / "exp" / "models").exists()


def test_a_calls_own_safe_mode_decides_whether_a_model_may_be_replaced(tmp_path, monkeypatch):
    import knowit_app.training.run as run_module

    class Planned(Exception):
        pass

    def capture(cfg):
        raise Planned(cfg.overwrite)

    monkeypatch.setattr(run_module, "plan_training", capture)

    def overwrites(ki, **call):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(Planned) as info:
                ki.train_model("m", small(tutorial_kwargs()), **call)
        return info.value.args[0]

    assert overwrites(KnowIt(tmp_path)) is False
    assert overwrites(KnowIt(tmp_path, safe_mode=False)) is True
    assert overwrites(KnowIt(tmp_path), safe_mode=False) is True
    assert overwrites(KnowIt(tmp_path, overwrite=True)) is True
    assert overwrites(KnowIt(tmp_path, overwrite=True), safe_mode=True) is False


def test_a_device_this_machine_lacks_is_refused_before_any_work(tmp_path):
    if {"cuda", "mps"} & set(available_accelerators()):
        pytest.skip("this machine has a GPU: the refusal cannot happen here")
    ki = KnowIt(tmp_path / "exp")
    ki.global_args(device="gpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call in ({}, {"device": "cuda"}):
            with pytest.raises(ConfigError) as info:
                ki.train_model("m", small(tutorial_kwargs()), **call)
            device = call.get("device", "gpu")
            assert str(info.value) == f"device: {device!r} is not available on this machine; " \
                "available here: cpu"
    assert not (tmp_path / "exp").exists()


def test_tasks_that_disagree_are_refused(tmp_path):
    kwargs = tutorial_kwargs()
    kwargs['arch']['task'] = 'classification'
    with pytest.raises(ConfigError, match="disagree"):
        KnowIt(tmp_path).config_for("m", kwargs)
