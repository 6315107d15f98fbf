"""Architectures: shapes, learning, hyperparameter contract, validation messages, import cost."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.nn import functional as F

from knowit_app import archs
from knowit_app.archs import ARCH_NAMES, build_model, get_arch, hp_defaults, hp_ranges
from knowit_app.config.schema import ARCH_SCHEMAS
from knowit_app.errors import ConfigError

TASKS = ("regression", "classification")


def _model(name: str, task: str, in_shape=(12, 3), out_shape=(2, 3), **hps):
    out_shape = (1, 1) if task == "classification" else out_shape
    num_classes = 4 if task == "classification" else None
    return build_model({"name": name, **hps}, in_shape, out_shape, task, num_classes)


# ------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", ARCH_NAMES)
def test_forward_shapes_any_batch_and_mode(name: str, task: str) -> None:
    torch.manual_seed(0)
    model = _model(name, task)
    expected = (4,) if task == "classification" else (2, 3)
    for mode in ("train", "eval"):
        getattr(model, mode)()
        for batch in (1, 8):
            out = model(torch.randn(batch, 12, 3))
            assert out.shape == (batch, *expected), (mode, batch)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_one_step_window(name: str) -> None:
    """in_chunk [0, 0]: a single input step, batch of one, still trains and predicts."""
    model = _model(name, "regression", in_shape=(1, 4), out_shape=(1, 1))
    model.train()
    model(torch.randn(1, 1, 4)).sum().backward()
    model.eval()
    assert model(torch.randn(1, 1, 4)).shape == (1, 1, 1)


def _toy(task: str, n: int = 64, steps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets that depend on the last two steps of both components: every arch can learn it."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, steps, 2, generator=gen)
    signal = x[:, -1, 0] - 0.7 * x[:, -2, 1]
    if task == "classification":
        return x, (signal > -0.5).long() + (signal > 0.5).long()
    return x, signal.reshape(n, 1, 1)


# Small enough for a few hundred steps in about a second on one CPU thread; the rest default.
_SMALL = {
    "MLP": {"width": 32},
    "CNN": {"num_filters": 16, "depth": 2},
    "TCN": {"num_filters": 16, "depth": 2},
    "LSTM": {"width": 16},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and a busy machine does not slow them down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", ARCH_NAMES)
def test_small_models_learn_a_toy_problem(name: str, task: str) -> None:
    torch.manual_seed(0)
    x, y = _toy(task)
    classify = task == "classification"
    loss_fn = F.cross_entropy if classify else F.mse_loss
    hps = {"name": name, **_SMALL[name]}
    model = build_model(hps, (8, 2), (1, 1), task, 3 if classify else None)
    optim = torch.optim.Adam(model.parameters(), lr=5e-3)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(loss_fn(model(x), y))

    before = eval_loss()
    model.train()
    for _ in range(150):
        optim.zero_grad()
        loss_fn(model(x), y).backward()
        optim.step()
    after = eval_loss()
    assert after < 0.3 * before, (before, after)


# ---------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_hp_defaults_are_the_schema_defaults(name: str) -> None:
    schema_defaults = dataclasses.asdict(ARCH_SCHEMAS[name.lower()]())
    assert schema_defaults.pop("name") == name
    assert hp_defaults(name) == schema_defaults


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_every_hyperparameter_has_a_valid_wandb_range_holding_its_default(name: str) -> None:
    defaults, ranges = hp_defaults(name), hp_ranges(name)
    assert set(ranges) == set(defaults)
    for hp, spec in ranges.items():
        default = defaults[hp]
        if "values" in spec:
            assert spec["values"] and default in spec["values"], hp
            continue
        assert spec["distribution"] in ("uniform", "int_uniform"), hp
        assert spec["min"] < spec["max"], hp
        assert spec["min"] <= default <= spec["max"], hp
        if spec["distribution"] == "int_uniform":
            assert all(isinstance(spec[k], int) for k in ("min", "max")), hp


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_ranges_pass_wandb_sweep_schema(name: str) -> None:
    from sweeps import config as sweeps_config  # a dependency of the app: never skipped

    sweep = {
        "method": "random",
        "metric": {"name": "valid_loss", "goal": "minimize"},
        "parameters": {f"arch.{hp}": spec for hp, spec in hp_ranges(name).items()},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sweeps_config.schema_violations_from_proposed_config(sweep) == []


def _range_points(spec: dict) -> list:
    return list(spec["values"]) if "values" in spec else [spec["min"], spec["max"]]


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_every_suggested_value_builds_and_runs(name: str) -> None:
    """A sweep drawing from the ranges never proposes a model that fails to build."""
    for hp, spec in hp_ranges(name).items():
        for value in _range_points(spec):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short receptive fields warn
                model = _model(name, "regression", **{hp: value})
            model.eval()
            assert model(torch.randn(2, 12, 3)).shape == (2, 2, 3), (hp, value)


def test_ranges_are_copies() -> None:
    hp_ranges("MLP")["dropout"]["max"] = 5.0
    assert hp_ranges("MLP")["dropout"]["max"] < 1


def test_sweep_values_as_numpy_scalars_are_accepted() -> None:
    model = _model("MLP", "regression", depth=np.int64(2), dropout=np.float64(0.1),
                   batchnorm=np.bool_(False))
    assert model(torch.randn(2, 12, 3)).shape == (2, 2, 3)


def test_build_model_takes_a_dictconfig_and_fills_defaults() -> None:
    cfg = OmegaConf.structured(ARCH_SCHEMAS["cnn"])
    cfg.num_filters = 8
    model = build_model(cfg, (12, 3), (1, 1), "regression", None)
    assert model.blocks[0][0].out_channels == 8
    partial = build_model({"name": "lstm", "width": 5}, (12, 3), (1, 1), "regression", None)
    assert partial.lstm.hidden_size == 5 and partial.lstm.num_layers == hp_defaults("LSTM")["depth"]


def test_names_are_case_insensitive() -> None:
    assert get_arch("cnn") is get_arch("CNN")
    model = _model("tcn", "regression", activations="leakyrelu", normalization="None")
    assert model(torch.randn(1, 12, 3)).shape == (1, 2, 3)
    model = _model("Cnn", "regression", normalization="Weight")
    assert hasattr(model.blocks[0][0], "parametrizations")  # weight-normalised convolution


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize(("width", "depth"), [(8, 1), (8, 3), (32, 2)])
def test_mlp_size_follows_width_and_depth(width: int, depth: int, batchnorm: bool) -> None:
    """arch.width and arch.depth size the MLP as its docstring says: ``depth`` Linear(width)
    blocks over the flattened (33, 4) window, BatchNorm's scale and shift, a linear head
    without bias (KnowIt's)."""
    block = width + (2 * width if batchnorm else 0)  # bias (+ BatchNorm weight and bias)
    expected = (33 * 4 * width + block) + (depth - 1) * (width * width + block) \
        + width * 2 * 3  # head onto (2, 3) outputs
    model = _model("MLP", "regression", (33, 4), (2, 3), width=width, depth=depth,
                   batchnorm=batchnorm)
    assert _count(model) == expected


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("width", "depth"), [(5, 1), (5, 3), (16, 2)])
def test_lstm_size_follows_width_depth_and_directions(width: int, depth: int,
                                                      bidirectional: bool) -> None:
    """An LSTM layer has four gates, each with input and recurrent weights and two biases; a
    bidirectional one has two such layers, and the next layer reads both directions."""
    directions = 2 if bidirectional else 1
    expected, inputs = 0, 4
    for _ in range(depth):
        expected += directions * 4 * (width * inputs + width * width + 2 * width)
        inputs = width * directions
    expected += width * directions * 2 * 3 + 2 * 3  # head onto (2, 3) outputs
    model = _model("LSTM", "regression", (33, 4), (2, 3), width=width, depth=depth,
                   bidirectional=bidirectional)
    assert _count(model) == expected


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "hps", "key", "hint"),
    [
        ("MLP", {"dropout": 1.0}, "arch.dropout", "[0, 1)"),
        ("LSTM", {"dropout": -0.1}, "arch.dropout", "[0, 1)"),
        ("MLP", {"depth": 0}, "arch.depth", ">= 1"),
        ("MLP", {"depth": 2.5}, "arch.depth", "integer"),
        ("MLP", {"width": 0}, "arch.width", ">= 1"),
        ("CNN", {"num_filters": 0}, "arch.num_filters", ">= 1"),
        ("TCN", {"kernel_size": 0}, "arch.kernel_size", ">= 1"),
        ("TCN", {"dilation_base": 0}, "arch.dilation_base", ">= 1"),
        ("CNN", {"activations": "Relux"}, "arch.activations", "ReLU"),
        ("MLP", {"activations": "GLU"}, "arch.activations", "GLU"),
        ("MLP", {"output_activation": "Sigmoidal"}, "arch.output_activation", "Sigmoid"),
        ("CNN", {"normalization": "group"}, "arch.normalization", "batch, layer"),
        ("TCN", {"normalization": "group"}, "arch.normalization", "weight"),
        ("MLP", {"batchnorm": "yes"}, "arch.batchnorm", "true or false"),
        ("LSTM", {"bidirectional": 1}, "arch.bidirectional", "true or false"),
        ("MLP", {"dropuot": 0.1}, "arch.dropuot", "dropout"),
        ("LSTM", {"kernel_size": 3}, "arch.kernel_size", "width"),
    ],
)
def test_validate_names_the_key_and_what_is_allowed(name, hps, key, hint) -> None:
    with pytest.raises(ConfigError) as info:
        get_arch(name).validate(hps)
    assert info.value.key == key
    assert hint in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):  # build_model checks too
        _model(name, "regression", **hps)


def test_unknown_and_missing_architecture() -> None:
    with pytest.raises(ConfigError) as info:
        get_arch("Transformer")
    assert info.value.key == "arch.name"
    assert "unknown architecture 'Transformer'; available: MLP, CNN, TCN, LSTM" in str(info.value)
    with pytest.raises(ConfigError, match="arch.name"):
        build_model({"dropout": 0.1}, (12, 3), (1, 1), "regression", None)


def test_classification_refuses_an_output_activation() -> None:
    with pytest.raises(ConfigError) as info:
        _model("MLP", "classification", output_activation="Softmax")
    assert info.value.key == "arch.output_activation" and "logits" in str(info.value)


def test_regression_output_activation_is_applied() -> None:
    model = _model("MLP", "regression", output_activation="Sigmoid").eval()
    out = model(torch.randn(16, 12, 3) * 10)
    assert ((out > 0) & (out < 1)).all()


def test_unknown_task_and_bad_classification_setup() -> None:
    with pytest.raises(ConfigError, match="trainer.task"):
        build_model({"name": "MLP"}, (12, 3), (1, 1), "forecasting", None)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_model({"name": "MLP"}, (12, 3), (1, 1), "classification", 1)
    with pytest.raises(ConfigError, match="data.out_chunk"):
        build_model({"name": "MLP"}, (12, 3), (3, 1), "classification", 4)


# ---------------------------------------------------------------------- arch specifics


def test_tcn_is_causal() -> None:
    torch.manual_seed(0)
    model = _model("TCN", "regression", normalization="layer", dropout=0.0).eval()
    x = torch.randn(2, 12, 3)
    changed = x.clone()
    changed[:, 7, :] += 5.0
    with torch.no_grad():
        a, b = model.blocks(x.transpose(1, 2)), model.blocks(changed.transpose(1, 2))
    assert torch.equal(a[:, :, :7], b[:, :, :7])
    assert not torch.allclose(a[:, :, 7:], b[:, :, 7:])


def test_tcn_warns_when_the_window_is_wider_than_its_receptive_field() -> None:
    with pytest.warns(UserWarning, match="receptive field is 3 steps"):
        _model("TCN", "regression", in_shape=(33, 4), depth=1, kernel_size=2)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(("name", "kernel"), [("TCN", 3), ("CNN", 3), ("CNN", 4)])
def test_capped_dilations_compute_the_same_function(monkeypatch, name: str, kernel: int) -> None:
    """Huge dilations only read padding; capping them changes nothing but the memory used."""
    hps = {"depth": 3, "dilation_base": 9, "kernel_size": kernel, "dropout": 0.0,
           "num_filters": 4, "normalization": None}
    torch.manual_seed(0)
    capped = _model(name, "regression", in_shape=(5, 2), **hps).eval()
    module = get_arch(name)
    original = module.dilations
    monkeypatch.setattr(module, "dilations", lambda depth, base, cap: original(depth, base, 10**6))
    uncapped = _model(name, "regression", in_shape=(5, 2), **hps).eval()
    uncapped.load_state_dict(capped.state_dict())
    x = torch.randn(3, 5, 2)
    with torch.no_grad():
        torch.testing.assert_close(capped(x), uncapped(x))


@pytest.mark.parametrize("name", ["TCN", "CNN"])
def test_deep_dilated_models_stay_small_in_memory(name: str) -> None:
    """depth=16, dilation_base=4 asks for dilations up to 4**15 (padding a 33-step window to
    billions of steps); past the window a dilation only reads padding, so it is capped there."""
    steps = 33
    model = _model(name, "regression", in_shape=(steps, 4), depth=16, dilation_base=4,
                   num_filters=8)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) >= 16
    dilations = [conv.dilation[0] for conv in convs]
    assert max(dilations) <= 2 * steps + 1, dilations  # a causal or a centred window, no more
    assert sorted(set(dilations))[:3] == [1, 4, 16]  # the first blocks dilate as asked
    assert model(torch.randn(2, steps, 4)).shape == (2, 2, 3)


def test_lstm_bidirectional_reads_both_directions() -> None:
    model = _model("LSTM", "regression", bidirectional=True, depth=1, width=6)
    assert model.head.linear.in_features == 12


def test_mlp_residual_skips_only_equal_width_blocks() -> None:
    model = _model("MLP", "regression", residual=True, depth=3, width=16)
    assert model.skips == (False, True, True)


# ------------------------------------------------------------------------------ imports


def test_importing_the_registry_does_not_import_torch() -> None:
    code = (
        "import sys, knowit_app.archs as a; a.hp_defaults('mlp'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_arch_config_option_is_a_registered_arch() -> None:
    """``arch=<option>`` on the command line and the registry name the same architectures."""
    from importlib import resources

    from knowit_app.api import compose_config

    options = sorted(p.name.removesuffix(".yaml")
                     for p in resources.files("knowit_app.conf").joinpath("arch").iterdir()
                     if p.name.endswith(".yaml") and p.name != "custom.yaml")
    # custom.yaml is the imported-architecture option (arch.name=<module>): see test_custom_arch
    assert options == sorted(name.lower() for name in archs.ARCH_NAMES)
    for option in options:
        chosen = compose_config([f"arch={option}"]).arch.name
        assert archs.canonical_name(chosen) == get_arch(option).NAME
