"""Small Lightning callbacks of our own."""

from __future__ import annotations

import logging
import time

import lightning as L

log = logging.getLogger("knowit_app.training")


class EpochSummary(L.Callback):
    """One log line per epoch instead of a progress bar: readable in files and on Slurm."""

    def __init__(self) -> None:
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items())
                   if v.numel() == 1}
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        log.info("epoch %d/%d: %s (%.1f s)", trainer.current_epoch + 1, trainer.max_epochs,
                 shown, time.perf_counter() - self._started)
