"""Value checks that dataclass types cannot express, for the trainer and top-level keys.

Data checks live with the data (:func:`knowit_app.data.prepared.prepare`), architecture
checks with each architecture; all of them run before any training and raise ConfigError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knowit_app.errors import ConfigError

TASKS = ("regression", "classification")
CKPT_MODES = ("auto", "min", "max")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64")
CLIP_ALGORITHMS = ("norm", "value")


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")


def _positive(key: str, value: Any, kind: type = int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
            kind is int and int(value) != value):
        what = "a positive integer" if kind is int else "a positive number"
        raise ConfigError(key, f"must be {what}, got {value!r}")


def devices_value(devices: str) -> int | str:
    """Lightning's ``devices``: "auto", a count ("2"), or a list of ids ("0,1")."""
    text = str(devices).strip()
    if text == "auto":
        return "auto"
    if text.lstrip("-").isdigit():
        return int(text)
    if all(part.strip().isdigit() for part in text.split(",")):
        return text
    raise ConfigError("trainer.devices", f"{devices!r} is not allowed; use auto, a count "
                                         "such as 1, or device ids such as 0,1")


def validate_trainer(trainer: Mapping[str, Any]) -> None:
    """Check every trainer value that is not a name of a torch/torchmetrics object."""
    _one_of("trainer.task", trainer["task"], TASKS)
    _positive("trainer.max_epochs", trainer["max_epochs"])
    _positive("trainer.learning_rate", trainer["learning_rate"], float)
    _one_of("trainer.ckpt_mode", trainer["ckpt_mode"], CKPT_MODES)
    _one_of("trainer.accelerator", trainer["accelerator"], ACCELERATORS)
    _one_of("trainer.precision", str(trainer["precision"]), PRECISIONS)
    _one_of("trainer.gradient_clip_algorithm", trainer["gradient_clip_algorithm"],
            CLIP_ALGORITHMS)
    clip = trainer["gradient_clip_val"]
    if clip is not None and clip < 0:
        raise ConfigError("trainer.gradient_clip_val", f"must be >= 0 or null, got {clip!r}")
    if trainer["num_threads"] is not None:
        _positive("trainer.num_threads", trainer["num_threads"])
    devices_value(trainer["devices"])
    metrics = list(trainer["performance_metrics"])
    unknown = sorted(set(trainer["performance_metrics_kwargs"]) - set(metrics))
    if unknown:
        raise ConfigError("trainer.performance_metrics_kwargs",
                          f"kwargs given for {', '.join(unknown)} which is not in "
                          f"trainer.performance_metrics {metrics}")


def monitored_metric(trainer: Mapping[str, Any]) -> str:
    """What the checkpoint watches: ``trainer.monitor``, else the first metric, else valid_loss."""
    metrics = list(trainer["performance_metrics"])
    allowed = ["valid_loss", "train_loss"] + [f"{s}_perf_{m}" for s in ("valid", "train")
                                              for m in metrics]
    monitor = trainer["monitor"]
    if monitor is None:
        return f"valid_perf_{metrics[0]}" if metrics else "valid_loss"
    _one_of("trainer.monitor", monitor, tuple(allowed))
    return monitor
