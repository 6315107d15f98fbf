"""A sweep in W&B's own format, checked against W&B's schema and the app config before any run.

A sweep file is the dict a user would give ``wandb.sweep`` (name, method, metric, parameters,
run_cap, early_terminate, ...), so the same file drives the local engine and a W&B server.
Parameter keys are app config keys: dotted paths (``arch.dropout``), config-group names whose
values are option names (``arch: {values: [mlp, cnn]}``), or the KnowIt tutorial's bare names
(``dropout``), resolved here to the one dotted key that ends with that name.

Every mistake we can see up front is reported here as a one-line :class:`ConfigError` naming
the key, because the alternative is a sweep that fails 27 times, once per run, or worse, one
that W&B's own validation silently trims (it drops nested ``parameters:`` blocks).
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import check_name

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
TOP_LEVEL_KEYS = ("name", "method", "metric", "parameters", "run_cap", "early_terminate",
                  "description", "command", "program", "project", "entity")
METRIC_KEYS = ("name", "goal", "target", "impute", "impute_while_running")
IMPUTE = ("latest", "best", "worst")
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")
# What the training logs per epoch (see knowit_app.training.module).
METRIC_FORMS = "train_loss, valid_loss, train_perf_<metric> or valid_perf_<metric>"
_METRIC_NAME = re.compile(r"^(train|valid)_(loss|perf_[A-Za-z0-9_]+)$")
# Keys that say where and what the sweep is: one value per sweep, never swept.
UNSWEEPABLE = ("model_name", "exp_dir", "overwrite", "sweep", "hydra")

# W&B's distributions: name -> (required keys, optional keys). ``distribution`` is always
# allowed. The deprecated exponent forms (log_uniform, ...) are refused below.
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "categorical": (("values",), ()),
    "categorical_w_probabilities": (("values", "probabilities"), ()),
    "constant": (("value",), ()),
    "int_uniform": (("min", "max"), ()),
    "uniform": (("min", "max"), ()),
    "q_uniform": (("min", "max"), ("q",)),
    "log_uniform_values": (("min", "max"), ()),
    "q_log_uniform_values": (("min", "max"), ("q",)),
    "inv_log_uniform_values": (("min", "max"), ()),
    "normal": ((), ("mu", "sigma")),
    "q_normal": ((), ("mu", "sigma", "q")),
    "log_normal": ((), ("mu", "sigma")),
    "q_log_normal": ((), ("mu", "sigma", "q")),
    "beta": ((), ("a", "b")),
    "q_beta": ((), ("a", "b", "q")),
}
DEPRECATED = {"log_uniform": "log_uniform_values", "inv_log_uniform": "inv_log_uniform_values",
              "q_log_uniform": "q_log_uniform_values"}
GRID_DISTRIBUTIONS = ("categorical", "constant", "int_uniform", "q_uniform")
_POSITIVE_MIN = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values")


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

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether score ``a`` beats ``b`` under the goal; a missing or NaN score never wins."""
        if a is None or math.isnan(a):
            return False
        if b is None or math.isnan(b):
            return True
        return a < b if self.goal == "minimize" else a > b

    def reached_target(self, score: float | None) -> bool:
        """W&B's ``metric.target``: the sweep ends once any run scores at least this well."""
        if self.target is None or score is None or math.isnan(score):
            return False
        return score <= self.target if self.goal == "minimize" else score >= self.target

    def swept_keys(self) -> list[str]:
        """The app config keys each run sets, in the order of the sweep file."""
        return list(self.parameters)


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


# --------------------------------------------------------------------------- config groups

def config_groups() -> dict[str, list[str]]:
    """Sweepable config groups and their options: ``conf/<group>/*.yaml`` except ``sweep``."""
    root = resources.files("knowit_app.conf")
    groups = {}
    for entry in root.iterdir():
        if entry.is_dir() and entry.name != "sweep":
            options = sorted(f.name[:-5] for f in entry.iterdir() if f.name.endswith(".yaml"))
            if options:
                groups[entry.name] = options
    return dict(sorted(groups.items()))


@cache
def _option_config(group: str, option: str) -> DictConfig:
    """The app config composed with ``<group>=<option>``: the fields that option has.

    Uses Hydra's config loader directly rather than ``hydra.compose``, so that it works inside
    a running Hydra app (a sweeper) without touching its global state.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode
    from omegaconf import open_dict

    from knowit_app.config.schema import register_schemas

    register_schemas()
    loader = ConfigLoaderImpl(create_config_search_path("pkg://knowit_app.conf"))
    cfg = loader.load_configuration("config", [f"{group}={option}"], RunMode.RUN,
                                    from_shell=False)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


# --------------------------------------------------------------------------- helpers

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _nested(key: str, value: Any) -> dict:
    """``"a.b.c", v`` -> ``{"a": {"b": {"c": v}}}``."""
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _key_status(cfg: DictConfig, key: str) -> tuple[str, str]:
    """("present" | "addable" | "absent", the deepest existing parent of ``key``).

    A key is addable when its nearest existing parent is a plain dict field (such as
    ``trainer.optim_kwargs``): Hydra adds it with ``+key=value``; dataclass nodes refuse it.
    """
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in list(node.keys()):
            parent = ".".join(parts[:i])
            plain = isinstance(node, DictConfig) and OmegaConf.get_type(node) is dict
            return ("addable" if plain else "absent"), parent
        if i < len(parts) - 1:
            node = OmegaConf.select(node, part, throw_on_missing=False)
    return "present", ".".join(parts[:-1])


def _misfit(cfg: DictConfig, key: str, value: Any) -> str | None:
    """OmegaConf's complaint about setting ``key`` to ``value`` in ``cfg``, or None if it fits."""
    status, parent = _key_status(cfg, key)
    rest = key[len(parent) + 1:] if parent else key
    node = OmegaConf.select(cfg, parent, throw_on_missing=False) if parent else cfg
    target = node
    if status == "addable":
        target = copy.deepcopy(node)
        OmegaConf.set_struct(target, False)
    try:
        OmegaConf.merge(target, _nested(rest, value))
    except Exception as exc:  # omegaconf's ValidationError, KeyValidationError, ...
        return str(exc).splitlines()[0]
    return None


def _paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted key of a config (nodes and leaves), without the sweep and hydra nodes."""
    if not isinstance(node, DictConfig):
        return
    for key, child in node.items_ex(resolve=False):
        path = f"{prefix}{key}"
        if not prefix and key in ("sweep", "hydra"):
            continue
        yield path
        yield from _paths(child, f"{path}.")


def _schema_violations(config: dict) -> list[str]:
    """W&B's own JSON-schema check, from the ``sweeps`` package (imported only when needed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic v1-style config warnings on import
        from sweeps.config import schema_violations_from_proposed_config
    try:
        return schema_violations_from_proposed_config(config)
    except ValueError as exc:
        return [str(exc)]


# --------------------------------------------------------------------------- parameters

def distribution_of(spec: Mapping[str, Any]) -> str:
    """The distribution W&B infers for a parameter spec (``values`` -> categorical, ...)."""
    if "distribution" in spec:
        return str(spec["distribution"])
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        return "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) else "uniform"
    return ""


def _check_shape(label: str, spec: Any, method: str) -> str:
    """Check one parameter spec on its own; return its distribution."""
    if not isinstance(spec, Mapping):
        raise ConfigError(label, f"expected a mapping such as {{values: [...]}}, got {spec!r}")
    if "parameters" in spec:
        raise ConfigError(label, "nested parameters blocks are not supported (W&B silently "
                                 "drops them); use dotted keys instead, e.g. arch.dropout")
    dist = distribution_of(spec)
    if dist in DEPRECATED:
        raise ConfigError(label, f"{dist} takes base-e exponents and is deprecated by W&B; use "
                                 f"{DEPRECATED[dist]} with min/max as values")
    if dist not in DISTRIBUTIONS:
        given = f"unknown distribution {dist!r}" if dist else "no values, value or min/max"
        raise ConfigError(label, f"{given}; give values, value, min/max or a distribution "
                                 f"({', '.join(DISTRIBUTIONS)})")
    required, optional = DISTRIBUTIONS[dist]
    extra = sorted(set(spec) - set(required) - set(optional) - {"distribution"})
    if extra:
        allowed = ", ".join(required + optional) or "(no other keys)"
        raise ConfigError(label, f"{', '.join(extra)} not allowed with distribution {dist}; "
                                 f"allowed: {allowed}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise ConfigError(label, f"distribution {dist} needs {' and '.join(missing)}")
    _check_numbers(label, dist, spec)
    if method == "grid" and dist not in GRID_DISTRIBUTIONS:
        raise ConfigError(label, f"grid search cannot use {dist}; use values, value, "
                                 "int_uniform or q_uniform, or method random or bayes")
    if method == "bayes" and dist == "categorical_w_probabilities":
        raise ConfigError(label, "bayes cannot use probabilities (the sweeps engine fails on "
                                 "them); drop probabilities or use method random")
    return dist


def _check_numbers(label: str, dist: str, spec: Mapping[str, Any]) -> None:
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(label, f"values must be a non-empty list, got {values!r}")
    if "probabilities" in spec:
        probs = spec["probabilities"]
        if (not isinstance(probs, list) or not all(_is_number(p) and p >= 0 for p in probs)):
            raise ConfigError(label, f"probabilities must be a list of numbers >= 0, got "
                                     f"{probs!r}")
        if len(probs) != len(spec["values"]):
            raise ConfigError(label, f"{len(probs)} probabilities for {len(spec['values'])} "
                                     "values; give one probability per value")
        if not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise ConfigError(label, f"probabilities sum to {sum(probs):g}; they must sum to 1")
    for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
        if key in spec and not _is_number(spec[key]):
            raise ConfigError(label, f"{key} must be a number, got {spec[key]!r}")
    if dist == "int_uniform" and not (_is_int(spec["min"]) and _is_int(spec["max"])):
        raise ConfigError(label, f"int_uniform needs integer min and max, got "
                                 f"{spec['min']!r} and {spec['max']!r}; use uniform for floats")
    if "min" in spec and spec["min"] >= spec["max"]:
        raise ConfigError(label, f"min {spec['min']!r} is not less than max {spec['max']!r}")
    if dist in _POSITIVE_MIN and spec["min"] <= 0:
        raise ConfigError(label, f"{dist} needs min > 0 (values on a log scale), got "
                                 f"{spec['min']!r}")
    if "q" in spec and spec["q"] <= 0:
        raise ConfigError(label, f"q must be > 0, got {spec['q']!r}")
    for key in ("sigma", "a", "b"):
        if key in spec and spec[key] < 0:
            raise ConfigError(label, f"{key} must be >= 0, got {spec[key]!r}")


def _draws(dist: str, spec: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """(what the runs get, sample values of that type) to try on the app config."""
    if dist in ("categorical", "categorical_w_probabilities"):
        return "value", list(spec["values"])
    if dist == "constant":
        return "value", [spec["value"]]
    if dist == "int_uniform":
        return "int", [spec["min"], spec["max"]]
    q = spec.get("q", 1.0)
    if dist.startswith("q_") and _is_int(q):  # the engine returns ints for an integer q
        centre = {"q_normal": spec.get("mu", 0), "q_log_normal": math.exp(spec.get("mu", 0)),
                  "q_beta": 0.5}.get(dist)
        points = [spec["min"], spec["max"]] if centre is None else [centre]
        return "int", [int(round(p / q)) * q for p in points]
    if "min" in spec:
        return "float", [float(spec["min"]), float(spec["max"])]
    centre = {"normal": spec.get("mu", 0.0), "q_normal": spec.get("mu", 0.0),
              "log_normal": math.exp(spec.get("mu", 0.0)),
              "q_log_normal": math.exp(spec.get("mu", 0.0))}.get(dist, 0.5)
    return "float", [float(centre)]


# --------------------------------------------------------------------------- the loader

class _AppShape:
    """What the app config offers: its keys, its groups, and each swept option's fields."""

    def __init__(self, app_cfg: DictConfig, swept_groups: Mapping[str, list[str]]) -> None:
        self.app_cfg = app_cfg
        self.groups = config_groups()
        self.swept_groups = dict(swept_groups)
        self._paths: list[str] | None = None

    def configs_for(self, key: str) -> list[tuple[str | None, DictConfig]]:
        """The configs a key must fit: each swept option of its group, else the app config."""
        root = key.split(".", 1)[0]
        if "." in key and root in self.swept_groups:
            return [(opt, _option_config(root, opt)) for opt in self.swept_groups[root]]
        return [(None, self.app_cfg)]

    def paths(self) -> list[str]:
        if self._paths is None:
            found = set(_paths(self.app_cfg))
            for group, options in self.swept_groups.items():
                for option in options:
                    found.update(p for p in _paths(_option_config(group, option))
                                 if p.startswith(f"{group}."))
            self._paths = sorted(found)
        return self._paths

    def resolve(self, label: str, key: str) -> str:
        """A dotted key as is; a bare name -> the one dotted key ending with it."""
        if not isinstance(key, str) or not key:
            raise ConfigError(label, f"parameter keys must be non-empty strings, got {key!r}")
        if "." in key or key in self.groups or key in self.app_cfg:
            return key
        matches = [p for p in self.paths() if p.endswith(f".{key}")]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ConfigError(label, f"no app config key is named {key!r}; give a dotted key "
                                     "such as arch.dropout, data.batch_size or "
                                     "trainer.learning_rate")
        raise ConfigError(label, f"{key!r} is ambiguous: it could be {', '.join(matches)}; "
                                 "give one of these dotted keys")


def _check_group(label: str, group: str, spec: Mapping[str, Any], dist: str,
                 options: list[str]) -> list[str]:
    if dist not in ("categorical", "categorical_w_probabilities", "constant"):
        raise ConfigError(label, f"{group} is a config group: give option names with values, "
                                 f"e.g. {{values: [{', '.join(options[:2])}]}}")
    chosen = list(spec["values"]) if "values" in spec else [spec["value"]]
    for option in chosen:
        if option not in options:
            raise ConfigError(label, f"{option!r} is not a {group} option; options: "
                                     f"{', '.join(options)}")
    return [str(o) for o in chosen]


def _check_fits(label: str, key: str, spec: Mapping[str, Any], dist: str,
                shape: _AppShape) -> None:
    root = key.split(".", 1)[0]
    if root in UNSWEEPABLE:
        raise ConfigError(label, f"{root} says where and what the sweep is and cannot be "
                                 "swept; set it once, as a fixed override")
    what, samples = _draws(dist, spec)
    for option, cfg in shape.configs_for(key):
        status, _ = _key_status(cfg, key)
        if status == "absent":
            where = (f"the {root} option {option!r}" if option is not None
                     else "the app config")
            hint = (f"when {root} is swept, sweep only fields all its options have"
                    if option is not None else
                    "see `knowit-app --cfg job` for the keys (bare names like dropout work)")
            raise ConfigError(label, f"{key} is not a key of {where}; {hint}")
        for sample in samples:
            problem = _misfit(cfg, key, sample)
            if problem is None:
                continue
            if what == "value":
                raise ConfigError(label, f"value {sample!r} does not fit {key} ({problem}); "
                                         "give values of the field's type")
            raise ConfigError(label, f"{dist} draws {what}s, which {key} does not take "
                                     f"({problem}); use values, int_uniform or an integer q "
                                     "for integer fields")


def _check_metric(metric: Any, app_cfg: DictConfig, params: Mapping[str, Any]) -> dict:
    if metric is None:
        return {"name": "valid_loss", "goal": "minimize"}
    if not isinstance(metric, Mapping):
        raise ConfigError("sweep.metric", f"expected {{name: ..., goal: ...}}, got {metric!r}")
    unknown = sorted(set(metric) - set(METRIC_KEYS))
    if unknown:
        raise ConfigError(f"sweep.metric.{unknown[0]}", f"unknown key; allowed: "
                                                        f"{', '.join(METRIC_KEYS)}")
    metric = {k: v for k, v in metric.items() if v is not None}
    name = metric.get("name")
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        raise ConfigError("sweep.metric.name", f"{name!r} is not a metric the runs log; use "
                                               f"{METRIC_FORMS}")
    metric.setdefault("goal", "minimize")
    if metric["goal"] not in GOALS:
        raise ConfigError("sweep.metric.goal", f"{metric['goal']!r} is not a goal; use "
                                               "minimize or maximize")
    if "target" in metric and not _is_number(metric["target"]):
        raise ConfigError("sweep.metric.target", f"must be a number, got {metric['target']!r}")
    if metric.get("impute", "worst") not in IMPUTE:
        raise ConfigError("sweep.metric.impute", f"{metric['impute']!r} is not a strategy; "
                                                 f"use {', '.join(IMPUTE)}")
    if metric.get("impute_while_running", "false") not in (*IMPUTE, "false"):
        raise ConfigError("sweep.metric.impute_while_running",
                          f"{metric['impute_while_running']!r} is not a strategy; use "
                          f"{', '.join(IMPUTE)} or false")
    perf = name.split("_perf_", 1)[1] if "_perf_" in name else None
    logged = OmegaConf.select(app_cfg, "trainer.performance_metrics", default=None)
    swept = {"trainer", "trainer.performance_metrics"} & set(params)
    if perf is not None and logged is not None and not swept and perf not in list(logged):
        raise ConfigError("sweep.metric.name", f"{name} is never logged: "
                                               f"trainer.performance_metrics is "
                                               f"{list(logged)}; add {perf} there or use "
                                               "valid_loss")
    return metric


def _check_early_terminate(value: Any) -> dict | None:
    if value is None:
        return None
    label = "sweep.early_terminate"
    if not isinstance(value, Mapping) or value.get("type") != "hyperband":
        got = value.get("type") if isinstance(value, Mapping) else value
        raise ConfigError(f"{label}.type", f"{got!r} is not supported; the only early "
                                           "termination W&B has is type: hyperband")
    unknown = sorted(set(value) - set(HYPERBAND_KEYS))
    if unknown:
        raise ConfigError(f"{label}.{unknown[0]}", f"unknown key; allowed: "
                                                   f"{', '.join(HYPERBAND_KEYS)}")
    for key in ("min_iter", "max_iter", "s"):
        if key in value and not (_is_int(value[key]) and value[key] >= 1):
            raise ConfigError(f"{label}.{key}", f"must be an integer >= 1, got {value[key]!r}")
    eta = value.get("eta", 3)
    if not _is_number(eta) or eta <= 1:
        raise ConfigError(f"{label}.eta", f"must be a number > 1, got {eta!r}")
    if "strict" in value and not isinstance(value["strict"], bool):
        raise ConfigError(f"{label}.strict", f"must be true or false, got {value['strict']!r}")
    if "min_iter" not in value and not ("max_iter" in value and "s" in value):
        raise ConfigError(label, "hyperband needs min_iter (the first epoch to judge runs at), "
                                 "or max_iter and s")
    if "min_iter" not in value and value["max_iter"] / eta < 1:
        raise ConfigError(f"{label}.max_iter", f"max_iter {value['max_iter']} / eta {eta} "
                                               "< 1 leaves no epoch to judge runs at; raise "
                                               "max_iter or lower eta")
    return dict(value)


def _check_other_keys(given: Mapping[str, Any]) -> None:
    for key in ("description", "program", "project", "entity"):
        if key in given and not isinstance(given[key], str):
            raise ConfigError(f"sweep.{key}", f"must be a string, got {given[key]!r}")
    if "command" in given and not (isinstance(given["command"], list)
                                   and all(isinstance(c, str) for c in given["command"])):
        raise ConfigError("sweep.command", f"must be a list of strings, got "
                                           f"{given['command']!r}")
    if "run_cap" in given and not (_is_int(given["run_cap"]) and given["run_cap"] > 0):
        raise ConfigError("sweep.run_cap", f"must be a positive integer, got "
                                           f"{given['run_cap']!r}")


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
    unknown = sorted(set(given) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(f"sweep.{unknown[0]}", f"unknown key; allowed: "
                                                 f"{', '.join(TOP_LEVEL_KEYS)}")
    name = check_name("sweep.name", given.get("name", default_name))

    if method_override is not None:
        method, method_key = method_override, "hydra.sweeper.method"
    else:
        method, method_key = given.get("method"), "sweep.method"
    if method not in METHODS:
        problem = "missing" if method is None else f"{method!r} is not a method"
        raise ConfigError(method_key, f"{problem}; use {', '.join(METHODS)}")
    _check_other_keys(given)

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

    dists = {label: _check_shape(label, spec, method) for label, _, spec in labelled}
    groups = config_groups()
    swept_groups = {key: _check_group(label, key, spec, dists[label], groups[key])
                    for label, key, spec in labelled if key in groups}
    shape = _AppShape(app_cfg, swept_groups)

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
            _check_fits(label, resolved, spec, dists[label], shape)
        parameters[resolved] = dict(spec)  # the command line replaces the file's spec
        labels[resolved] = label

    if method == "bayes" and all(distribution_of(s) == "constant" for s in parameters.values()):
        raise ConfigError("sweep.parameters", "bayes needs at least one parameter that varies; "
                                              "give values or a distribution")
    metric = _check_metric(given.get("metric"), app_cfg, parameters)
    early = _check_early_terminate(given.get("early_terminate"))

    raw = {k: v for k, v in given.items() if k not in ("parameters", "metric")}
    raw.update(name=name, method=method, metric=metric, parameters=parameters)
    if early is not None:
        raw["early_terminate"] = early
    violations = _schema_violations(copy.deepcopy(raw))
    if violations:
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise ConfigError("sweep", f"W&B's sweep schema refuses it: {violations[0]}{more}")
    return SweepSpec(name=name, method=method, metric_name=metric["name"], goal=metric["goal"],
                     target=metric.get("target"), parameters=parameters,
                     run_cap=given.get("run_cap"), early_terminate=early, raw=raw,
                     aliases=aliases)
