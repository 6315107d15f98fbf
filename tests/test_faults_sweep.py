"""Faults in sweeps and trainings, as a hostile user or a bad disk makes them.

- a damaged ``sweep_state.json`` (truncated, empty, without runs) is rebuilt from the run dirs,
  with one warning and the damaged file kept; nothing finished is rerun;
- a damaged ``sweep_config.yaml`` is one error line naming it; a sweep resumed (or started at
  the same instant by another sweeper) with another search is one error line, nothing changed;
- a loss or monitored metric that becomes NaN or inf fails the run, in a single training and a
  sweep alike, even when an earlier epoch's checkpoint was finite; ``run_result.json`` is always
  strict JSON;
- a sweep says how many runs it holds before its first; one whose every run failed exits
  non-zero.

Divergence is made on purpose by a user architecture (imported as KnowIt users do) whose
validation output turns NaN or inf from a chosen validation on: deterministic, whatever the data.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from helpers import checkpoints, run_cli, run_dirs, snapshot

from knowit_app import KnowIt
from knowit_app.api import compose_config
from knowit_app.errors import KnowitError
from knowit_app.experiment.runs import RunResult, read_sweep_config
from knowit_app.experiment.sweep_state import DamagedState, SweepState, rebuild_records
from knowit_app.sweeps.plan import size_line
from knowit_app.sweeps.spec import load_spec
from knowit_app.sweeps.state import params_from_overrides

TINY = ["data.limit=5", "arch.width=16", "trainer.max_epochs=1"]

POISON_ARCH = '''
from torch import nn

available_tasks = ("regression",)
HP_ranges_dict = {"width": range(2, 64), "poison": ["none", "nan", "inf"],
                  "poison_from": range(1, 10)}


class Model(nn.Module):
    """A small MLP whose validation output becomes ``poison`` from validation ``poison_from``."""

    def __init__(self, task_name, input_dim, output_dim, width=8, poison="none", poison_from=1):
        super().__init__()
        self.out = list(output_dim)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(input_dim[0] * input_dim[1], width),
                                  nn.ReLU(), nn.Linear(width, self.out[0] * self.out[1]))
        self.poison, self.poison_from = poison, poison_from
        self.validations, self.was_training = 0, True

    def forward(self, x):
        out = self.body(x).reshape(x.shape[0], *self.out)
        if self.training:
            self.was_training = True
            return out
        if self.was_training:
            self.validations += 1
            self.was_training = False
        if self.poison != "none" and self.validations >= self.poison_from:
            out = out + float(self.poison)
        return out
'''


def strict_json(path: Path) -> dict:
    """The file as JSON, refusing the non-standard NaN/Infinity that Python's json accepts."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def poison_exp(tmp_path: Path) -> Path:
    arch = tmp_path / "src" / "poison_net.py"
    arch.parent.mkdir()
    arch.write_text(POISON_ARCH)
    exp = tmp_path / "exp"
    KnowIt(exp).import_arch(str(arch))
    return exp


def poison_args(exp: Path, poison: str, start: int, epochs: int) -> list[str]:
    """``poison`` quoted as Hydra strings ('nan'): a bare nan is a number, refused in a config."""
    return [f"exp_dir={exp}", "arch=custom", "arch.name=poison_net",
            f"+arch.arch_hps.poison={poison}", f"+arch.arch_hps.poison_from={start}",
            "data.limit=5", f"trainer.max_epochs={epochs}"]


# --------------------------------------------------------------------------- run_result.json

@pytest.mark.parametrize("score", [math.inf, -math.inf, math.nan])
def test_run_result_is_strict_json_with_a_reason_for_a_non_finite_score(tmp_path, score):
    RunResult(state="finished", monitor="valid_loss", mode="min", best_score=score,
              best_checkpoint=None, epochs=1, fit_seconds=1.0, started=0.0,
              ended=1.0).write(tmp_path)
    data = strict_json(tmp_path / "run_result.json")
    assert data["best_score"] is None and "valid_loss" in data["reason"]
    assert RunResult.read(tmp_path).qualifies is False


# --------------------------------------------------------------------------- divergence

def test_valid_loss_that_becomes_nan_after_a_finite_epoch_fails_the_training(poison_exp):
    """Epoch 1 is finite (and checkpointed), epoch 2's valid_loss is NaN: the run diverged."""
    from knowit_app.training.module import TrainingDivergedError
    from knowit_app.training.run import execute, plan_training

    cfg = compose_config(["model_name=n", *poison_args(poison_exp, "'nan'", 2, 3)])
    out = poison_exp / "out"
    with pytest.raises(TrainingDivergedError, match=r"valid_loss became nan in epoch 2"):
        execute(plan_training(cfg), out)
    assert not (out / "run_result.json").exists()  # never a finished result


@pytest.mark.slow
def test_single_training_with_an_infinite_valid_loss_fails_in_one_line(poison_exp, tmp_path):
    proc = run_cli(["model_name=inf1", *poison_args(poison_exp, "'inf'", 1, 1),
                    "wandb.mode=disabled"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "valid_loss became inf in epoch 1" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (poison_exp / "models" / "inf1").exists()  # nothing published as the model
    staged = list((poison_exp / "models" / ".staging").iterdir())
    assert len(staged) == 1 and str(staged[0]) in errors[0]  # kept for inspection


@pytest.mark.slow
def test_a_sweep_of_diverging_runs_records_them_failed_and_exits_non_zero(poison_exp, tmp_path):
    """NaN after a finite epoch and inf at once: both failed, none consolidated, exit 1."""
    args = ["-m", "model_name=d", "sweep.name=div", *poison_args(poison_exp, "'nan','inf'", 2, 2),
            "hydra.sweeper.max_failure_rate=1.0"]
    proc = run_cli(args, cwd=tmp_path, timeout=900)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert "every run of sweep div failed (2 of 2 runs)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "a grid of 2 runs; this invocation runs up to 2" in proc.stderr + proc.stdout
    sweep_dir = poison_exp / "models/d/sweeps/div"
    runs = {r["name"]: r for r in json.loads((sweep_dir / "sweep_state.json").read_text())
            ["runs"]}
    assert {r["state"] for r in runs.values()} == {"failed"}
    assert "valid_loss became nan in epoch 2" in runs["poison_nan"]["error"]
    assert "valid_loss became inf in epoch 2" in runs["poison_inf"]["error"]
    assert checkpoints(sweep_dir / "poison_nan")  # epoch 1 was finite: it still never counts
    for run in run_dirs(sweep_dir):
        assert strict_json(run / "run_result.json")["state"] == "failed"
    assert not checkpoints(poison_exp / "models/d")  # nothing consolidated


# --------------------------------------------------------------------------- sweep size

def test_a_grid_says_how_many_runs_it_holds_and_how_many_this_invocation_runs():
    cfg = compose_config([])
    values = list(range(1, 21))
    big = {"method": "grid", "metric": {"name": "valid_loss"},
           "parameters": {"arch.width": {"values": values},
                          "trainer.seed": {"min": 1, "max": 1000},
                          "data.batch_size": {"values": values}}}
    spec = load_spec(big, cfg, default_name="big")
    assert size_line(spec, 10, []) == \
        "sweep big: a grid of 400,000 runs; this invocation runs up to 10 (hydra.sweeper.count=10)"
    assert size_line(spec, None, []).endswith("this invocation runs up to 400,000")
    rand = load_spec({**big, "method": "random"}, cfg, default_name="r")
    assert size_line(rand, 5, []) == "sweep r: a random search: unbounded; this invocation runs " \
        "count=5"
    capped = load_spec({**big, "method": "bayes", "run_cap": 30}, cfg, default_name="b")
    assert "run_cap 30 runs" in size_line(capped, None, [])


# --------------------------------------------------------------------------- damaged state

@pytest.fixture(scope="module")
def one_of_two(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A grid of two runs, one run so far (real sweep, real Hydra run dirs)."""
    work = tmp_path_factory.mktemp("damaged")
    args = ["-m", "model_name=s", "sweep.name=g", "arch.dropout=0.0,0.1",
            "hydra.sweeper.count=1", *TINY]
    proc = run_cli(args, cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, work / "outputs/models/s/sweeps/g", args


DAMAGE = {"truncated": lambda text: text[: len(text) // 2], "empty": lambda text: "",
          "no runs": lambda text: '{"version": 1}'}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_state_is_rebuilt_from_the_run_dirs(one_of_two, tmp_path, damage):
    _, original, _ = one_of_two
    sweep_dir = tmp_path / "g"
    shutil.copytree(original, sweep_dir)
    # A run killed mid-training: its result and checkpoint never written.
    shutil.copytree(original / "dropout_0.0", sweep_dir / "dropout_0.1")
    killed = sweep_dir / "dropout_0.1"
    for path in [killed / "run_result.json", *checkpoints(killed)]:
        path.unlink()
    state = SweepState(sweep_dir)
    before = {r.name: r for r in state.records()}
    text = state.path.read_text()
    state.path.write_text(DAMAGE[damage](text))
    with pytest.raises(DamagedState, match="sweep_state.json is damaged"):
        state.records()

    kept, why = state.recover(lambda: rebuild_records(
        sweep_dir, "valid_loss", lambda o: params_from_overrides(o, {"arch.dropout"})))
    assert kept.name.startswith("sweep_state.json.corrupt-") and kept.read_text() == \
        DAMAGE[damage](text)
    after = {r.name: r for r in state.records()}
    done = after["dropout_0.0"]
    assert (done.state, done.score, done.params) == ("finished", before["dropout_0.0"].score,
                                                     {"arch.dropout": 0.0})
    assert done.history == before["dropout_0.0"].history
    assert sorted(done.overrides) == sorted(before["dropout_0.0"].overrides)
    # The interrupted one is rerun (running, no owner), with the overrides it was launched with.
    assert after["dropout_0.1"].state == "running" and after["dropout_0.1"].overrides
    assert state.recover(lambda: []) is None  # a sound file is left alone


@pytest.mark.slow
def test_a_sweep_goes_on_after_its_state_file_was_truncated(one_of_two, tmp_path):
    original, _, args = one_of_two
    work = tmp_path / "work"
    shutil.copytree(original, work)  # keeps mtimes
    sweep_dir = work / "outputs/models/s/sweeps/g"
    done = checkpoints(sweep_dir / "dropout_0.0")[0].stat().st_mtime
    state = sweep_dir / "sweep_state.json"
    state.write_text(state.read_text()[:40])
    proc = run_cli(args, cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stderr + proc.stdout
    warnings = [line for line in output.splitlines() if "was damaged" in line]
    assert len(warnings) == 1 and str(state) in warnings[0], output
    assert "Traceback" not in output
    assert len(list(sweep_dir.glob("sweep_state.json.corrupt-*"))) == 1
    runs = {r["name"]: r for r in strict_json(state)["runs"]}
    assert {n: r["state"] for n, r in runs.items()} == {"dropout_0.0": "finished",
                                                        "dropout_0.1": "finished"}
    assert checkpoints(sweep_dir / "dropout_0.0")[0].stat().st_mtime == done  # not rerun


# --------------------------------------------------------------------------- another search

@pytest.mark.slow
def test_resuming_a_sweep_with_another_search_is_one_error_and_changes_nothing(one_of_two,
                                                                               tmp_path):
    original, _, args = one_of_two
    work = tmp_path / "work"
    shutil.copytree(original, work)
    sweep_dir = work / "outputs/models/s/sweeps/g"
    before = snapshot(sweep_dir)
    other = [a if not a.startswith("arch.dropout=") else "arch.dropout=0.3,0.4" for a in args]
    proc = run_cli(other, cwd=work, timeout=900)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: sweep.name: sweep 'g' in {sweep_dir.resolve()} was started with "
                      "another search; choose another sweep.name"], proc.stderr[-3000:]
    assert snapshot(sweep_dir) == before


def test_of_two_sweepers_recording_different_searches_at_once_the_second_is_refused(tmp_path):
    """Both pass the early check (no sweep_config.yaml yet) before either records its search:
    the record step checks again under the sweep's lock, so the second cannot overwrite the
    first's search and run its own grid in the same sweep dir."""
    from hydra_plugins.knowit_wandb_sweeper.config import WandbSweeperConf
    from knowit_app.errors import ConfigError
    from knowit_app.sweeps.driver import SweepDriver
    from knowit_app.sweeps.plan import SweepPlan

    cfg = compose_config([])

    def plan(values: list[float]) -> SweepPlan:
        search = {"method": "grid", "metric": {"name": "valid_loss"},
                  "parameters": {"arch.dropout": {"values": values}}}
        return SweepPlan(load_spec(search, cfg, default_name="g"), [], tmp_path, cfg, None)

    first, second = plan([0.1, 0.2]), plan([0.3])
    drivers = SweepDriver(WandbSweeperConf()), SweepDriver(WandbSweeperConf())
    drivers[0]._check_config(first)
    drivers[1]._check_config(second)
    drivers[0]._record_config(first, SweepState(tmp_path))
    with pytest.raises(ConfigError, match="was started with another search"):
        drivers[1]._record_config(second, SweepState(tmp_path))
    assert read_sweep_config(tmp_path)["parameters"] == {"arch.dropout": {"values": [0.1, 0.2]}}


@pytest.mark.parametrize("text", ["method: [grid", "", "- a list\n"])
def test_a_damaged_sweep_config_is_one_error_naming_it(tmp_path, text):
    (tmp_path / "sweep_config.yaml").write_text(text)
    with pytest.raises(KnowitError) as info:
        read_sweep_config(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "sweep_config.yaml") in message and "\n" not in message
    assert "delete it" in message


def test_a_state_or_config_that_is_a_directory_is_one_error_naming_it(tmp_path):
    (tmp_path / "sweep_state.json").mkdir()
    (tmp_path / "sweep_config.yaml").mkdir()
    state = SweepState(tmp_path)
    for read in (state.records, lambda: state.recover(lambda: []),
                 lambda: read_sweep_config(tmp_path)):
        with pytest.raises(KnowitError, match=r"cannot read .*sweep_(state.json|config.yaml)"):
            read()
