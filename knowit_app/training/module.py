"""The LightningModule: one model, one loss, epoch-wide metrics, KnowIt's logged names.

Logged once per epoch (never per step, which would cost a device sync each step):
``train_loss``, ``valid_loss`` and ``train_perf_<metric>`` / ``valid_perf_<metric>``. Epoch
losses are means over samples (Lightning weights each batch by its size), so the logged
``valid_loss`` equals the loss over the whole validation set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn

from knowit_app.training.components import optimizer_class, scheduler_class


class TrainingDivergedError(RuntimeError):
    """The training loss stopped being a finite number."""


class KnowitModule(L.LightningModule):
    """Wraps an architecture with its loss, optimizer, scheduler and performance metrics."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor],
                 loss_kwargs: Mapping[str, Any], optim: str, optim_kwargs: Mapping[str, Any],
                 learning_rate: float, lr_scheduler: str | None,
                 lr_scheduler_kwargs: Mapping[str, Any], monitor: str,
                 metric_factories: Mapping[str, Callable[[], torchmetrics.Metric]]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn
        self.loss_kwargs = dict(loss_kwargs)
        self.optim = optim
        self.optim_kwargs = dict(optim_kwargs)
        self.learning_rate = learning_rate
        self.lr_scheduler = lr_scheduler
        self.lr_scheduler_kwargs = dict(lr_scheduler_kwargs)
        self.monitor = monitor
        self.train_metrics = nn.ModuleDict({k: f() for k, f in metric_factories.items()})
        self.valid_metrics = nn.ModuleDict({k: f() for k, f in metric_factories.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        out = self.model(x)
        loss = self.loss_fn(out, y, **self.loss_kwargs)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=len(x))
        metrics = self.train_metrics if stage == "train" else self.valid_metrics
        if len(metrics):
            preds, target = (out, y) if out.dim() == 2 and y.dim() == 1 else (
                out.reshape(-1), y.reshape(-1))
            for name, metric in metrics.items():
                metric.update(preds.detach(), target)
                self.log(f"{stage}_perf_{name}", metric, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor],
                      batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "valid")

    def on_train_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("train_loss")
        if loss is not None and not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"train_loss became {float(loss)} in epoch {self.current_epoch}; "
                "try a lower trainer.learning_rate or gradient clipping")

    def configure_optimizers(self) -> Any:
        optimizer = optimizer_class(self.optim)(self.parameters(), lr=self.learning_rate,
                                               **self.optim_kwargs)
        if not self.lr_scheduler:
            return optimizer
        scheduler = scheduler_class(self.lr_scheduler)(optimizer, **self.lr_scheduler_kwargs)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch",
                                 "monitor": self.monitor}}
