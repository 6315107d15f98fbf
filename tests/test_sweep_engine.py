"""The offline controller: which runs W&B's engine proposes, and which it stops early."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest
from helpers import TUTORIAL_SWEEP

from knowit_app.api import compose_config
from knowit_app.sweeps.engine import LocalEngine, RunRecord
from knowit_app.sweeps.spec import load_spec

GRID = {**TUTORIAL_SWEEP, "name": "tutorial"}
RANDOM = {"method": "random", "metric": {"name": "valid_loss"},
          "parameters": {"arch.dropout": {"min": 0.0, "max": 0.5},
                         "data.batch_size": {"values": [64, 128, 256]},
                         "trainer.learning_rate": {"distribution": "log_uniform_values",
                                                   "min": 1e-4, "max": 0.1}}}


@pytest.fixture(scope="module")
def app_cfg():
    return compose_config([])


def spec_of(app_cfg, given):
    return load_spec(given, app_cfg, default_name="s")


def record(i, params, state="finished", score=None, history=()):
    return RunRecord(name=f"run{i}", params=params, state=state, score=score,
                     history=list(history))


def run_all(engine, state_of=lambda i: "finished", limit=100):
    history = []
    while len(history) < limit:
        params = engine.propose(history)
        if params is None:
            break
        history.append(record(len(history), params, state_of(len(history)), score=1.0))
    return history


# --------------------------------------------------------------------------- grid

def test_grid_proposes_each_tutorial_combination_once_then_stops(app_cfg):
    engine = LocalEngine(spec_of(app_cfg, GRID), seed=0)
    history = run_all(engine)
    seen = [(r.params["arch.dropout"], r.params["data.batch_size"],
             r.params["trainer.learning_rate"]) for r in history]
    expected = set(itertools.product([0.0, 0.2, 0.5], [64, 128, 256], [0.001, 0.01, 0.1]))
    assert len(seen) == 27 and set(seen) == expected
    assert engine.propose(history) is None
    assert "grid" in engine.done_reason(history)
    # plain Python values, in the sweep's key order
    assert list(history[0].params) == ["arch.dropout", "data.batch_size",
                                       "trainer.learning_rate"]
    assert all(type(v) in (int, float) for r in history for v in r.params.values())


def test_grid_does_not_propose_a_failed_or_running_point_again(app_cfg):
    engine = LocalEngine(spec_of(app_cfg, GRID), seed=0)
    first = engine.propose([])
    failed = [record(0, first, "failed")]
    assert engine.propose(failed) != first
    running = [record(0, first, "running")]
    assert engine.propose(running) != first
    history = run_all(engine, state_of=lambda i: "failed" if i % 3 == 0 else "finished")
    assert len(history) == 27
    assert len({tuple(r.params.values()) for r in history}) == 27


def test_records_may_be_dicts_from_the_state_file(app_cfg):
    engine = LocalEngine(spec_of(app_cfg, GRID), seed=0)
    history = run_all(engine)[:26]
    stored = json.loads(json.dumps([r.to_dict() for r in history]))
    last = engine.propose(stored)
    assert last is not None and last not in [r.params for r in history]
    assert engine.propose([*stored, record(26, last).to_dict()]) is None


def test_run_records_round_trip_through_json():
    rec = RunRecord(name="r", params={"arch.dropout": np.float64(0.2), "arch": "cnn"},
                    state="stopped", score=np.float32(0.5), history=[1.0, 0.5],
                    overrides=["arch=cnn"], started=1.0, ended=2.0, error=None)
    data = json.loads(json.dumps(rec.to_dict()))
    back = RunRecord.from_dict({**data, "written_by": "a newer version"})
    assert back.params == {"arch.dropout": 0.2, "arch": "cnn"} and back.score == 0.5
    assert back == RunRecord.from_dict(back.to_dict())
    with pytest.raises(ValueError):
        RunRecord.from_dict({"name": "r"})


# --------------------------------------------------------------------------- random

def test_random_is_reproducible_from_the_seed(app_cfg):
    spec = spec_of(app_cfg, RANDOM)
    a = run_all(LocalEngine(spec, seed=7), limit=5)
    b = run_all(LocalEngine(spec, seed=7), limit=5)
    c = run_all(LocalEngine(spec, seed=8), limit=5)
    assert [r.params for r in a] == [r.params for r in b]
    assert [r.params for r in a] != [r.params for r in c]
    # a resumed sweep (same history) proposes what the interrupted one would have
    assert LocalEngine(spec, seed=7).propose(a[:3]) == a[3].params
    # proposals differ from run to run
    assert len({r.params["arch.dropout"] for r in a}) == 5


def test_proposing_leaves_the_global_random_state_alone(app_cfg):
    engine = LocalEngine(spec_of(app_cfg, RANDOM), seed=1)
    random.seed(3)
    np.random.seed(3)
    engine.propose([])
    after = (random.random(), np.random.random())
    random.seed(3)
    np.random.seed(3)
    assert after == (random.random(), np.random.random())


def test_run_cap_and_target_end_a_search(app_cfg):
    engine = LocalEngine(spec_of(app_cfg, {**RANDOM, "run_cap": 3}), seed=0)
    assert len(run_all(engine)) == 3
    assert "run_cap" in engine.done_reason(run_all(engine))
    target = {**RANDOM, "metric": {"name": "valid_loss", "target": 0.2}}
    engine = LocalEngine(spec_of(app_cfg, target), seed=0)
    params = engine.propose([])
    assert engine.propose([record(0, params, score=0.3)]) is not None
    assert engine.propose([record(0, params, score=0.1)]) is None


BOUNDED = {
    "int_uniform": {"distribution": "int_uniform", "min": 2, "max": 5},
    "uniform": {"distribution": "uniform", "min": 0.1, "max": 0.4},
    "q_uniform": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
    "log_uniform_values": {"distribution": "log_uniform_values", "min": 0.01, "max": 0.5},
    "q_log_uniform_values": {"distribution": "q_log_uniform_values", "min": 0.01,
                             "max": 0.5, "q": 0.01},
    "inv_log_uniform_values": {"distribution": "inv_log_uniform_values", "min": 0.01,
                               "max": 0.5},
    "beta": {"distribution": "beta", "a": 2.0, "b": 5.0},
    "q_beta": {"distribution": "q_beta", "a": 2.0, "b": 5.0, "q": 0.1},
}


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_random_draws_bounded_distributions_in_range(app_cfg, name):
    dist = BOUNDED[name]
    spec = spec_of(app_cfg, {**RANDOM, "parameters": {"arch.dropout": dist}})
    low, high = dist.get("min", 0.0), dist.get("max", 1.0)
    slack = dist.get("q", 0) / 2 + 1e-9  # a quantized draw rounds to the nearest q
    draws = [r.params["arch.dropout"] for r in run_all(LocalEngine(spec, 0), limit=30)]
    assert all(low - slack <= v <= high + slack for v in draws)
    assert all(type(v) is (int if name == "int_uniform" else float) for v in draws)
    assert len(set(draws)) > 1
    if "q" in dist:
        assert all(math.isclose(v / dist["q"], round(v / dist["q"])) for v in draws)


@pytest.mark.parametrize("dist, check", [
    ({"values": [0.1, 0.3]}, lambda v: v in (0.1, 0.3)),
    ({"values": [0.1, 0.3], "probabilities": [0.0, 1.0]}, lambda v: v == 0.3),
    ({"value": 0.2}, lambda v: v == 0.2),
    ({"distribution": "normal", "mu": 0.2, "sigma": 0.01}, lambda v: abs(v - 0.2) < 0.1),
    ({"distribution": "q_normal", "mu": 0.2, "sigma": 0.01, "q": 0.05},
     lambda v: abs(v - 0.2) < 0.1),
    ({"distribution": "log_normal", "mu": -2.0, "sigma": 0.1}, lambda v: 0.05 < v < 0.3),
    ({"distribution": "q_log_normal", "mu": -2.0, "sigma": 0.1, "q": 0.01},
     lambda v: 0.05 < v < 0.3),
])
def test_random_draws_the_other_distributions(app_cfg, dist, check):
    spec = spec_of(app_cfg, {**RANDOM, "parameters": {"arch.dropout": dist}})
    draws = [r.params["arch.dropout"] for r in run_all(LocalEngine(spec, 0), limit=20)]
    assert all(check(v) and type(v) is float for v in draws)


def test_integer_q_draws_integers_for_integer_fields(app_cfg):
    spec = spec_of(app_cfg, {**RANDOM, "parameters": {
        "data.batch_size": {"distribution": "q_uniform", "min": 32, "max": 256, "q": 32}}})
    draws = [r.params["data.batch_size"] for r in run_all(LocalEngine(spec, 0), limit=20)]
    assert all(type(v) is int and v % 32 == 0 and 32 <= v <= 256 for v in draws)


# --------------------------------------------------------------------------- bayes

BAYES = {"method": "bayes", "metric": {"name": "valid_loss", "goal": "minimize"},
         "parameters": {"arch": {"values": ["mlp", "cnn"]},
                        "arch.dropout": {"min": 0.0, "max": 0.5},
                        "data.batch_size": {"values": [64, 128, 256]},
                        "trainer.learning_rate": {"distribution": "log_uniform_values",
                                                  "min": 1e-4, "max": 0.1}}}


def test_bayes_proposes_from_numeric_and_categorical_parameters(app_cfg):
    spec = spec_of(app_cfg, BAYES)
    engine = LocalEngine(spec, seed=0)
    history = []
    for i in range(6):
        params = engine.propose(history)
        # a made-up objective: low dropout and cnn are better
        score = params["arch.dropout"] + (0.0 if params["arch"] == "cnn" else 0.3)
        history.append(record(i, params, score=score, history=[score + 0.1, score]))
    history.append(record(6, engine.propose(history), state="running"))
    history.append(record(7, engine.propose(history), state="failed"))
    proposal = engine.propose(history)
    assert proposal["arch"] in ("mlp", "cnn") and proposal["data.batch_size"] in (64, 128, 256)
    assert 0.0 <= proposal["arch.dropout"] <= 0.5
    assert 1e-4 <= proposal["trainer.learning_rate"] <= 0.1
    assert LocalEngine(spec, seed=0).propose(history) == proposal


def test_bayes_tells_none_apart_from_the_first_value(app_cfg):
    # W&B's engine reads None (and False, 0, "") as the first categorical value; here None
    # scores well and "Sigmoid" badly, so a correct reading proposes None
    spec = spec_of(app_cfg, {**BAYES, "parameters": {
        "arch.output_activation": {"values": ["Sigmoid", None]},
        "arch.dropout": {"min": 0.0, "max": 0.5}}})
    history = [record(i, {"arch.output_activation": None if i % 2 else "Sigmoid",
                          "arch.dropout": 0.1 + 0.05 * i}, score=0.1 if i % 2 else 10.0)
               for i in range(6)]
    picks = [LocalEngine(spec, seed).propose(history)["arch.output_activation"]
             for seed in range(10)]
    assert picks.count(None) >= 8


def test_runs_outside_the_search_space_are_ignored(app_cfg):
    spec = spec_of(app_cfg, BAYES)
    engine = LocalEngine(spec, seed=0)
    old = record(0, {"arch": "lstm", "arch.dropout": 0.1}, score=0.5)  # from an older sweep
    assert engine.propose([old]) is not None
    grid = LocalEngine(spec_of(app_cfg, GRID), seed=0)
    history = [record(0, {"arch.dropout": 0.9, "data.batch_size": 64,
                          "trainer.learning_rate": 0.001})]
    while (params := grid.propose(history)) is not None:
        history.append(record(len(history), params))
    assert len(history) == 1 + 27


# --------------------------------------------------------------------------- hyperband

def hyperband_spec(app_cfg, goal="minimize", **et):
    return spec_of(app_cfg, {**GRID, "metric": {"name": "valid_loss", "goal": goal},
                             "early_terminate": {"type": "hyperband", "min_iter": 1, **et}})


def test_hyperband_stops_a_clearly_bad_run(app_cfg):
    engine = LocalEngine(hyperband_spec(app_cfg), seed=0)
    good = [record(i, {}, history=h, score=min(h))
            for i, h in enumerate([[0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.55, 0.35, 0.3]])]
    bad = record(9, {}, state="running", history=[5.0])
    assert engine.should_stop_early(good, bad)
    fine = record(9, {}, state="running", history=[0.52])
    assert not engine.should_stop_early(good, fine)
    # an older copy of the current run in the history is replaced by the current one
    assert engine.should_stop_early([*good, record(9, {}, "running", history=[0.4])], bad)
    # no epoch yet: nothing to judge
    assert not engine.should_stop_early(good, record(9, {}, state="running"))


def test_hyperband_follows_the_goal(app_cfg):
    engine = LocalEngine(hyperband_spec(app_cfg, goal="maximize"), seed=0)
    good = [record(i, {}, history=[0.9, 0.95]) for i in range(3)]
    assert engine.should_stop_early(good, record(9, {}, "running", history=[0.1]))
    assert not engine.should_stop_early(good, record(9, {}, "running", history=[0.97]))


def test_a_damaged_state_file_mid_run_turns_early_termination_off_not_the_run(
        app_cfg, tmp_path, caplog):
    """Hyperband reads the sweep's state file after every epoch; a file damaged meanwhile
    (truncated, edited) must not fail a training that is fine: one warning, no stop."""
    from types import SimpleNamespace

    import torch

    from knowit_app.experiment.sweep_state import SWEEP_STATE_FILE
    from knowit_app.sweeps.early_stop import HyperbandStopper

    (tmp_path / SWEEP_STATE_FILE).write_text('{"version": 1, "runs": [{"name": "r')
    stopper = HyperbandStopper(tmp_path, "run9", hyperband_spec(app_cfg))
    trainer = SimpleNamespace(callback_metrics={"valid_loss": torch.tensor(5.0)},
                              should_stop=False)
    with caplog.at_level("WARNING", logger="knowit_app.sweeps"):
        for _ in range(2):
            stopper.on_train_epoch_end(trainer, None)
    assert not trainer.should_stop and stopper.history == [5.0, 5.0]
    warned = [r for r in caplog.records if "no early termination" in r.getMessage()]
    assert len(warned) == 1 and SWEEP_STATE_FILE in warned[0].getMessage()


def test_without_early_terminate_nothing_is_stopped(app_cfg):
    engine = LocalEngine(spec_of(app_cfg, GRID), seed=0)
    good = [record(i, {}, history=[0.1]) for i in range(3)]
    assert not engine.should_stop_early(good, record(9, {}, "running", history=[50.0]))


# --------------------------------------------------------------------------- requeued runs

def test_a_requeued_run_has_one_history_for_the_engine_and_the_report(tmp_path):
    """A requeue resumes from the last checkpoint in a new ``version_<n>`` that repeats some
    epochs; the engine's history (hyperband, bayes) and the report's curve are the same."""
    from helpers import write_metrics

    from knowit_app.experiment.runs import RunResult, write_sweep_config
    from knowit_app.experiment.sweep_state import SweepState, outcome_of
    from knowit_app.report.collect import collect_sweep

    sweep_dir = tmp_path / "sweep"
    run_dir = sweep_dir / "r1"
    write_sweep_config(sweep_dir, {**GRID, "name": "sweep"})
    # The 10th attempt sorts before the 9th as text: versions count as numbers.
    write_metrics(run_dir, [{"epoch": e, "valid_loss": v} for e, v in
                            enumerate([1.0, 0.9, 0.8, 0.75])], version=9)
    write_metrics(run_dir, [{"epoch": e, "valid_loss": v} for e, v in
                            [(2, 0.7), (3, 0.6), (4, 0.5)]], version=10)
    result = RunResult(state="finished", monitor="valid_loss", mode="min", best_score=0.5,
                       best_checkpoint=None, epochs=5, fit_seconds=1.0, started=0.0, ended=1.0)
    result.write(run_dir)

    outcome = outcome_of(result, run_dir, "valid_loss")  # what the sweeper records
    with SweepState(sweep_dir).locked() as data:
        data["runs"] = [RunRecord(name="r1", params={}, **outcome).to_dict()]
    assert outcome["history"] == [1.0, 0.9, 0.7, 0.6, 0.5]  # last attempt wins, no repeats

    (row,) = collect_sweep(sweep_dir).runs
    assert row.curves["valid_loss"] == list(enumerate(outcome["history"]))
    assert row.epochs == 5 and row.rank == 1
