"""Run names and override strings for one run of a sweep.

Names follow KnowIt's sweep tutorial (``batch_size_64-dropout_0.0-learning_rate_0.001``) so
users find runs where the tutorial says they are, and they are safe as directory names. Override
strings are written in Hydra's grammar, because every run's config is composed again by Hydra
from them: a value must come back exactly as the engine proposed it (``None`` as ``null``, a
string that looks like a number quoted, a float with all its digits).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from omegaconf import DictConfig, OmegaConf

from knowit_app.sweeps.spec import to_plain

MAX_NAME = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]")


def _render(value: Any) -> str:
    value = to_plain(value)
    if value is None:
        return "null"
    return str(value)


def _label(keys: list[str]) -> dict[str, str]:
    """key -> its last dotted component, or the full key where two keys share that component."""
    leaves = {k: k.rsplit(".", 1)[-1] for k in keys}
    counts: dict[str, int] = {}
    for leaf in leaves.values():
        counts[leaf] = counts.get(leaf, 0) + 1
    return {k: (leaf if counts[leaf] == 1 else k) for k, leaf in leaves.items()}


def _fit(name: str, full: str, limit: int) -> str:
    """``name`` cut to ``limit`` characters, ending in a hash of ``full`` when cut."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(full.encode("utf-8")).hexdigest()[:8]
    return f"{name[:limit - len(digest) - 1]}-{digest}"


def run_name(params: Mapping[str, Any], taken: Collection[str] = ()) -> str:
    """KnowIt's run name for ``params``, safe for a directory and unique against ``taken``.

    Sorted ``<leaf>_<value>`` joined by ``-``; characters outside ``[A-Za-z0-9_.=,+-]`` become
    ``_``; longer than 200 characters, it is cut and ends in a hash of the full name; a name in
    ``taken`` (compared case-insensitively, as on macOS and Windows disks) gets ``-2``, ``-3``.
    """
    labels = _label(list(params))
    parts = sorted(f"{labels[k]}_{_render(v)}" for k, v in params.items())
    full = "-".join(parts) or "run"
    name = _UNSAFE.sub("_", full)
    if not name[0].isalnum():  # no hidden or option-like names: ".x", "-x", "_x"
        name = f"run{name}"
    used = {t.casefold() for t in taken}
    candidate = _fit(name, full, MAX_NAME)
    number = 1
    while candidate.casefold() in used:
        number += 1
        suffix = f"-{number}"
        candidate = _fit(name, full, MAX_NAME - len(suffix)) + suffix
    return candidate


@lru_cache(maxsize=1)
def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _string(text: str) -> str:
    """A string bare when Hydra reads it back unchanged, else quoted the way Hydra quotes."""
    from hydra.core.override_parser.types import Quote, QuotedString, ValueType

    try:
        parsed = _parser().parse_overrides([f"k={text}"])[0]
        if parsed.value_type == ValueType.ELEMENT and parsed.value() == text \
                and type(parsed.value()) is str:
            return text
    except Exception:  # not valid unquoted: quote it
        pass
    return QuotedString(text=text, quote=Quote.single).with_quotes()


def override_value(value: Any) -> str:
    """``value`` in Hydra's override grammar, so that Hydra reads back the same value."""
    value = to_plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(k))}:{override_value(v)}"
                              for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as a Hydra override")


def _is_group_choice(app_cfg: DictConfig, key: str, value: Any) -> bool:
    """``arch: cnn``: a string for a top-level node that is a config, i.e. a group option."""
    return ("." not in key and isinstance(value, str) and key in app_cfg
            and isinstance(OmegaConf.select(app_cfg, key, throw_on_missing=False), DictConfig))


def _has_key(cfg: DictConfig, key: str) -> bool:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in list(node.keys()):
            return False
        node = OmegaConf.select(node, part, throw_on_missing=False)
    return True


def overrides_for(params: Mapping[str, Any], app_cfg: DictConfig) -> list[str]:
    """Hydra overrides that set ``params`` on top of ``app_cfg``: group choices first.

    ``key=value`` for keys the config has, ``+key=value`` for keys it lacks (entries of dict
    fields such as ``trainer.optim_kwargs``), ``arch=cnn`` for a config group. A key under a
    group chosen in the same run (``arch.num_filters`` with ``arch=cnn``) exists in that option,
    so it is set with ``key=value`` even if ``app_cfg`` was composed with another option.
    """
    groups = {k for k, v in params.items() if _is_group_choice(app_cfg, k, v)}
    out = [f"{k}={override_value(v)}" for k, v in params.items() if k in groups]
    for key, value in params.items():
        if key in groups:
            continue
        present = key.split(".", 1)[0] in groups or _has_key(app_cfg, key)
        out.append(f"{'' if present else '+'}{key}={override_value(value)}")
    return out
