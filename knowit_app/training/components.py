"""Look up losses, optimizers, lr schedulers and performance metrics by the names users write.

KnowIt names them as torch / torchmetrics do (``mse_loss``, ``Adam``, ``StepLR``,
``mean_absolute_error``); so do we. Each lookup fails with a one-line ConfigError naming the key
and some allowed values, before any training starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
import torchmetrics

from knowit_app.errors import ConfigError

_LOSS_NAMES = sorted(n for n in dir(F) if n.endswith("_loss") or n in {"cross_entropy"})


def loss_function(name: str) -> Callable[..., torch.Tensor]:
    """A loss from ``torch.nn.functional`` by name (``mse_loss``, ``cross_entropy``, ...)."""
    if name not in _LOSS_NAMES:
        common = ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "cross_entropy"]
        raise ConfigError("trainer.loss_fn", f"unknown loss {name!r}; allowed: "
                          f"{', '.join(common)} or any torch.nn.functional *_loss")
    return getattr(F, name)


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """An optimizer class from ``torch.optim`` by name (``Adam``, ``SGD``, ...)."""
    cls = getattr(torch.optim, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        names = sorted(n for n, c in vars(torch.optim).items()
                       if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer)
                       and c is not torch.optim.Optimizer)
        raise ConfigError("trainer.optim",
                          f"unknown optimizer {name!r}; allowed: {', '.join(names)}")
    return cls


# Fused (one kernel for all parameters) first, then foreach (one call per op over all
# parameters): measured on a 2-core CPU for the tutorial MLP, Adam's step takes 1.6 ms
# per-tensor, 1.2 ms foreach and 0.3 ms fused. Both compute the same update up to float
# rounding. Precision "16-mixed" scales gradients with a GradScaler, which Lightning refuses to
# combine with an optimizer that unscales inside its step (fused), so it gets foreach only.
_FAST_MODES = ("fused", "foreach")


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], learning_rate: float,
                   kwargs: Mapping[str, Any], *, allow_fused: bool = True) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``params``, in the fastest implementation torch has for them.

    A user's own ``fused`` or ``foreach`` in ``kwargs`` is kept as given. Otherwise fused is
    tried, then foreach, then torch's default, each only where the optimizer accepts it and the
    parameters' device and dtype allow it (torch refuses at construction otherwise).
    """
    cls = optimizer_class(name)
    params = list(params)
    args = dict(kwargs)
    if not set(_FAST_MODES) & set(args):
        accepted = inspect.signature(cls).parameters
        for mode in _FAST_MODES:
            if mode not in accepted or (mode == "fused" and not allow_fused):
                continue
            try:
                return cls(params, lr=learning_rate, **args, **{mode: True})
            except (RuntimeError, ValueError, TypeError):
                continue
    return cls(params, lr=learning_rate, **args)


def scheduler_class(name: str) -> type:
    """An lr scheduler class from ``torch.optim.lr_scheduler`` by name (``StepLR``, ...)."""
    sched = torch.optim.lr_scheduler
    cls = getattr(sched, name, None)
    base = sched.LRScheduler
    ok = inspect.isclass(cls) and (issubclass(cls, base) or cls is sched.ReduceLROnPlateau)
    if not ok:
        names = sorted(n for n, c in vars(sched).items() if inspect.isclass(c)
                       and (issubclass(c, base) or c is sched.ReduceLROnPlateau)
                       and not n.startswith("_") and c is not base and n != "LRScheduler")
        raise ConfigError("trainer.lr_scheduler",
                          f"unknown lr scheduler {name!r}; allowed: {', '.join(names)}")
    return cls


def _metric_classes() -> dict[str, type[torchmetrics.Metric]]:
    found: dict[str, type[torchmetrics.Metric]] = {}
    for module in (torchmetrics, torchmetrics.regression, torchmetrics.classification):
        for attr, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, torchmetrics.Metric):
                found.setdefault(attr.lower(), obj)
    return found


def metric_factory(name: str, kwargs: Mapping[str, Any], task: str,
                   num_classes: int | None) -> Callable[[], torchmetrics.Metric]:
    """A torchmetrics metric by its functional name (``mean_absolute_error`` -> MeanAbsoluteError).

    Classification metrics get ``task="multiclass"`` and ``num_classes`` unless the user set them.
    Returns a factory: training and validation each need their own accumulating instance.
    """
    classes = _metric_classes()
    cls = classes.get(name.replace("_", "").lower())
    if cls is None:
        examples = (["mean_absolute_error", "mean_squared_error", "r2_score"]
                    if task == "regression" else ["accuracy", "f1_score", "auroc"])
        raise ConfigError("trainer.performance_metrics",
                          f"unknown metric {name!r}; use a torchmetrics name such as "
                          f"{', '.join(examples)}")
    params = inspect.signature(cls).parameters
    args = dict(kwargs)
    if "task" in params and "task" not in args:
        args["task"] = "multiclass"
    if "num_classes" in params and "num_classes" not in args and num_classes is not None:
        args["num_classes"] = num_classes
    try:
        cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError("trainer.performance_metrics_kwargs",
                          f"{name}: {str(exc).splitlines()[0]}") from exc
    return lambda: cls(**args)


def metric_higher_is_better(factory: Callable[[], torchmetrics.Metric]) -> bool:
    """Whether larger values of a metric are better (decides the checkpoint's mode)."""
    return bool(getattr(factory(), "higher_is_better", False))
