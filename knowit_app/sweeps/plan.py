"""A sweep worked out before its first run: options, spec, app config and controller checked.

Everything here is read or validated; nothing is started and nothing is written, so a bad
option or sweep config fails in one line before any work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.knowit_wandb_sweeper.config import WandbSweeperConf
from knowit_app.config.paths import check_writable_dir
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import ExperimentLayout
from knowit_app.sweeps.controllers import Controller, make_controller
from knowit_app.sweeps.grammar import parameters_from_overrides
from knowit_app.sweeps.naming import overrides_for
from knowit_app.sweeps.spec import SweepSpec, distribution_of, load_spec

MODES = ("auto", "offline", "online")


def grid_size(spec: SweepSpec) -> int:
    """How many points a grid holds, as the ``sweeps`` engine enumerates them (int_uniform
    and q_uniform ranges become their values; a constant is one)."""
    import numpy as np

    size = 1
    for p in spec.parameters.values():
        kind = distribution_of(p)
        if kind == "categorical":
            size *= len(p["values"])
        elif kind == "int_uniform":
            size *= max(0, int(p["max"]) - int(p["min"]) + 1)
        elif kind == "q_uniform":
            size *= len(np.arange(p["min"], p["max"], p["q"]))
    return size


def size_line(spec: SweepSpec, count: int | None, records: Sequence[Any]) -> str:
    """One line, before the first run: how many runs the sweep holds and how many this
    invocation will run (so a 400,000-point grid does not start without a word)."""
    so_far = len(records)
    rerun = sum(str(r.state) == "running" for r in records)
    cap = spec.run_cap
    if spec.method == "grid":
        total = grid_size(spec) if cap is None else min(grid_size(spec), cap)
        held = f"a grid of {total:,} runs" + (f" (run_cap {cap})" if cap is not None else "")
        left = max(0, total - so_far) + rerun
    else:
        held = (f"a {spec.method} search of run_cap {cap:,} runs" if cap is not None
                else f"a {spec.method} search: unbounded")
        left = None if cap is None else max(0, cap - so_far) + rerun
    if count is not None:
        plan = f"count={int(count):,}" if left is None else f"up to {min(int(count), left):,}"
        plan += f" (hydra.sweeper.count={int(count)})" if left is not None else ""
    else:
        plan = "runs until the controller ends it" if left is None else f"up to {left:,}"
    done = f", {so_far:,} recorded so far" if so_far else ""
    return f"sweep {spec.name}: {held}{done}; this invocation runs {plan}"


@dataclass
class SweepPlan:
    """Everything fixed for the whole sweep, worked out before the first run."""

    spec: SweepSpec
    fixed: list[str]
    sweep_dir: Path
    app_cfg: DictConfig
    controller: Controller


def check_options(options: WandbSweeperConf) -> None:
    """One clear line per bad ``hydra.sweeper.*`` value, before any work."""
    if options.mode not in MODES:
        raise ConfigError("hydra.sweeper.mode",
                          f"{options.mode!r} is not allowed; allowed: {', '.join(MODES)}")
    if int(options.parallel) < 1:
        raise ConfigError("hydra.sweeper.parallel", "must be a positive integer")
    if options.count is not None and int(options.count) < 1:
        raise ConfigError("hydra.sweeper.count", "must be a positive integer or null")
    if not 0.0 <= float(options.max_failure_rate) <= 1.0:
        raise ConfigError("hydra.sweeper.max_failure_rate", "must lie in [0, 1]")
    stale = float(options.stale_after_min)
    if not math.isfinite(stale) or stale <= 0:
        raise ConfigError("hydra.sweeper.stale_after_min",
                          f"must be a positive number of minutes, got {options.stale_after_min}")


def default_method(arguments: Sequence[str]) -> str:
    """Grid unless a Hydra-grammar parameter is continuous (an interval)."""
    return "random" if any("interval(" in a for a in arguments) else "grid"


def example_values(spec: SweepSpec) -> dict[str, Any]:
    """One plausible value per parameter, to check the training config before the sweep."""
    values: dict[str, Any] = {}
    for key, p in spec.parameters.items():
        if "values" in p:
            values[key] = p["values"][0]
        elif "value" in p:
            values[key] = p["value"]
        elif "min" in p:
            values[key] = p["min"]
        elif "mu" in p:
            values[key] = p["mu"]
    return values


def plan_sweep(options: WandbSweeperConf, hydra_context: HydraContext, config: DictConfig,
               arguments: list[str]) -> SweepPlan:
    """Validate the sweep and the app config for it; start nothing, write nothing."""
    from knowit_app.training.run import plan_training

    check_options(options)
    grammar_args = list(arguments)
    for key, value in (options.params or {}).items():
        grammar_args.append(f"{key}={value}")
    method = options.method
    params, fixed = parameters_from_overrides(grammar_args,
                                              method or default_method(grammar_args))
    loader = hydra_context.config_loader
    cfg = loader.load_sweep_config(config, fixed)
    default_name = f"{cfg.model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep_file = OmegaConf.to_container(cfg.sweep, resolve=True)
    if method is None and not sweep_file.get("method"):
        method = default_method(grammar_args)  # parameters only from the command line
    spec = load_spec(sweep_file, cfg, default_name=default_name, method_override=method,
                     extra_parameters=params)
    check_writable_dir("exp_dir", ExperimentLayout(cfg.exp_dir).sweep_dir(cfg.model_name,
                                                                          spec.name))
    if spec.method in ("random", "bayes") and options.count is None \
            and spec.run_cap is None and options.mode != "online":
        raise ConfigError("hydra.sweeper.count", f"a {spec.method} search never ends by "
                          "itself; set hydra.sweeper.count or the sweep's run_cap")
    # Check the training itself (data, arch, trainer) with one example run's values.
    example = loader.load_sweep_config(config, fixed + overrides_for(example_values(spec), cfg))
    with read_write(example), open_dict(example):
        del example["hydra"]  # as in a job: the task never sees the hydra node
    plan_training(example)
    sweep_dir = ExperimentLayout(cfg.exp_dir).sweep_dir(cfg.model_name, spec.name)
    controller = make_controller(spec, options, sweep_dir)
    return SweepPlan(spec, fixed, sweep_dir, cfg, controller)
