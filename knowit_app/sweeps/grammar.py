"""Hydra's sweep grammar on the command line, as W&B parameter specs.

``knowit-app -m arch=mlp,cnn arch.dropout=interval(0,0.5)`` should mean what it means to any
Hydra sweeper, while the search itself is W&B's. Each sweep override becomes one W&B parameter;
every other override (``model_name=x``, ``+foo=bar``, ``~key``, ``sweep=<file>``) is passed to
every run unchanged. Parsing is Hydra's own ``OverridesParser``, so quoting, ``choice``,
``range``, ``interval``, ``tag`` and ``glob`` behave exactly as in Hydra's documentation.
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    Glob,
    IntervalSweep,
    Override,
    QuotedString,
    RangeSweep,
)
from hydra.errors import HydraException

from knowit_app.config.compose import sweepable_groups
from knowit_app.errors import ConfigError
from knowit_app.sweeps.spec_app_keys import SWEEPER_OWNED, UNSWEEPABLE

INTERVAL_TAGS = ("log", "int")


def _plain(value: Any) -> Any:
    """A parsed element as Python: quoted strings become str, containers recursively."""
    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _choice(key: str, sweep: ChoiceSweep) -> dict[str, Any]:
    if sweep.shuffle:
        raise ConfigError(key, "shuffle(...) has no W&B counterpart; list the values with "
                               "choice(...), or use method random")
    if sweep.tags:
        raise ConfigError(key, f"tags {sorted(sweep.tags)} have no meaning on a choice; tags "
                               "apply to interval(...): log, int")
    return {"values": [_plain(v) for v in sweep.list]}


def _glob(key: str, glob: Glob) -> dict[str, Any]:
    groups = sweepable_groups()
    if key not in groups:
        raise ConfigError(key, f"glob(...) selects config group options; {key} is not a "
                               f"config group ({', '.join(groups)})")
    options = glob.filter(groups[key])
    if not options:
        raise ConfigError(key, f"glob matches no {key} option; options: "
                               f"{', '.join(groups[key])}")
    return {"values": options}


def _range(key: str, sweep: RangeSweep, method: str) -> dict[str, Any]:
    if sweep.shuffle:
        raise ConfigError(key, "shuffle(...) has no W&B counterpart; use range(...) as is, or "
                               "method random")
    values = list(sweep.range())
    if not values:
        raise ConfigError(key, f"range({sweep.start}, {sweep.stop}, {sweep.step}) is empty; "
                               "start must come before stop in the step's direction")
    integers = all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step))
    if method == "grid" or not integers or sweep.step != 1 or len(values) == 1:
        return {"values": values}
    # range's stop is exclusive, int_uniform's max inclusive
    return {"distribution": "int_uniform", "min": sweep.start, "max": sweep.stop - 1}


def _interval(key: str, sweep: IntervalSweep, method: str) -> dict[str, Any]:
    if method == "grid":
        raise ConfigError("hydra.sweeper.method", f"grid needs discrete values, but "
                                                  f"{key}=interval(...) is continuous; use "
                                                  f"choice(...) or range(...) for {key}, or "
                                                  "method random or bayes")
    unknown = sorted(set(sweep.tags) - set(INTERVAL_TAGS))
    if unknown:
        raise ConfigError(key, f"unknown tag {unknown[0]!r} on interval; tags: "
                               f"{', '.join(INTERVAL_TAGS)}")
    low, high = sweep.start, sweep.end
    if "int" in sweep.tags:
        if not (float(low).is_integer() and float(high).is_integer()):
            raise ConfigError(key, f"tag int needs whole bounds, got interval({low}, {high})")
        low, high = int(low), int(high)
        if "log" in sweep.tags:  # an integer q makes the engine return integers
            return {"distribution": "q_log_uniform_values", "min": low, "max": high, "q": 1}
        return {"distribution": "int_uniform", "min": low, "max": high}
    dist = "log_uniform_values" if "log" in sweep.tags else "uniform"
    return {"distribution": dist, "min": float(low), "max": float(high)}


def _spec(override: Override, method: str) -> dict[str, Any]:
    key = override.key_or_group
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return _choice(key, value)
    if isinstance(value, Glob):
        return _glob(key, value)
    if isinstance(value, RangeSweep):
        return _range(key, value, method)
    if isinstance(value, IntervalSweep):
        return _interval(key, value, method)
    raise ConfigError(key, f"unsupported sweep {override.input_line!r}; use choice, a,b, range, "
                           "interval or glob")


def parameters_from_overrides(overrides: list[str],
                              method: str) -> tuple[dict[str, dict], list[str]]:
    """Split command-line overrides into (W&B parameters, fixed overrides for every run).

    ``arch=mlp,cnn`` -> ``{"arch": {"values": ["mlp", "cnn"]}}``; ``x=range(1,5)`` -> values
    for grid, ``int_uniform`` 1..4 otherwise; ``x=interval(a,b)`` -> ``uniform`` (with
    ``tag(log, ...)``: ``log_uniform_values``; ``tag(int, ...)``: integers), refused for grid.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError("overrides", str(exc).splitlines()[0]) from exc
    parameters: dict[str, dict] = {}
    fixed: list[str] = []
    for line, override in zip(overrides, parsed, strict=True):
        root = override.key_or_group.lstrip("+~").split(".", 1)[0]
        if root in SWEEPER_OWNED and not override.is_hydra_override():
            # A fixed value would be replaced by the sweeper's own just as silently.
            raise ConfigError(override.key_or_group, f"{override.key_or_group} is set by the "
                              f"sweeper for each run; {SWEEPER_OWNED[root]}")
        if not override.is_sweep_override():
            fixed.append(line)
            continue
        key = override.key_or_group
        if override.is_hydra_override() or key.split(".", 1)[0] in UNSWEEPABLE:
            raise ConfigError(key, f"{key} cannot be swept; give it one value for the whole "
                                   "sweep")
        if override.package is not None:
            raise ConfigError(key, f"{key}@{override.package}: sweeping a group into another "
                                   "package is not supported; sweep the group itself")
        if key in parameters:
            raise ConfigError(key, "swept twice on the command line; give one sweep per key")
        parameters[key] = _spec(override, method)
    return parameters, fixed
