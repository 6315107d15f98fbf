"""W&B's sweep schema, checked by W&B's own validator, its complaints turned into config keys.

The ``sweeps`` package ships the JSON schema a W&B server applies and a validator for it, but
its messages name no key (``{...} is not valid under any of the given schemas``). Here each
violation becomes one :class:`ConfigError` line that names ``sweep.<key>`` (for a parameter,
``sweep.parameters.<key>.<field>``) and what W&B allows there. Only the rules of our own engine
(the methods it runs, grid's discrete distributions, bayes without probabilities) are ours.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from functools import cache
from types import ModuleType
from typing import Any

from knowit_app.errors import ConfigError

METHODS = ("grid", "random", "bayes")  # what the sweeps engine runs (W&B's "custom" is not)
GRID_DISTRIBUTIONS = ("categorical", "constant", "int_uniform", "q_uniform")
_KINDS = {"number": "a number", "integer": "an integer", "string": "a string",
          "boolean": "true or false", "array": "a list", "object": "a mapping"}
_NAME = "it"  # the parameter name W&B's own checks put in their messages


@cache
def _wandb() -> ModuleType:
    """``sweeps.config.schema``, imported only when a sweep is checked (it is slow to import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic v1-style config warnings on import
        from sweeps.config import schema
    return schema


def _definitions() -> dict[str, Any]:
    return _wandb().sweep_config_jsonschema["definitions"]


@cache
def distributions() -> dict[str, str]:
    """Each distribution W&B knows -> the name of its definition in W&B's schema."""
    defs = _definitions()
    found: dict[str, str] = {}
    for ref in defs["parameter"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[1]
        for alternative in defs[name].get("anyOf", [defs[name]]):
            enum = alternative.get("properties", {}).get("distribution", {}).get("enum", [])
            for dist in enum:
                found.setdefault(dist, name)
    return found


def distribution_of(spec: Mapping[str, Any]) -> str:
    """The distribution W&B infers for a parameter spec (``values`` -> categorical, ...)."""
    if "distribution" in spec:
        return str(spec["distribution"])
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "value" in spec:
        return "constant"
    if "min" in spec and "max" in spec:
        ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool)
                   for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    return ""


def _or(values: Iterable[Any]) -> str:
    words = [str(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _describe(schema: Mapping[str, Any]) -> str:
    """What a schema node allows, in words: "a positive integer", "a number > 1"."""
    kind = _KINDS.get(schema.get("type"), "a value")
    if schema.get("format") == "integer":
        kind = "an integer"
    if kind == "an integer" and schema.get("exclusiveMinimum") == 0:
        return "a positive integer"
    if schema.get("minItems"):
        kind = "a non-empty list"
    if "exclusiveMinimum" in schema:
        kind += f" > {schema['exclusiveMinimum']:g}"
    if "minimum" in schema:
        kind += f" >= {schema['minimum']:g}"
    return kind


def _closest(error: Any) -> Any:
    """For ``anyOf``: the error of the alternative that came closest (the fewest errors)."""
    from jsonschema.exceptions import best_match

    alternatives = error.validator_value if error.validator in ("anyOf", "oneOf") else None
    if not alternatives or not error.context:
        return error
    if all(set(alt) == {"required"} for alt in alternatives):
        return error  # "needs a and b, or c": said as a whole
    by_alternative: dict[Any, list] = {}
    for sub in error.context:
        by_alternative.setdefault(sub.schema_path[0], []).append(sub)
    return _closest(best_match(min(by_alternative.values(), key=len)))


def _as_config_error(label: str, error: Any, context: str = "") -> ConfigError:
    """One jsonschema error as ``<label>.<field>: <what is wrong>; <what is allowed>``."""
    path = list(error.absolute_path)
    key = ".".join([label, *(str(p) for p in path if not isinstance(p, int))])
    rule, schema, value = error.validator, error.schema, error.instance
    if rule == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed))
        return ConfigError(key, f"{', '.join(extra)} not allowed{context}; allowed: "
                                f"{', '.join(allowed)}")
    if rule == "required":
        missing = [k for k in error.validator_value if k not in value]
        return ConfigError(key, f"needs {' and '.join(missing)}{context}")
    if rule in ("anyOf", "oneOf"):
        options = [" and ".join(alt["required"]) for alt in error.validator_value]
        return ConfigError(key, f"needs {', or '.join(options)}{context}")
    if rule == "enum":
        return ConfigError(key, f"{value!r} is not allowed; allowed: "
                                f"{_or(error.validator_value)}")
    each = "each item " if path and isinstance(path[-1], int) else ""
    return ConfigError(key, f"{each}must be {_describe(schema)}{context}, got {value!r}")


def _first_violation(schema: Mapping[str, Any], value: Any) -> Any:
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    validator = Draft7Validator(schema, format_checker=_wandb().format_checker)
    error = best_match(validator.iter_errors(value))
    return None if error is None else _closest(error)


def check_top_level(config: Mapping[str, Any]) -> None:
    """Every W&B key of a sweep except its parameters (metric, early_terminate, run_cap, ...)."""
    schema = dict(_wandb().sweep_config_jsonschema)
    given = {k: v for k, v in config.items() if k != "parameters"}
    error = _first_violation(schema, given)
    if error is not None:
        raise _as_config_error("sweep", error)


def check_parameter(label: str, spec: Any, method: str) -> str:
    """Check one parameter spec against W&B's schema and our engine; return its distribution."""
    if not isinstance(spec, Mapping):
        raise ConfigError(label, f"expected a mapping such as {{values: [...]}}, got {spec!r}")
    if "parameters" in spec:
        raise ConfigError(label, "nested parameters blocks are not supported (W&B silently "
                                 "drops them); use dotted keys instead, e.g. arch.dropout")
    dist = distribution_of(spec)
    known = distributions()
    if dist not in known:
        given = f"unknown distribution {dist!r}" if dist else "no values, value or min/max"
        raise ConfigError(label, f"{given}; give values, value, min/max or a distribution "
                                 f"({', '.join(known)})")
    schema = {"$ref": f"#/definitions/{known[dist]}", "definitions": _definitions()}
    error = _first_violation(schema, dict(spec))
    if error is not None:
        raise _as_config_error(label, error, f" for {dist}")
    wandb = _wandb()
    for check in (wandb.validate_min_max, wandb.validate_categorical_prob,
                  wandb.check_for_deprecated_distributions):
        try:  # W&B's own checks that its JSON schema cannot express
            check(_NAME, dict(spec))
        except ValueError as exc:
            message = str(exc.args[0]).removeprefix("Parameter ").removeprefix(f"{_NAME}: ")
            raise ConfigError(label, message) from None
    if method == "grid" and dist not in GRID_DISTRIBUTIONS:
        raise ConfigError(label, f"grid search cannot use {dist}; use values, value, "
                                 "int_uniform or q_uniform, or method random or bayes")
    if method == "bayes" and dist == "categorical_w_probabilities":
        raise ConfigError(label, "bayes cannot use probabilities (the sweeps engine fails on "
                                 "them); drop probabilities or use method random")
    return dist
