"""The architecture registry: find an architecture by name, list its hyperparameters, build it.

Each architecture lives in its own module (``mlp``, ``cnn``, ``tcn``, ``lstm``) with
``HP_RANGES``, ``validate(hps)`` and ``build(...)``; a user's own architecture, imported into
an experiment's ``custom_archs/`` as in KnowIt, is built by :mod:`knowit_app.archs.custom`.
This package imports them, and so torch, only when asked: ``knowit-app --help`` and config
composition stay fast.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowit_app.config.schema import ARCH_SCHEMAS
from knowit_app.errors import ConfigError

if TYPE_CHECKING:
    import torch

ARCH_NAMES = ("MLP", "CNN", "TCN", "LSTM")


def canonical_name(name: Any) -> str:
    """The registry spelling of ``name`` (``"cnn"`` -> ``"CNN"``); ConfigError if unknown."""
    if isinstance(name, str) and name.upper() in ARCH_NAMES:
        return name.upper()
    raise ConfigError(
        "arch.name", f"unknown architecture {name!r}; available: {', '.join(ARCH_NAMES)}"
    )


def get_arch(name: str) -> types.ModuleType:
    """The module that implements architecture ``name`` (case-insensitive)."""
    return importlib.import_module(f"{__name__}.{canonical_name(name).lower()}")


def hp_defaults(name: str) -> dict[str, Any]:
    """Default hyperparameters of ``name``, read from its schema dataclass (the one source)."""
    schema = ARCH_SCHEMAS[canonical_name(name).lower()]
    defaults: dict[str, Any] = {}
    for field in dataclasses.fields(schema):
        if field.name == "name":
            continue
        if field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
        else:
            defaults[field.name] = field.default
    return defaults


def hp_ranges(name: str) -> dict[str, dict[str, Any]]:
    """Suggested search ranges of ``name`` as W&B sweep parameter specs (a copy, safe to edit)."""
    return copy.deepcopy(get_arch(name).HP_RANGES)


def build_model(
    arch_cfg: Mapping[str, Any],
    input_shape: tuple[int, int],
    output_shape: tuple[int, int],
    task: str,
    num_classes: int | None,
    *,
    exp_dir: str | Path | None = None,
) -> torch.nn.Module:
    """Build the model the flat ``arch`` config describes (name + hyperparameters).

    Hyperparameters left out take the schema defaults; every value is checked before any layer
    is made, so a bad one fails with a ConfigError naming ``arch.<key>``. A name that is not
    built in is an architecture imported into ``<exp_dir>/custom_archs/`` (its
    hyperparameters under ``arch_hps``, as in KnowIt).
    """
    hps = _plain_dict(arch_cfg)
    if "name" not in hps:
        raise ConfigError("arch.name", f"missing; available: {', '.join(ARCH_NAMES)}")
    if not (isinstance(hps["name"], str) and hps["name"].upper() in ARCH_NAMES):
        from knowit_app.archs import custom

        return custom.build(exp_dir, hps["name"], hps.get("arch_hps") or {}, input_shape,
                            output_shape, task, num_classes)
    module = get_arch(hps.pop("name"))
    module.validate(hps)
    return module.build(input_shape, output_shape, task, num_classes, hps)


def _plain_dict(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of ``cfg``, resolving interpolations when it is an OmegaConf DictConfig."""
    if type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(cfg, resolve=True))
    if not isinstance(cfg, Mapping):
        raise ConfigError("arch", f"must be a mapping of hyperparameters; got {type(cfg).__name__}")
    return dict(cfg)
