"""A sweep in W&B's own format, checked against W&B's schema and the app config before any run.

A sweep file is the dict a user would give ``wandb.sweep`` (name, method, metric, parameters,
run_cap, early_terminate, ...), so the same file drives the local engine and a W&B server.
Parameter keys are app config keys: dotted paths (``arch.dropout``), config-group names whose
values are option names (``arch: {values: [mlp, cnn]}``), or the KnowIt tutorial's bare names
(``dropout``), resolved here to the one dotted key that ends with that name.

Each job has its module: W&B's own schema (:mod:`.spec_schema`), keys and values against the
app config (:mod:`.spec_app_keys`); this one assembles the checked :class:`SweepSpec`.
Every mistake we can see up front is reported here as a one-line :class:`ConfigError` naming
the key, because the alternative is a sweep that fails 27 times, once per run, or worse, one
that W&B's own validation silently trims (it drops nested ``parameters:`` blocks).
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from knowit_app.config.checks import goal_warning, nonfinite_numbers
from knowit_app.config.compose import sweepable_groups
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import MAX_NAME_LENGTH, check_name
from knowit_app.sweeps.spec_app_keys import UNSWEEPABLE, AppShape, check_fits, check_group
from knowit_app.sweeps.spec_schema import (
    METHODS,
    check_parameter,
    check_top_level,
    distribution_of,
)

log = logging.getLogger("knowit_app")

__all__ = ["UNSWEEPABLE", "SweepSpec", "distribution_of", "load_spec", "to_plain"]

# Top-level keys of W&B's format that this app acts on (W&B's launch/scheduler keys are not).
TOP_LEVEL_KEYS = ("name", "method", "metric", "parameters", "run_cap", "early_terminate",
                  "description", "command", "program", "project", "entity")
# What the training logs per epoch (see knowit_app.training.module).
METRIC_FORMS = "train_loss, valid_loss, train_perf_<metric> or valid_perf_<metric>"
_METRIC_NAME = re.compile(r"^(train|valid)_(loss|perf_[A-Za-z0-9_]+)$")


@dataclass
class SweepSpec:
    """A checked sweep: W&B's config with every parameter key resolved to an app config key."""

    name: str
    method: str
    metric_name: str
    goal: str
    target: float | None
    parameters: dict[str, dict]
    run_cap: int | None
    early_terminate: dict | None
    raw: dict
    # given key -> resolved key, for the keys that were resolved (``dropout`` -> ``arch.dropout``)
    aliases: dict[str, str] = field(default_factory=dict)

    def wandb_config(self) -> dict:
        """The config for the ``sweeps`` engine or a W&B server (dotted keys, JSON-safe).

        Dotted keys reach the agent's ``${args_no_hyphens}`` as ``arch.dropout=0.2``, which
        Hydra reads as is.
        """
        return copy.deepcopy(self.raw)

    def reached_target(self, score: float | None) -> bool:
        """W&B's ``metric.target``: the sweep ends once any run scores at least this well."""
        if self.target is None or score is None or math.isnan(score):
            return False
        return score <= self.target if self.goal == "minimize" else score >= self.target


def to_plain(value: Any) -> Any:
    """Python int/float/bool/str/None/list/dict for what the engine or OmegaConf hands back.

    The ``sweeps`` engine returns numpy scalars; YAML, JSON and override strings need plain
    values (``numpy.float64(0.1)`` would be written as a tagged object).
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, (DictConfig, ListConfig)):
        return to_plain(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    raise TypeError(f"cannot keep a {type(value).__name__} ({value!r}) in a sweep record")


def _check_metric(metric: Any, app_cfg: DictConfig, params: Mapping[str, Any]) -> dict:
    """Our rules for the metric (W&B's schema has checked its keys and types already)."""
    if metric is None:
        return {"name": "valid_loss", "goal": "minimize"}
    metric = {k: v for k, v in metric.items() if v is not None}
    name = metric["name"]
    if not _METRIC_NAME.match(name):
        raise ConfigError("sweep.metric.name", f"{name!r} is not a metric the runs log; use "
                                               f"{METRIC_FORMS}")
    metric.setdefault("goal", "minimize")
    warning = goal_warning("sweep.metric.goal", name, metric["goal"])
    if warning:
        log.warning(warning)
    perf = name.split("_perf_", 1)[1] if "_perf_" in name else None
    logged = OmegaConf.select(app_cfg, "trainer.performance_metrics", default=None)
    swept = {"trainer", "trainer.performance_metrics"} & set(params)
    if perf is not None and logged is not None and not swept and perf not in list(logged):
        raise ConfigError("sweep.metric.name", f"{name} is never logged: "
                                               f"trainer.performance_metrics is "
                                               f"{list(logged)}; add {perf} there or use "
                                               "valid_loss")
    return metric


def _check_hyperband(value: Mapping[str, Any] | None) -> dict | None:
    """What our engine needs of hyperband beyond W&B's schema: brackets it can judge at."""
    if value is None:
        return None
    label = "sweep.early_terminate"
    for key in ("max_iter", "s"):
        if key in value and value[key] < 1:
            raise ConfigError(f"{label}.{key}", f"must be an integer >= 1, got {value[key]!r}")
    eta = value.get("eta", 3)
    if "min_iter" not in value and value["max_iter"] / eta < 1:
        raise ConfigError(f"{label}.max_iter", f"max_iter {value['max_iter']} / eta {eta} "
                                               "< 1 leaves no epoch to judge runs at; raise "
                                               "max_iter or lower eta")
    return dict(value)


def _plain_sweep(sweep_cfg: Any) -> dict[str, Any]:
    if sweep_cfg is None:
        return {}
    try:
        given = to_plain(sweep_cfg)
    except Exception as exc:  # unresolvable interpolation, odd types
        raise ConfigError("sweep", f"cannot read the sweep config: "
                                   f"{str(exc).splitlines()[0]}") from exc
    if not isinstance(given, dict):
        raise ConfigError("sweep", f"expected a mapping in W&B's sweep format, got {given!r}")
    # ``key: null`` reads as "not given", as W&B's optional keys do
    return {k: v for k, v in given.items() if v is not None}


def load_spec(sweep_cfg: Mapping[str, Any] | None, app_cfg: DictConfig, *, default_name: str,
              method_override: str | None = None,
              extra_parameters: Mapping[str, Any] | None = None) -> SweepSpec:
    """Check a W&B sweep config against W&B's schema and the app config; resolve its keys.

    ``method_override`` (``hydra.sweeper.method``) replaces the file's method and
    ``extra_parameters`` (from Hydra's sweep grammar on the command line) add to or replace the
    file's parameters. Without a ``metric``, the sweep minimizes ``valid_loss``, which is also
    what the checkpoint keeps by default.
    """
    given = _plain_sweep(sweep_cfg)
    # NaN/inf in a sweep are as meaningless as in the app config (config.checks.check_finite).
    for key, value in nonfinite_numbers({"sweep": given, "hydra.sweeper.params":
                                         dict(extra_parameters or {})}, ""):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    unknown = sorted(set(given) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(f"sweep.{unknown[0]}", f"unknown key; allowed: "
                                                 f"{', '.join(TOP_LEVEL_KEYS)}")
    if "name" not in given and len(default_name) > MAX_NAME_LENGTH:  # made from model_name
        raise ConfigError("model_name", f"too long for the sweep's default name "
                          f"'<model_name>-<date>-<time>' ({len(default_name)} characters, at "
                          f"most {MAX_NAME_LENGTH}); shorten it or give sweep.name")
    name = check_name("sweep.name", given.get("name", default_name))

    if method_override is not None:
        method, method_key = method_override, "hydra.sweeper.method"
    else:
        method, method_key = given.get("method"), "sweep.method"
    if method not in METHODS:
        problem = "missing" if method is None else f"{method!r} is not a method"
        raise ConfigError(method_key, f"{problem}; use {', '.join(METHODS)}")
    check_top_level({**given, "method": method})

    labelled: list[tuple[str, str, Any]] = []  # (error label, given key, spec)
    file_params = given.get("parameters", {})
    if not isinstance(file_params, dict):
        raise ConfigError("sweep.parameters", f"expected a mapping of keys to specs, got "
                                              f"{file_params!r}")
    labelled += [(f"sweep.parameters.{k}", k, v) for k, v in file_params.items()]
    labelled += [(str(k), str(k), to_plain(v)) for k, v in (extra_parameters or {}).items()]
    if not labelled:
        raise ConfigError("sweep.parameters", "missing or empty; give at least one key to "
                                              "sweep, e.g. arch.dropout: {values: [0.1, 0.5]}")

    dists = {label: check_parameter(label, spec, method) for label, _, spec in labelled}
    groups = sweepable_groups()
    swept_groups = {key: check_group(label, key, spec, dists[label], groups[key])
                    for label, key, spec in labelled if key in groups}
    shape = AppShape(app_cfg, swept_groups)

    parameters: dict[str, dict] = {}
    labels: dict[str, str] = {}
    aliases: dict[str, str] = {}
    from_file = {f"sweep.parameters.{k}" for k in file_params}
    for label, key, spec in labelled:
        resolved = shape.resolve(label, key)
        if resolved != key:
            aliases[key] = resolved
        if resolved in parameters and (label in from_file) == (labels[resolved] in from_file):
            raise ConfigError(label, f"{resolved} is given twice (as {labels[resolved]} too); "
                                     "give each key once")
        if resolved not in groups:
            check_fits(label, resolved, spec, dists[label], shape)
        parameters[resolved] = dict(spec)  # the command line replaces the file's spec
        labels[resolved] = label

    if method == "bayes" and all(distribution_of(s) == "constant" for s in parameters.values()):
        raise ConfigError("sweep.parameters", "bayes needs at least one parameter that varies; "
                                              "give values or a distribution")
    metric = _check_metric(given.get("metric"), app_cfg, parameters)
    early = _check_hyperband(given.get("early_terminate"))

    raw = {k: v for k, v in given.items() if k not in ("parameters", "metric")}
    raw.update(name=name, method=method, metric=metric, parameters=parameters)
    if early is not None:
        raw["early_terminate"] = early
    return SweepSpec(name=name, method=method, metric_name=metric["name"], goal=metric["goal"],
                     target=metric.get("target"), parameters=parameters,
                     run_cap=given.get("run_cap"), early_terminate=early, raw=raw,
                     aliases=aliases)
