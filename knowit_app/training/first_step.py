"""One optimizer step on two training points, before anything is written.

An architecture that does not fit the data's shapes, ``loss_kwargs`` that make the loss
something other than one number, an optimizer that cannot train dense parameters of any shape
(``SparseAdam``, ``Muon``) or ``optim_kwargs`` it does not take would otherwise fail as a
traceback from inside Lightning, after the run directory exists. Here each becomes one line
naming its key. The network stepped here is the plan's throwaway copy; training builds its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from knowit_app.errors import ConfigError


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _plain(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Plain Python values (an OmegaConf list inside kwargs is not a tuple torch accepts)."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(kwargs):
        return dict(OmegaConf.to_container(kwargs, resolve=True))  # type: ignore[arg-type]
    return dict(kwargs)


def check_first_step(network: Any, batch: tuple[Any, Any], task: str, num_classes: int | None,
                     arch_name: str, loss: Callable[..., Any], trainer: Mapping[str, Any], *,
                     optimizer: bool = True) -> None:
    """Forward, loss, backward and one optimizer step on ``batch``; ConfigError on failure.

    ``optimizer=False`` (a training bound for a GPU) stops after the loss: an optimizer's
    GPU-only settings would fail here on the CPU.

    Runs on one thread: a sweep plans in the process that later forks its workers, and a
    parallel region here would start OpenMP's thread pool, which a forked child cannot use
    (its first parallel op then waits forever).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _step(network, batch, task, num_classes, arch_name, loss, trainer, optimizer)
    finally:
        torch.set_num_threads(threads)


def _step(network: Any, batch: tuple[Any, Any], task: str, num_classes: int | None,
          arch_name: str, loss: Callable[..., Any], trainer: Mapping[str, Any],
          optimizer_check: bool) -> None:
    from knowit_app.training.components import make_optimizer

    x, y = batch
    network.eval()  # batch norm and dropout: two points are too few to train-mode them
    try:
        out = network(x)
    except Exception as exc:
        raise ConfigError("arch.name", f"{arch_name} fails on inputs of shape "
                          f"{tuple(x.shape[1:])} (steps, components): {_reason(exc)}") from exc
    expected = (num_classes,) if task == "classification" else tuple(y.shape[1:])
    if tuple(getattr(out, "shape", ())[1:]) != expected:
        raise ConfigError("arch.name", f"{arch_name} returns outputs of shape "
                          f"{tuple(getattr(out, 'shape', ())[1:])} per point; the data needs "
                          f"{expected}")
    loss_kwargs = _plain(trainer["loss_kwargs"])
    try:
        value = loss(out, y, **loss_kwargs)
    except Exception as exc:
        key = "trainer.loss_kwargs" if loss_kwargs else "trainer.loss_fn"
        raise ConfigError(key, f"{trainer['loss_fn']} fails with {loss_kwargs}: "
                          f"{_reason(exc)}") from exc
    if value.dim() != 0:
        raise ConfigError("trainer.loss_kwargs", f"{trainer['loss_fn']} with {loss_kwargs} gives "
                          f"a tensor of shape {tuple(value.shape)}; training needs one number "
                          "per batch (reduction 'mean' or 'sum')")
    if not optimizer_check:
        return
    name, optim_kwargs = trainer["optim"], _plain(trainer["optim_kwargs"])
    lr = trainer["learning_rate"]
    cannot = (f"{name} cannot train {arch_name}: {{}}; Adam, AdamW and SGD train every "
              "architecture here")
    try:
        optimizer = make_optimizer(name, network.parameters(), float(lr), optim_kwargs)
    except Exception as exc:
        try:  # the optimizer itself, or only the kwargs given to it?
            make_optimizer(name, network.parameters(), float(lr), {})
        except Exception:
            raise ConfigError("trainer.optim", cannot.format(_reason(exc))) from exc
        raise ConfigError("trainer.optim_kwargs", f"{name} does not take {optim_kwargs}: "
                          f"{_reason(exc)}") from exc
    try:
        value.backward()
        optimizer.step()
    except Exception as exc:
        raise ConfigError("trainer.optim", cannot.format(_reason(exc))) from exc
