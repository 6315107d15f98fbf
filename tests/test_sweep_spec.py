"""Sweep files, Hydra sweep grammar and run naming: what a user writes, and what a run gets."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import TUTORIAL_SWEEP
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from knowit_app.api import compose_config
from knowit_app.config.compose import option_config
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import check_name
from knowit_app.sweeps.grammar import parameters_from_overrides
from knowit_app.sweeps.naming import override_value, overrides_for, run_name
from knowit_app.sweeps.spec import load_spec, to_plain

TUTORIAL = TUTORIAL_SWEEP


@pytest.fixture(scope="module")
def app_cfg():
    return compose_config([])


def sweep(parameters, **top):
    return {"method": "random", "metric": {"name": "valid_loss"}, "parameters": parameters,
            **top}


def refused(sweep_cfg, app_cfg, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_spec(sweep_cfg, app_cfg, default_name="s", **kwargs)
    assert "\n" not in str(info.value)  # one line, as the command line shows it
    return info.value


# --------------------------------------------------------------------------- the sweep file

def test_the_shipped_tutorial_sweep_loads_as_written(app_cfg):
    given = OmegaConf.load("knowit_app/conf/sweep/tutorial_grid.yaml")
    spec = load_spec(given, app_cfg, default_name="unused")
    assert (spec.name, spec.method, spec.metric_name, spec.goal) == (
        "my_sweep_name", "grid", "valid_loss", "minimize")
    assert list(spec.parameters) == ["arch.dropout", "data.batch_size", "trainer.learning_rate"]
    assert spec.parameters["data.batch_size"] == {"values": [64, 128, 256]}
    assert spec.run_cap is None and spec.early_terminate is None and spec.target is None
    # what goes to the engine or a W&B server: JSON as is, and a copy
    config = spec.wandb_config()
    assert json.loads(json.dumps(config)) == config == spec.raw
    config["parameters"].clear()
    assert spec.raw["parameters"]


def test_knowit_tutorial_bare_names_resolve_to_the_app_keys(app_cfg):
    spec = load_spec(TUTORIAL, app_cfg, default_name="unused")
    assert list(spec.parameters) == ["arch.dropout", "data.batch_size", "trainer.learning_rate"]
    assert spec.aliases == {"dropout": "arch.dropout", "batch_size": "data.batch_size",
                            "learning_rate": "trainer.learning_rate"}
    assert list(spec.raw["parameters"]) == list(spec.parameters)


def test_an_ambiguous_bare_name_lists_the_candidates(app_cfg):
    err = refused(sweep({"seed": {"values": [1, 2]}}), app_cfg)
    assert err.key == "sweep.parameters.seed"
    assert "data.seed" in err.detail and "trainer.seed" in err.detail


def test_an_unknown_bare_name_is_refused(app_cfg):
    err = refused(sweep({"dropuot": {"values": [0.1]}}), app_cfg)
    assert err.key == "sweep.parameters.dropuot"


def test_the_name_defaults_and_must_be_a_directory_name(app_cfg):
    spec = load_spec(sweep({"arch.dropout": {"values": [0.1]}}), app_cfg, default_name="lr-1")
    assert spec.name == "lr-1"
    assert refused(sweep({"arch.dropout": {"values": [0.1]}}, name="my sweep/1"),
                   app_cfg).key == "sweep.name"


@pytest.mark.parametrize("given, key, words", [
    ({**TUTORIAL, "paramters": {}}, "sweep.paramters", "unknown key"),
    ({"method": "grid", "parameters": {}}, "sweep.parameters", "empty"),
    ({"method": "grid"}, "sweep.parameters", "missing"),
    ({"parameters": {"arch.dropout": {"values": [0.1]}}}, "sweep.method", "missing"),
    ({**TUTORIAL, "method": "hyperopt"}, "sweep.method", "grid, random, bayes"),
    ({**TUTORIAL, "metric": {"name": "valid_loss", "goal": "lowest"}}, "sweep.metric.goal",
     "minimize or maximize"),
    ({**TUTORIAL, "metric": {"name": "val_loss"}}, "sweep.metric.name", "valid_perf_<metric>"),
    ({**TUTORIAL, "metric": {"name": "valid_perf_accuracy"}}, "sweep.metric.name",
     "performance_metrics"),
    ({**TUTORIAL, "run_cap": 0}, "sweep.run_cap", "positive integer"),
    ({**TUTORIAL, "run_cap": "10"}, "sweep.run_cap", "positive integer"),
    ({**TUTORIAL, "early_terminate": {"type": "median"}}, "sweep.early_terminate.type",
     "hyperband"),
    ({**TUTORIAL, "early_terminate": {"type": "hyperband", "max_iter": 9}},
     "sweep.early_terminate", "min_iter"),
    ({**TUTORIAL, "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 1}},
     "sweep.early_terminate.eta", "> 1"),
    ({**TUTORIAL, "metric": {"name": "valid_loss", "impute": "mean"}}, "sweep.metric.impute",
     "allowed: latest, best or worst"),
    ({**TUTORIAL, "metric": {"name": "valid_loss", "goal_": "minimize"}}, "sweep.metric",
     "goal_ not allowed"),
    ({**TUTORIAL, "description": 3}, "sweep.description", "must be a string, got 3"),
])
def test_top_level_mistakes_name_the_key(app_cfg, given, key, words):
    err = refused(given, app_cfg)
    assert err.key == key
    assert words in err.detail


def test_a_method_given_to_hydra_replaces_the_file_method_and_is_checked(app_cfg):
    spec = load_spec(TUTORIAL, app_cfg, default_name="s", method_override="random")
    assert spec.method == "random" and spec.raw["method"] == "random"
    assert refused(TUTORIAL, app_cfg, method_override="best").key == "hydra.sweeper.method"


def test_without_a_metric_the_sweep_minimizes_valid_loss(app_cfg):
    spec = load_spec({"method": "grid", "parameters": {"arch.dropout": {"values": [0.1]}}},
                     app_cfg, default_name="s")
    assert (spec.metric_name, spec.goal) == ("valid_loss", "minimize")
    assert spec.raw["metric"] == {"name": "valid_loss", "goal": "minimize"}


def test_a_performance_metric_is_accepted_when_the_trainer_logs_it(app_cfg):
    cfg = OmegaConf.merge(app_cfg, {"trainer": {"performance_metrics": ["accuracy"]}})
    spec = load_spec({**TUTORIAL, "metric": {"name": "valid_perf_accuracy", "goal": "maximize",
                                             "target": 0.9}}, cfg, default_name="s")
    assert (spec.metric_name, spec.goal, spec.target) == ("valid_perf_accuracy", "maximize", 0.9)


def test_hyperband_early_termination_and_run_cap_are_kept(app_cfg):
    et = {"type": "hyperband", "min_iter": 1, "eta": 2}
    spec = load_spec({**TUTORIAL, "run_cap": 5, "early_terminate": et,
                      "description": "d", "project": "p", "entity": "e",
                      "program": "knowit-app", "command": ["${program}", "${args_no_hyphens}"]},
                     app_cfg, default_name="s")
    assert spec.run_cap == 5 and spec.early_terminate == et
    assert spec.raw["command"] == ["${program}", "${args_no_hyphens}"]
    assert spec.raw["project"] == "p"


# --------------------------------------------------------------------------- parameters

@pytest.mark.parametrize("spec", [
    {"values": [0.1, 0.3]},
    {"value": 0.2},
    {"values": [0.1, 0.3], "probabilities": [0.25, 0.75]},
    {"distribution": "int_uniform", "min": 0, "max": 1},
    {"min": 0, "max": 1},
    {"distribution": "uniform", "min": 0.0, "max": 0.5},
    {"min": 0.0, "max": 0.5},
    {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
    {"distribution": "log_uniform_values", "min": 0.01, "max": 0.5},
    {"distribution": "q_log_uniform_values", "min": 0.01, "max": 0.5, "q": 0.01},
    {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 0.5},
    {"distribution": "normal", "mu": 0.2, "sigma": 0.05},
    {"distribution": "q_normal", "mu": 0.2, "sigma": 0.05, "q": 0.05},
    {"distribution": "log_normal", "mu": -2.0, "sigma": 0.5},
    {"distribution": "q_log_normal", "mu": -2.0, "sigma": 0.5, "q": 0.01},
    {"distribution": "beta", "a": 2.0, "b": 5.0},
    {"distribution": "q_beta", "a": 2.0, "b": 5.0, "q": 0.1},
])
def test_every_wandb_distribution_is_accepted(app_cfg, spec):
    loaded = load_spec(sweep({"arch.dropout": spec}), app_cfg, default_name="s")
    assert loaded.parameters == {"arch.dropout": spec}


@pytest.mark.parametrize("spec, field, words", [
    ({"parameters": {"dropout": {"values": [0.1]}}}, "", "dotted"),
    ({"values": []}, ".values", "must be a non-empty list"),
    ({"min": 0.5, "max": 0.1}, "", "not less than max"),
    ({"min": 0.5, "max": 0.5}, "", "not less than max"),
    ({"distribution": "int_uniform", "min": 0.5, "max": 3}, ".min",
     "must be an integer for int_uniform, got 0.5"),
    ({"values": [0.1, 0.2], "probabilities": [1.0]}, "", "not the same length"),
    ({"values": [0.1, 0.2], "probabilities": [0.5, 0.6]}, "", "sum to 1"),
    ({"values": [0.1, 0.2], "probabilities": [-0.5, 1.5]}, ".probabilities",
     "each item must be a number >= 0"),
    ({"distribution": "log_uniform", "min": -5, "max": 0}, "", "log_uniform_values"),
    ({"distribution": "log_uniform_values", "min": 0.0, "max": 0.5}, ".min",
     "must be a number > 0"),
    ({"distribution": "gamma"}, "", "unknown distribution"),
    ({"distribution": "uniform", "min": 0.0}, "", "needs max for uniform"),
    ({"values": [0.1], "min": 0.0}, "", "min not allowed for categorical; allowed: values"),
    ({"min": "0.1", "max": 0.5}, ".min", "must be a number"),
    ({"values": ["high"]}, "", "does not fit arch.dropout"),
    ("0.1,0.2", "", "mapping"),
])
def test_parameter_mistakes_name_the_parameter_and_field(app_cfg, spec, field, words):
    """W&B's own schema checks the spec; the message names the parameter and its field."""
    err = refused(sweep({"arch.dropout": spec}), app_cfg)
    assert err.key == f"sweep.parameters.arch.dropout{field}"
    assert words in err.detail


def test_values_must_fit_the_field_type(app_cfg):
    err = refused(sweep({"data.batch_size": {"values": [64, "big"]}}), app_cfg)
    assert err.key == "sweep.parameters.data.batch_size" and "'big'" in err.detail
    err = refused(sweep({"data.batch_size": {"min": 16.0, "max": 256.0}}), app_cfg)
    assert "uniform draws floats" in err.detail
    err = refused(sweep({"data.batch_size": {"values": [None]}}), app_cfg)
    assert "None" in err.detail
    # integer draws fit an integer field; lists fit a list field
    load_spec(sweep({"data.batch_size": {"min": 16, "max": 256},
                     "data.limit": {"values": [None, 5]},
                     "data.in_chunk": {"values": [[-16, 0], [-32, 0]]},
                     "trainer.max_epochs": {"distribution": "q_uniform", "min": 2, "max": 10,
                                            "q": 2}}), app_cfg, default_name="s")


def test_keys_must_exist_except_entries_of_dict_fields(app_cfg):
    err = refused(sweep({"arch.dropuot": {"values": [0.1]}}), app_cfg)
    assert err.key == "sweep.parameters.arch.dropuot" and "not a key" in err.detail
    spec = load_spec(sweep({"trainer.optim_kwargs.weight_decay": {"values": [0.0, 0.01]}}),
                     app_cfg, default_name="s")
    assert list(spec.parameters) == ["trainer.optim_kwargs.weight_decay"]


def test_settings_of_the_sweep_itself_cannot_be_swept(app_cfg):
    err = refused(sweep({"model_name": {"values": ["a", "b"]}}), app_cfg)
    assert err.key == "sweep.parameters.model_name" and "fixed override" in err.detail


def test_config_groups_sweep_option_names(app_cfg):
    spec = load_spec(sweep({"arch": {"values": ["mlp", "cnn"]},
                            "arch.dropout": {"values": [0.1, 0.3]}}), app_cfg, default_name="s")
    assert spec.parameters["arch"] == {"values": ["mlp", "cnn"]}
    err = refused(sweep({"arch": {"values": ["mlp", "transformer"]}}), app_cfg)
    # Every shipped option is listed, whatever others are added (custom, ...).
    assert err.key == "sweep.parameters.arch"
    assert all(f"{o}," in err.detail or err.detail.endswith(o) for o in ("cnn", "lstm", "mlp"))
    err = refused(sweep({"arch": {"min": 0, "max": 3}}), app_cfg)
    assert "config group" in err.detail


def test_fields_of_swept_options_are_checked_against_every_option(app_cfg):
    # the app config has arch=mlp, but the sweep runs cnn and tcn, which both have num_filters
    spec = load_spec(sweep({"arch": {"values": ["cnn", "tcn"]},
                            "num_filters": {"values": [16, 32]}}), app_cfg, default_name="s")
    assert list(spec.parameters) == ["arch", "arch.num_filters"]
    err = refused(sweep({"arch": {"values": ["mlp", "cnn"]},
                         "arch.num_filters": {"values": [16, 32]}}), app_cfg)
    assert err.key == "sweep.parameters.arch.num_filters" and "'mlp'" in err.detail


def test_method_specific_limits(app_cfg):
    err = refused({**TUTORIAL, "parameters": {"arch.dropout": {"min": 0.0, "max": 0.5}}},
                  app_cfg)
    assert "grid search cannot use uniform" in err.detail
    err = refused(sweep({"arch.dropout": {"values": [0.1, 0.2], "probabilities": [0.5, 0.5]}},
                        method="bayes"), app_cfg)
    assert "probabilities" in err.detail
    err = refused(sweep({"arch.dropout": {"value": 0.1}}, method="bayes"), app_cfg)
    assert err.key == "sweep.parameters" and "varies" in err.detail


def test_command_line_parameters_add_to_and_replace_the_file(app_cfg):
    spec = load_spec(TUTORIAL, app_cfg, default_name="s",
                     extra_parameters={"arch.dropout": {"values": [0.7]},
                                       "arch.depth": {"values": [2, 4]}})
    assert list(spec.parameters) == ["arch.dropout", "data.batch_size", "trainer.learning_rate",
                                 "arch.depth"]
    assert spec.parameters["arch.dropout"] == {"values": [0.7]}
    err = refused(TUTORIAL, app_cfg, extra_parameters={"arch.depth": {"values": ["deep"]}})
    assert err.key == "arch.depth"
    err = refused({**TUTORIAL, "parameters": {**TUTORIAL["parameters"],
                                              "arch.dropout": {"values": [0.1]}}}, app_cfg)
    assert "given twice" in err.detail


def test_the_target_follows_the_goal(app_cfg):
    low = load_spec({**TUTORIAL, "metric": {"name": "valid_loss", "target": 0.1}}, app_cfg,
                    default_name="s")
    assert low.reached_target(0.1) and low.reached_target(0.05)
    assert not low.reached_target(0.2) and not low.reached_target(None)
    high = load_spec({**TUTORIAL, "metric": {"name": "valid_loss", "goal": "maximize",
                                             "target": 0.9}}, app_cfg, default_name="s")
    assert high.reached_target(0.95) and not high.reached_target(0.5)
    assert not high.reached_target(float("nan"))
    assert not load_spec(TUTORIAL, app_cfg, default_name="s").reached_target(-1e9)


def test_to_plain_turns_engine_values_into_python():
    got = to_plain({"a": np.float64(0.5), "b": np.int64(3), "c": np.bool_(True),
                    "d": np.array([1, 2]), "e": (np.str_("x"), None), 1: [np.float32(0.25)]})
    assert got == {"a": 0.5, "b": 3, "c": True, "d": [1, 2], "e": ["x", None], "1": [0.25]}
    assert [type(got[k]) for k in "abc"] == [float, int, bool]
    assert type(got["e"][0]) is str
    assert to_plain(OmegaConf.create({"x": [1]})) == {"x": [1]}
    with pytest.raises(TypeError):
        to_plain(object())


# --------------------------------------------------------------------------- Hydra grammar

def test_hydra_choices_and_group_options_become_values():
    params, fixed = parameters_from_overrides(
        ["arch=mlp,cnn", "arch.dropout=choice(0.0,0.5)", "data.limit=null,5",
         "arch.activations='ReLU','Tanh'"], "grid")
    assert params == {"arch": {"values": ["mlp", "cnn"]},
                      "arch.dropout": {"values": [0.0, 0.5]},
                      "data.limit": {"values": [None, 5]},
                      "arch.activations": {"values": ["ReLU", "Tanh"]}}
    assert fixed == []
    params, _ = parameters_from_overrides(["arch=glob(*,exclude=[lstm,tcn,custom])"], "grid")
    assert params == {"arch": {"values": ["cnn", "mlp"]}}


def test_other_overrides_are_fixed_and_kept_verbatim():
    given = ["sweep=tutorial_grid", "model_name=x", "trainer.max_epochs=1", "+foo=bar",
             "~data.limit", "hydra.sweeper.method=random", "data.in_chunk=[-16,0]"]
    params, fixed = parameters_from_overrides([*given, "arch.depth=2,3"], "grid")
    assert fixed == given
    assert params == {"arch.depth": {"values": [2, 3]}}


def test_ranges_are_values_for_grid_and_int_uniform_for_random():
    assert parameters_from_overrides(["arch.depth=range(1,4)"], "grid")[0] == {
        "arch.depth": {"values": [1, 2, 3]}}
    assert parameters_from_overrides(["arch.depth=range(1,4)"], "random")[0] == {
        "arch.depth": {"distribution": "int_uniform", "min": 1, "max": 3}}
    assert parameters_from_overrides(["arch.depth=range(2,10,4)"], "bayes")[0] == {
        "arch.depth": {"values": [2, 6]}}
    assert parameters_from_overrides(["arch.dropout=range(0,0.5,0.25)"], "random")[0] == {
        "arch.dropout": {"values": [0.0, 0.25]}}


def test_intervals_become_distributions_and_grid_refuses_them():
    params, _ = parameters_from_overrides(
        ["arch.dropout=interval(0,0.5)", "trainer.learning_rate=tag(log,interval(1e-4,1e-1))",
         "arch.depth=tag(int,interval(1,5))", "arch.width=tag(log,int,interval(16,512))"],
        "bayes")
    assert params == {
        "arch.dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
        "trainer.learning_rate": {"distribution": "log_uniform_values", "min": 1e-4,
                                  "max": 0.1},
        "arch.depth": {"distribution": "int_uniform", "min": 1, "max": 5},
        "arch.width": {"distribution": "q_log_uniform_values", "min": 16, "max": 512, "q": 1},
    }
    with pytest.raises(ConfigError) as info:
        parameters_from_overrides(["arch.depth=2,3", "arch.dropout=interval(0,0.5)"], "grid")
    assert info.value.key == "hydra.sweeper.method"
    assert "arch.dropout" in info.value.detail and "grid" in info.value.detail


@pytest.mark.parametrize("overrides, key", [
    (["sweep=a,b"], "sweep"),
    (["hydra.job.chdir=true,false"], "hydra.job.chdir"),
    (["arch.depth=shuffle(1,2)"], "arch.depth"),
    (["arch.depth=1,2", "arch.depth=3,4"], "arch.depth"),
    (["arch.dropout=tag(fast,interval(0,1))"], "arch.dropout"),
    (["arch.depth=range(5,1)"], "arch.depth"),
    (["data.limit=glob(*)"], "data.limit"),
])
def test_grammar_mistakes_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        parameters_from_overrides(overrides, "random")
    assert info.value.key == key


def test_grammar_parameters_pass_the_sweep_checks(app_cfg):
    params, fixed = parameters_from_overrides(
        ["arch=cnn,tcn", "arch.num_filters=16,32", "arch.dropout=interval(0,0.5)",
         "data.batch_size=range(16,257)", "model_name=m"], "random")
    spec = load_spec({}, app_cfg, default_name="m", method_override="random",
                     extra_parameters=params)
    assert spec.parameters["data.batch_size"] == {"distribution": "int_uniform", "min": 16,
                                                  "max": 256}
    assert fixed == ["model_name=m"]


# --------------------------------------------------------------------------- run names

def test_run_names_follow_the_knowit_tutorial():
    params = {"arch.dropout": 0.0, "data.batch_size": 64, "trainer.learning_rate": 0.001}
    assert run_name(params) == "batch_size_64-dropout_0.0-learning_rate_0.001"
    assert run_name({"trainer.learning_rate": 1e-05, "data.shuffle_train": True,
                     "arch.output_activation": None, "arch": "cnn"}) == (
        "arch_cnn-learning_rate_1e-05-output_activation_null-shuffle_train_True")
    assert run_name({"arch.dropout": np.float64(0.2)}) == "dropout_0.2"


def test_keys_sharing_a_leaf_are_named_in_full():
    assert run_name({"data.seed": 1, "trainer.seed": 2, "arch.depth": 3}) == (
        "data.seed_1-depth_3-trainer.seed_2")


def test_run_names_are_safe_directory_names():
    name = run_name({"data.name": "my data/v1", "data.in_chunk": [-16, 0]})
    assert name == "in_chunk__-16,_0_-name_my_data_v1"
    assert check_name("run", name) == name
    assert check_name("run", run_name({"_private": 1})) == "run_private_1"


def test_long_run_names_are_cut_with_a_stable_hash():
    params = {f"trainer.optim_kwargs.k{i}": 0.123456789 for i in range(20)}
    name = run_name(params)
    assert len(name) == 200 and check_name("run", name) == name
    assert name == run_name(dict(params))  # stable across calls
    other = run_name({**params, "trainer.optim_kwargs.k19": 0.5})
    assert other != name and other[:150] == name[:150]


def test_run_names_are_unique_against_taken_names():
    params = {"arch.dropout": 0.1}
    assert run_name(params, taken=["dropout_0.1"]) == "dropout_0.1-2"
    assert run_name(params, taken=["DROPOUT_0.1", "dropout_0.1-2"]) == "dropout_0.1-3"
    long = {f"trainer.optim_kwargs.k{i}": 0.123456789 for i in range(20)}
    first = run_name(long)
    second = run_name(long, taken=[first])
    assert second.endswith("-2") and len(second) == 200 and second != first


# --------------------------------------------------------------------------- overrides

@pytest.mark.parametrize("value", [
    None, True, False, 0, -3, 0.1, 1e-05, 1e16, 0.30000000000000004, float("inf"), "ReLU",
    "a b", "1", "true", "null", "it's", "x=y", "a,b", "", "32-true", "/tmp/data.csv",
    [1, "x", None], [[-16, 0]], {"weight_decay": 0.01, "betas": [0.9, 0.99]},
])
def test_override_values_read_back_the_same(value):
    text = override_value(value)
    parsed = OverridesParser.create().parse_overrides([f"k={text}"])[0]
    assert parsed.value() == value and type(parsed.value()) is type(value)


def test_override_value_converts_numpy_and_renders_hydra_keywords():
    assert override_value(np.float64(0.001)) == "0.001"
    assert override_value(np.int64(64)) == "64"
    assert [override_value(v) for v in (None, True, float("nan"))] == ["null", "true", "nan"]


def test_overrides_compose_into_the_proposed_config(app_cfg):
    params = {"arch.num_filters": 16, "arch": "cnn", "arch.dropout": 0.25,
              "data.limit": None, "trainer.optim_kwargs.weight_decay": 0.01,
              "arch.activations": "Tanh"}
    overrides = overrides_for(params, app_cfg)
    assert overrides == ["arch=cnn", "arch.num_filters=16", "arch.dropout=0.25",
                         "data.limit=null", "+trainer.optim_kwargs.weight_decay=0.01",
                         "arch.activations=Tanh"]
    cfg = compose_config(overrides)
    assert cfg.arch.name == "CNN" and cfg.arch.num_filters == 16
    assert cfg.arch.dropout == 0.25 and cfg.data.limit is None
    assert cfg.trainer.optim_kwargs == {"weight_decay": 0.01}
    assert copy.deepcopy(params) == params  # not changed in place


# --------------------------------------------------------------------------- cost and safety

def test_the_sweep_modules_import_neither_torch_nor_wandb():
    code = ("import sys, knowit_app.sweeps.spec, knowit_app.sweeps.grammar, "
            "knowit_app.sweeps.naming, knowit_app.sweeps.engine; "
            "print(sorted(m for m in ('torch', 'lightning', 'wandb', 'sweeps') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_checking_group_options_leaves_a_running_hydra_alone(app_cfg):
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    option_config.cache_clear()
    with initialize_config_module("knowit_app.conf", version_base="1.3"):
        load_spec(sweep({"arch": {"values": ["lstm", "mlp"]}, "width": {"values": [8]}}),
                  app_cfg, default_name="s")
        assert GlobalHydra.instance().is_initialized()
