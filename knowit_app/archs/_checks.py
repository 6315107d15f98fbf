"""Value checks shared by the architectures' ``validate``: each names ``arch.<key>`` on failure.

Hydra's schema already checks types for configs it composes; these checks also cover plain
dicts from the Python API and values a sweep proposes (numpy scalars included), so they check
types as well as ranges. A check skips a key that is absent: callers validate partial configs.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from knowit_app.config.checks import TASKS
from knowit_app.errors import ConfigError

# torch.nn activations that cannot stand between two layers: they need arguments, change the
# feature size (GLU halves it) or need image-shaped input.
_UNSUITABLE_ACTIVATIONS = ("Threshold", "MultiheadAttention", "GLU", "Softmax2d")
_SUGGESTED_ACTIVATIONS = ("ReLU", "LeakyReLU", "Tanh", "GELU", "SiLU", "ELU", "Sigmoid")


def key(name: str) -> str:
    """The user-facing config key of hyperparameter ``name``."""
    return f"arch.{name}"


def optional_name(value: Any) -> Any:
    """``None`` for null and its common spellings ("None", "null"); ``value`` otherwise.

    ``arch.normalization=None`` on the command line reaches us as the string "None".
    """
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    return value


def check_known(hps: Mapping[str, Any], arch: str, known: Iterable[str]) -> None:
    """Reject hyperparameters ``arch`` does not have (a misspelt key would be ignored)."""
    known = list(known)
    for name in hps:
        if name != "name" and name not in known:
            raise ConfigError(
                key(str(name)), f"not a hyperparameter of {arch}; known: {', '.join(known)}"
            )


def check_int(hps: Mapping[str, Any], name: str, minimum: int) -> None:
    """An integer of at least ``minimum``."""
    if name not in hps:
        return
    value = hps[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(key(name), f"must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ConfigError(key(name), f"must be an integer >= {minimum}; got {value}")


def check_dropout(hps: Mapping[str, Any], name: str = "dropout") -> None:
    """A probability in [0, 1): 1 would zero every activation."""
    if name not in hps:
        return
    value = hps[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(key(name), f"must be a number in [0, 1); got {value!r}")
    if not (0.0 <= float(value) < 1.0) or math.isnan(float(value)):
        raise ConfigError(key(name), f"must be in [0, 1); got {value}")


def check_bool(hps: Mapping[str, Any], name: str) -> None:
    """A true/false switch (numpy bools from a sweep count)."""
    if name not in hps:
        return
    value = hps[name]
    is_numpy_bool = getattr(getattr(value, "dtype", None), "kind", None) == "b"
    if not isinstance(value, bool) and not is_numpy_bool:
        raise ConfigError(key(name), f"must be true or false; got {value!r}")


def check_choice(hps: Mapping[str, Any], name: str, allowed: tuple[str | None, ...]) -> None:
    """One of ``allowed`` (case-insensitive; None may be spelt null)."""
    if name not in hps:
        return
    value = optional_name(hps[name])
    lowered = value.lower() if isinstance(value, str) else value
    if lowered not in allowed:
        shown = ", ".join("null" if a is None else a for a in allowed)
        raise ConfigError(key(name), f"{value!r} is not allowed; choose one of: {shown}")


@functools.lru_cache(maxsize=1)
def activation_names() -> tuple[str, ...]:
    """The torch.nn activation modules usable between layers (shape-preserving, no arguments)."""
    from torch.nn.modules import activation

    return tuple(n for n in activation.__all__ if n not in _UNSUITABLE_ACTIVATIONS)


def resolve_activation(name: str, value: Any) -> str:
    """The torch.nn spelling of activation ``value`` (case-insensitive), checked."""
    if isinstance(value, str):
        by_lower = {n.lower(): n for n in activation_names()}
        if value.lower() in by_lower:
            return by_lower[value.lower()]
    raise ConfigError(
        key(name),
        f"{value!r} is not a torch.nn activation usable here; "
        f"use e.g. {', '.join(_SUGGESTED_ACTIVATIONS)} (GLU, Threshold, Softmax2d excluded)",
    )


def check_activation(hps: Mapping[str, Any], name: str = "activations") -> None:
    """A torch.nn activation name."""
    if name in hps:
        resolve_activation(name, hps[name])


def check_output_activation(hps: Mapping[str, Any], name: str = "output_activation") -> None:
    """null, or a torch.nn activation name applied to the regression output."""
    if name in hps and optional_name(hps[name]) is not None:
        resolve_activation(name, hps[name])


def check_convolutional(hps: Mapping[str, Any], arch: str, known: Iterable[str],
                        normalizations: tuple[str | None, ...]) -> None:
    """The checks CNN and TCN share: the same hyperparameter names, their own normalizations."""
    check_known(hps, arch, known)
    check_dropout(hps)
    check_output_activation(hps)
    check_int(hps, "depth", 1)
    check_int(hps, "num_filters", 1)
    check_int(hps, "kernel_size", 1)
    check_choice(hps, "normalization", normalizations)
    check_activation(hps)
    check_int(hps, "dilation_base", 1)


def check_task(
    task: str,
    output_shape: tuple[int, int],
    num_classes: int | None,
    output_activation: Any,
) -> None:
    """The task is known and the output it asks for is one the heads can produce.

    Classification heads return logits for cross entropy, so an output activation there would
    silently change the loss: it is refused rather than ignored.
    """
    if task not in TASKS:
        allowed = ", ".join(TASKS)
        raise ConfigError("trainer.task", f"unknown task {task!r}; choose one of: {allowed}")
    if task != "classification":
        return
    if optional_name(output_activation) is not None:
        raise ConfigError(
            key("output_activation"),
            f"must be null for classification (the model outputs logits for cross entropy); "
            f"got {output_activation!r}",
        )
    if num_classes is None:
        raise ValueError("classification needs num_classes (the number of classes in the data)")
    if num_classes < 2:
        raise ConfigError(
            "data.out_components",
            f"classification needs at least 2 classes in the output component; found {num_classes}",
        )
    if tuple(output_shape) != (1, 1):
        raise ConfigError(
            "data.out_chunk",
            f"classification predicts one component at one step; got output shape "
            f"{tuple(output_shape)} (steps, components)",
        )


def check_shapes(input_shape: tuple[int, int], output_shape: tuple[int, int]) -> None:
    """Both shapes are (steps, components) of positive integers: a caller bug otherwise."""
    for label, shape in (("input_shape", input_shape), ("output_shape", output_shape)):
        if len(shape) != 2 or any(int(s) < 1 for s in shape):
            raise ValueError(f"{label} must be (steps, components), both >= 1; got {shape}")


def checked_hps(name: str, hps: Mapping[str, Any], validate: Any,
                input_shape: tuple[int, int], output_shape: tuple[int, int], task: str,
                num_classes: int | None) -> dict[str, Any]:
    """An architecture's hyperparameters over its defaults, checked with the shapes and task:
    the same first steps of every ``build``."""
    from knowit_app.archs import hp_defaults

    full = {**hp_defaults(name), **hps}
    validate(full)
    check_shapes(input_shape, output_shape)
    check_task(task, output_shape, num_classes, full["output_activation"])
    return full
