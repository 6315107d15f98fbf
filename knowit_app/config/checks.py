"""Value checks that dataclass types cannot express, for the trainer and top-level keys.

Data checks live with the data (:func:`knowit_app.data.prepared.prepare`), architecture
checks with each architecture; all of them run before any training and raise ConfigError.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from knowit_app.errors import ConfigError

log = logging.getLogger("knowit_app")

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
            not math.isfinite(value)) or (kind is int and int(value) != value):
        what = "a positive integer" if kind is int else "a positive number"
        raise ConfigError(key, f"must be {what}, got {value!r}")


SEED_MAX = 2**32 - 1  # numpy's legacy generator (KnowIt's splits) and Lightning take 0..2^32-1


def check_seed(key: str, value: Any) -> int:
    """A seed numpy's legacy generator and Lightning accept: an integer in 0..2^32-1."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not (
            0 <= value <= SEED_MAX):
        raise ConfigError(key, f"expected an integer from 0 to {SEED_MAX}, got {value!r}")
    return int(value)


def devices_value(devices: str) -> int | list[int]:
    """Lightning's ``devices`` for one training, which runs on one device: ``auto`` or ``1``
    (one device), or one device id written as Lightning writes it (``"1,"`` is GPU 1; quoted
    on the command line, where Hydra would read ``1,`` as a list).

    More than one is refused: Lightning would start one process per device, and each would
    run the whole app again (a second training of the same model).
    """
    text = str(devices).strip()
    if text in ("auto", "1"):
        return 1
    ids = text.rstrip(",").split(",")
    if text.endswith(",") and len(ids) == 1 and ids[0].strip().isdigit():
        return [int(ids[0])]
    raise ConfigError("trainer.devices", f"{devices!r} is not allowed; a training runs on one "
                      "device: use auto or 1, or one device id such as "
                      "'trainer.devices=\"1,\"' (GPU 1)")


def validate_trainer(trainer: Mapping[str, Any]) -> None:
    """Check every trainer value that is not a name of a torch/torchmetrics object."""
    _one_of("trainer.task", trainer["task"], TASKS)
    _positive("trainer.max_epochs", trainer["max_epochs"])
    check_seed("trainer.seed", trainer["seed"])
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


def nonfinite_numbers(value: Any, key: str) -> Iterator[tuple[str, float]]:
    """Every NaN or infinite float in ``value`` (mappings and lists walked), with its key."""
    if isinstance(value, float) and not math.isfinite(value):
        yield key, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from nonfinite_numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for i, v in enumerate(value):
            yield from nonfinite_numbers(v, f"{key}[{i}]")


def check_finite(cfg: Mapping[str, Any]) -> None:
    """Refuse NaN and infinity anywhere in the config: no option of the app means them, and
    each would pass range checks (``nan <= 0`` is false) only to fail inside torch."""
    for key, value in nonfinite_numbers(cfg, ""):
        raise ConfigError(key, f"must be a finite number, got {value!r}")


def windows_overlap(in_chunk: Any, out_chunk: Any) -> bool:
    """Whether the input window ``[a, b]`` and the output window ``[c, d]`` share a step."""
    (a, b), (c, d) = in_chunk, out_chunk
    return max(a, c) <= min(b, d)


def leakage_warning(data: Mapping[str, Any]) -> str | None:
    """The warning for outputs the model also reads as inputs at the same steps, or None.

    ``in_components=[x1, x5] out_components=[x5]`` with in_chunk [-32, 0] and out_chunk [0, 0]
    hands the model the very value it predicts; forecasting x5 from its past needs out_chunk
    after in_chunk (e.g. in_chunk [-32, -1]).
    """
    both = [c for c in data["out_components"] if c in set(data["in_components"])]
    in_chunk, out_chunk = list(data["in_chunk"]), list(data["out_chunk"])
    if not both or len(in_chunk) != 2 or len(out_chunk) != 2 \
            or not windows_overlap(in_chunk, out_chunk):
        return None
    return (f"data.out_components: {', '.join(both)} is also an input and in_chunk {in_chunk} "
            f"overlaps out_chunk {out_chunk}: the model sees the values it predicts; move "
            "in_chunk before out_chunk or drop it from data.in_components")


def is_loss(metric: str) -> bool:
    """Whether a logged metric is a loss (lower is better whatever the loss function)."""
    return metric in ("train_loss", "valid_loss")


def goal_warning(key: str, metric: str, goal: str) -> str | None:
    """The warning for maximizing a loss (it would keep the worst model), or None."""
    if is_loss(metric) and goal in ("maximize", "max"):
        return (f"{key}: {goal} on {metric} keeps the worst model (a loss is better when "
                "lower); use minimize")
    return None


def validate_app(cfg: Mapping[str, Any]) -> None:
    """Checks of the whole config before a training is planned: finite numbers, the trainer's
    values; warnings (one line each) for settings that run but defeat themselves."""
    check_finite(cfg)
    validate_trainer(cfg["trainer"])
    for warning in (leakage_warning(cfg["data"]),
                    goal_warning("trainer.ckpt_mode", monitored_metric(cfg["trainer"]),
                                 cfg["trainer"]["ckpt_mode"])):
        if warning:
            log.warning(warning)


def available_accelerators() -> list[str]:
    """The Lightning accelerators this machine can use (``cpu`` always)."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    names = []
    for name in AcceleratorRegistry.available_accelerators():
        try:
            if AcceleratorRegistry[name]["accelerator"].is_available():
                names.append(name)
        except Exception:  # a backend that cannot even be probed is not available
            continue
    return sorted(names)


def check_accelerator_available(accelerator: str) -> None:
    """Refuse an accelerator this machine lacks, naming those it has (before any work)."""
    if accelerator == "auto":
        return
    here = available_accelerators()
    wanted = ("cuda", "mps") if accelerator == "gpu" else (accelerator,)
    if accelerator in ACCELERATORS and not any(w in here for w in wanted):
        raise ConfigError("trainer.accelerator", f"{accelerator!r} is not available on this "
                          f"machine; available here: {', '.join(['auto', *here])}")
