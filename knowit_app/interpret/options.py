"""The interpreter's options: KnowIt's keyword names and defaults, checked before any work.

One place for them so the command line, the API and the sweep callback accept exactly the same
values and name a bad one the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from knowit_app.config.checks import check_seed
from knowit_app.errors import ConfigError

METHODS = ("DeepLift", "DeepLiftShap", "IntegratedGradients")
SETS = ("train", "valid", "eval")
SELECTIONS = ("random", "success", "failure", "all")

# KnowIt's interpreter kwargs -> (our field, default); interpretation_method is required.
KNOWIT_KEYS = {
    "interpretation_method": ("method", None),
    "interpretation_set": ("set", "valid"),
    "selection": ("selection", "random"),
    "size": ("size", 100),
    "multiply_by_inputs": ("multiply_by_inputs", True),
    "seed": ("seed", 123),
    "rescale_inputs": ("rescale_inputs", True),
}
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class InterpretOptions:
    """What to interpret and how; ``size`` is ignored by ``selection='all'``."""

    method: str
    set: str = "valid"
    selection: str = "random"
    size: int = 100
    multiply_by_inputs: bool = True
    seed: int = 123
    rescale_inputs: bool = True

    @property
    def file_stem(self) -> str:
        """KnowIt's name for the result: ``<Method>-<set>-<selection>-<size>-<multiply>-<seed>``."""
        return (f"{self.method}-{self.set}-{self.selection}-{self.size}-"
                f"{self.multiply_by_inputs}-{self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_method(value: object, key: str = "method") -> str:
    """The method's canonical spelling (case-insensitive match); ConfigError if unknown."""
    for name in METHODS:
        if isinstance(value, str) and value.lower() == name.lower():
            return name
    raise ConfigError(key, f"unknown interpretation method {value!r}; allowed: "
                      f"{', '.join(METHODS)}")


def _choice(value: object, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ConfigError(key, f"unknown value {value!r}; allowed: {', '.join(allowed)}")
    return str(value)


def _integer(value: object, key: str, minimum: int | None = None) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int) or (
            minimum is not None and value < minimum):
        want = f"an integer >= {minimum}" if minimum is not None else "an integer"
        raise ConfigError(key, f"expected {want}, got {value!r}")
    return int(value)


def _boolean(value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ConfigError(key, f"expected true or false, got {value!r}")


def make_options(method: object, set: object = "valid", selection: object = "random",  # noqa: A002
                 size: object = 100, multiply_by_inputs: object = True, seed: object = 123,
                 rescale_inputs: object = True, *, keys: Mapping[str, str] | None = None,
                 ) -> InterpretOptions:
    """Checked options from plain values or command-line strings.

    ``keys`` maps our field names to the names the caller's user typed (so an API error names
    ``interpretation_set``, a command-line error ``set``).
    """
    keys = keys or {}

    def k(name: str) -> str:
        return keys.get(name, name)

    if method is None or method == "":
        raise ConfigError(k("method"), f"missing; give one of {', '.join(METHODS)}")
    return InterpretOptions(
        method=check_method(method, k("method")),
        set=_choice(set, SETS, k("set")),
        selection=_choice(selection, SELECTIONS, k("selection")),
        size=_integer(size, k("size"), 1),
        multiply_by_inputs=_boolean(multiply_by_inputs, k("multiply_by_inputs")),
        seed=check_seed(k("seed"), seed),
        rescale_inputs=_boolean(rescale_inputs, k("rescale_inputs")),
    )


def from_knowit_kwargs(kwargs: Mapping[str, Any]) -> InterpretOptions:
    """Options from KnowIt's ``{'interpreter': {...}}`` (or the inner dict itself)."""
    inner = kwargs.get("interpreter", kwargs) if isinstance(kwargs, Mapping) else None
    if not isinstance(inner, Mapping):
        raise ConfigError("interpreter", "expected a dict of interpreter options, e.g. "
                          "{'interpreter': {'interpretation_method': 'DeepLiftShap'}}")
    unknown = sorted(set(inner) - set(KNOWIT_KEYS))
    if unknown:
        raise ConfigError(f"interpreter.{unknown[0]}",
                          f"unknown option; allowed: {', '.join(KNOWIT_KEYS)}")
    if "interpretation_method" not in inner:
        raise ConfigError("interpreter.interpretation_method",
                          f"missing; give one of {', '.join(METHODS)}")
    values = {field: inner.get(name, default) for name, (field, default) in KNOWIT_KEYS.items()}
    names = {field: f"interpreter.{name}" for name, (field, _) in KNOWIT_KEYS.items()}
    return make_options(**values, keys=names)
