"""A user's own architecture in KnowIt's form: imported into custom_archs/, then trained from the
API and the command line, swept, consolidated and rebuilt like a built-in one."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from helpers import run_cli

from knowit_app import KnowIt, load_trained_model
from knowit_app.errors import ConfigError

TINY_ARCH = '''
import torch
from torch import nn

available_tasks = ("regression", "classification")
HP_ranges_dict = {"width": range(2, 64), "scale": [0.5, 1.0]}


class Model(nn.Module):
    def __init__(self, task_name, input_dim, output_dim, width=4, scale=1.0):
        super().__init__()
        self.out = list(output_dim)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(input_dim[0] * input_dim[1], width),
                                  nn.ReLU(), nn.Linear(width, self.out[0] * self.out[1]))
        self.scale = scale

    def forward(self, x):
        return self.scale * self.body(x).reshape(x.shape[0], *self.out)
'''

DATA = ["data.limit=5", "trainer.max_epochs=1", "data.batch_size=256"]


@pytest.fixture
def arch_file(tmp_path):
    path = tmp_path / "src" / "tiny_net.py"
    path.parent.mkdir()
    path.write_text(TINY_ARCH)
    return path


def test_a_module_lacking_parts_gets_one_error_naming_them(tmp_path):
    bad = tmp_path / "half.py"
    bad.write_text(textwrap.dedent('''
        from torch import nn
        class Model(nn.Module):
            def __init__(self, task_name, input_dim, width):
                super().__init__()
    '''))
    with pytest.raises(ConfigError) as info:
        KnowIt(tmp_path / "exp").import_arch(str(bad))
    msg = str(info.value)
    for part in ("available_tasks", "HP_ranges_dict", "output_dim", "defaults for width",
                 "Model.forward"):
        assert part in msg, msg
    assert "\n" not in msg and not (tmp_path / "exp" / "custom_archs").exists()


@pytest.mark.parametrize(("body", "says"), [
    ("self.body(x)", "fails on inputs of shape (33, 4)"),  # no Flatten: Linear gets (B, 33, 4)
    ("self.body(x.flatten(1))", "returns outputs of shape (1,) per point"),  # no reshape
])
def test_a_module_that_does_not_fit_the_data_is_refused_before_training(tmp_path, arch_file,
                                                                        body, says):
    """Every part is there, but the network does not fit the data's shapes: one line naming
    arch.name at planning (a forward pass on two points), no model directory."""
    source = arch_file.read_text().replace(
        "nn.Sequential(nn.Flatten(), ", "nn.Sequential(").replace(
        "self.scale * self.body(x).reshape(x.shape[0], *self.out)", f"self.scale * {body}")
    arch_file.write_text(source)
    ki = KnowIt(tmp_path / "exp")
    ki.import_arch(str(arch_file))
    kwargs = {"data": {"name": "synth_2", "limit": 5}, "arch": {"name": "tiny_net"},
              "trainer": {"max_epochs": 1}}
    with pytest.raises(ConfigError) as info:
        ki.train_model("m", kwargs)
    assert info.value.key == "arch.name" and says in str(info.value)
    assert not (tmp_path / "exp" / "models" / "m").exists()


def test_import_train_and_rebuild_from_the_api(tmp_path, arch_file):
    ki = KnowIt(tmp_path / "exp")
    target = ki.import_arch(str(arch_file))
    assert target == (tmp_path / "exp" / "custom_archs" / "tiny_net.py").resolve() or \
        target == tmp_path / "exp" / "custom_archs" / "tiny_net.py"
    assert ki.available_archs() == {"defaults": ["MLP", "CNN", "TCN", "LSTM"],
                                    "custom": ["tiny_net"]}  # KnowIt's shape
    kwargs = {"data": {"name": "synth_2", "limit": 5, "batch_size": 256},
              "arch": {"name": "tiny_net", "arch_hps": {"width": 6}},
              "trainer": {"max_epochs": 1}}
    ki.train_model("m", kwargs)
    model = load_trained_model(tmp_path / "exp" / "models" / "m")
    assert model.network.body[1].out_features == 6  # the user's class, with the swept value
    ki.generate_predictions("m", kwargs={"predictor": {"prediction_set": "valid"}})
    assert (tmp_path / "exp" / "models" / "m" / "predictions" / "valid.parquet").is_file()
    with pytest.raises(ConfigError) as info:
        ki.train_model("m2", {**kwargs, "arch": {"name": "tiny_net", "arch_hps": {"depth": 2}}})
    assert info.value.key == "arch.arch_hps.depth"
    with pytest.raises(ConfigError, match="tiny_net"):
        ki.train_model("m3", {**kwargs, "arch": {"name": "nope"}})


@pytest.mark.slow
def test_cli_trains_and_sweeps_a_custom_arch_from_any_directory(tmp_path, arch_file):
    exp = tmp_path / "exp"
    KnowIt(exp).import_arch(str(arch_file))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    proc = run_cli(["model_name=c1", f"exp_dir={exp}", "arch=custom", "arch.name=tiny_net",
                    "+arch.arch_hps.width=5", *DATA], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_trained_model(exp / "models" / "c1").network.body[1].out_features == 5
    proc = run_cli(["-m", "model_name=c2", f"exp_dir={exp}", "sweep.name=s", "arch=custom",
                    "arch.name=tiny_net", "+arch.arch_hps.width=3,7", *DATA], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted(p for p in (exp / "models" / "c2" / "sweeps" / "s").iterdir()
                  if p.is_dir() and (p / "model_args.yaml").is_file())
    widths = sorted(load_trained_model(r).network.body[1].out_features for r in runs)
    assert widths == [3, 7]
    best = KnowIt(exp).consolidate_sweep("c2", "s")
    rebuilt = load_trained_model(exp / "models" / "c2")
    assert rebuilt.network.body[1].out_features in (3, 7) and np.isfinite(best.score)
