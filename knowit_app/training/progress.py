"""A progress bar over each epoch's training batches, only when stderr is a terminal.

In a terminal a bar shows that a long epoch is moving; in a file (Slurm logs, a sweep
worker's log, a pipe) it would be noise, so there only the plain per-epoch lines
(:class:`~knowit_app.training.callbacks.EpochSummary`) are written. Lightning's own bar
(``trainer.enable_progress_bar=true``) replaces this one.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import lightning as L


def stderr_is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def terminal_bar(lightning_bar: bool, stream: TextIO | None = None) -> list[L.Callback]:
    """The bar's callback, or none (Lightning's bar is on, or stderr is not a terminal)."""
    if lightning_bar or not stderr_is_terminal(stream):
        return []
    return [EpochBar(stream)]


class EpochBar(L.Callback):
    """``epoch 2/5  43%|████      | 88/205 [00:01<00:02]``, cleared when the epoch's training
    batches are done (the epoch's summary line follows)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.bar: Any = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from tqdm import tqdm

        total = trainer.num_training_batches
        self.bar = tqdm(total=total if total != float("inf") else None, leave=False,
                        file=self.stream or sys.stderr, dynamic_ncols=True,
                        desc=f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.bar is not None:  # the module trains several batches per call
            done = getattr(pl_module, "train_batches_done", self.bar.n + 1)
            self.bar.update(done - self.bar.n)

    def on_validation_epoch_start(self, trainer: L.Trainer,
                                  pl_module: L.LightningModule) -> None:
        self._close()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
