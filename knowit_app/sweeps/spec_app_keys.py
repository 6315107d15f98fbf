"""Sweep parameter keys checked against the app config: each key exists, each value fits.

A key is a dotted config path (``arch.dropout``), a config group whose values are option names
(``arch: {values: [mlp, cnn]}``) or a bare name (``dropout``) that ends exactly one dotted key.
When a group is swept, a field of it must exist in every swept option, and every value the
distribution can draw must fit the field's type (OmegaConf's own check, so the message is the
one a run would have failed with).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from knowit_app.config.compose import option_config, sweepable_groups
from knowit_app.errors import ConfigError

# Keys the sweep owns: one value per sweep, never swept. model_name, exp_dir and sweep name the
# sweep dir every run writes into (a swept one would scatter the runs out of it); overwrite is
# the consolidation's, once per sweep; hydra.* is the sweeper's and launcher's own; wandb.* is
# set per run by the sweeper (project/entity from the sweep file or hydra.sweeper.project/entity,
# group from the sweep name, dir from the sweep dir, mode/run_id/sweep_id from the controller),
# so a swept or fixed value there would be silently replaced.
UNSWEEPABLE = ("model_name", "exp_dir", "overwrite", "sweep", "hydra", "wandb")
# Where each key the sweeper sets can be given instead (named in the refusal).
SWEEPER_OWNED = {"wandb": "set project and entity in the sweep file or as hydra.sweeper.project "
                          "and hydra.sweeper.entity; the sweeper sets the rest per run"}


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


class AppShape:
    """What the app config offers: its keys, its groups, and each swept option's fields."""

    def __init__(self, app_cfg: DictConfig, swept_groups: Mapping[str, list[str]]) -> None:
        self.app_cfg = app_cfg
        self.groups = sweepable_groups()
        self.swept_groups = dict(swept_groups)
        self._paths: list[str] | None = None

    def configs_for(self, key: str) -> list[tuple[str | None, DictConfig]]:
        """The configs a key must fit: each swept option of its group, else the app config."""
        root = key.split(".", 1)[0]
        if "." in key and root in self.swept_groups:
            return [(opt, option_config(root, opt)) for opt in self.swept_groups[root]]
        return [(None, self.app_cfg)]

    def paths(self) -> list[str]:
        """Every dotted key of the app config and of each swept option (computed once)."""
        if self._paths is None:
            found = set(_paths(self.app_cfg))
            for group, options in self.swept_groups.items():
                for option in options:
                    found.update(p for p in _paths(option_config(group, option))
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


def check_group(label: str, group: str, spec: Mapping[str, Any], dist: str,
                options: list[str]) -> list[str]:
    """The option names a swept config group takes; each must be one of its options."""
    if dist not in ("categorical", "categorical_w_probabilities", "constant"):
        raise ConfigError(label, f"{group} is a config group: give option names with values, "
                                 f"e.g. {{values: [{', '.join(options[:2])}]}}")
    chosen = list(spec["values"]) if "values" in spec else [spec["value"]]
    for option in chosen:
        if option not in options:
            raise ConfigError(label, f"{option!r} is not a {group} option; options: "
                                     f"{', '.join(options)}")
    return [str(o) for o in chosen]


def check_fits(label: str, key: str, spec: Mapping[str, Any], dist: str,
               shape: AppShape) -> None:
    """Refuse a key the app config (or a swept option) lacks, or a value that cannot fit it."""
    root = key.split(".", 1)[0]
    if root in SWEEPER_OWNED:
        raise ConfigError(label, f"{key} is set by the sweeper for each run and cannot be "
                                 f"swept; {SWEEPER_OWNED[root]}")
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
