"""Translate KnowIt's ``kwargs`` dicts into the app's config: preset overrides plus values.

KnowIt spreads ``task`` over data, arch and trainer and nests arch hyperparameters under
``arch_hps``; it names losses and optimizers either as a string or as ``{name: kwargs}``. The
app keeps one flat, typed config; this module is the only place that knows both shapes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from knowit_app.config.schema import ARCH_SCHEMAS, DataConfig, TrainerConfig
from knowit_app.errors import ConfigError

DATA_PRESETS = ("synth_2", "synth_c")
# KnowIt options that have no effect here: accepted with a warning, so tutorials run as written.
IGNORED = {
    "data": {"rescale_logged_output_metrics", "min_slice", "num_workers", "preload"},
    "trainer": {"logger_status", "rescale_logged_output_metrics", "return_final"},
}


def _named(key: str, value: Any) -> tuple[str | None, dict[str, Any]]:
    """``'Adam'`` or ``{'Adam': {'weight_decay': 0.1}}`` -> (name, kwargs)."""
    if value is None or isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and len(value) == 1:
        name, kwargs = next(iter(value.items()))
        return str(name), dict(kwargs or {})
    raise ConfigError(key, f"give a name or a one-entry dict {{name: kwargs}}, got {value!r}")


def _metrics(value: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    if value is None:
        return [], {}
    if isinstance(value, str):
        return [value], {}
    if isinstance(value, Mapping):
        return [str(k) for k in value], {str(k): dict(v or {}) for k, v in value.items() if v}
    return [str(v) for v in value], {}


def _check_known(section: str, given: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    kept = {}
    for key, value in given.items():
        if key in IGNORED.get(section, ()):
            warnings.warn(f"{section}.{key} is a KnowIt option with no effect in knowit-app; "
                          "ignored", stacklevel=4)
        elif key not in allowed:
            raise ConfigError(f"{section}.{key}", f"unknown option; allowed: "
                              f"{', '.join(sorted(allowed))}")
        else:
            kept[key] = value
    return kept


def knowit_kwargs_to_overrides(kwargs: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Return (Hydra preset overrides, values to merge) for KnowIt's ``train_model`` kwargs."""
    unknown = sorted(set(kwargs) - {"data", "arch", "trainer"})
    if unknown:
        raise ConfigError(f"kwargs.{unknown[0]}", "unknown section; allowed: data, arch, trainer")
    data = dict(kwargs.get("data", {}) or {})
    arch = dict(kwargs.get("arch", {}) or {})
    trainer = dict(kwargs.get("trainer", {}) or {})

    tasks = {s: d.pop("task") for s, d in (("data", data), ("arch", arch), ("trainer", trainer))
             if "task" in d}
    if len(set(tasks.values())) > 1:
        raise ConfigError("trainer.task", "data, arch and trainer disagree on the task: "
                          + ", ".join(f"{s}={t}" for s, t in tasks.items()))
    task = next(iter(tasks.values()), "regression")

    overrides = [f"trainer={'classification' if task == 'classification' else 'default'}"]
    if data.get("name") in DATA_PRESETS:
        overrides.append(f"data={data['name']}")
    given_name = str(arch.pop("name", "mlp"))
    arch_name = given_name.lower()
    arch_values = dict(arch.pop("arch_hps", {}) or {})
    if arch_name in ARCH_SCHEMAS:
        overrides.append(f"arch={arch_name}")
    else:  # an architecture imported into <exp_dir>/custom_archs (checked when built)
        overrides.append("arch=custom")
        arch_values = {"name": given_name, "arch_hps": arch_values}
    if arch:
        raise ConfigError(f"arch.{sorted(arch)[0]}", "unknown option; allowed: name, task, "
                          "arch_hps")

    data = _check_known("data", data, set(DataConfig.__dataclass_fields__))
    trainer = _check_known("trainer", trainer,
                           set(TrainerConfig.__dataclass_fields__))
    for key in ("loss_fn", "optim", "lr_scheduler"):
        if key in trainer:
            name, extra = _named(f"trainer.{key}", trainer.pop(key))
            trainer[key] = name
            kw_key = {"loss_fn": "loss_kwargs", "optim": "optim_kwargs",
                      "lr_scheduler": "lr_scheduler_kwargs"}[key]
            trainer[kw_key] = {**extra, **trainer.get(kw_key, {})}
    if "performance_metrics" in trainer:
        names, metric_kwargs = _metrics(trainer.pop("performance_metrics"))
        trainer["performance_metrics"] = names
        trainer["performance_metrics_kwargs"] = {
            **metric_kwargs, **trainer.get("performance_metrics_kwargs", {})}
    if trainer.get("early_stopping_args") is not None:  # KnowIt: giving the args turns it on
        trainer["early_stopping_args"] = dict(trainer["early_stopping_args"])
        trainer.setdefault("early_stopping", True)
    elif "early_stopping_args" in trainer:
        trainer["early_stopping_args"] = {}
    trainer["task"] = task
    return overrides, {"data": data, "arch": arch_values, "trainer": trainer}
