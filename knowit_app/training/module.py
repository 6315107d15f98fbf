"""The LightningModule: one model, one loss, epoch-wide metrics, KnowIt's logged names.

Logged once per epoch, from sums kept on the device (no ``self.log`` and no device sync per
step): ``train_loss``, ``valid_loss`` and ``train_perf_<metric>`` / ``valid_perf_<metric>``.
Epoch losses are sample-weighted means, so the logged ``valid_loss`` equals the loss over the
whole validation set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn

from knowit_app.training.components import make_optimizer, scheduler_class

# Training batches per ``training_step`` call. Lightning's ``dataloader_iter`` step form lets
# the module pull its batches itself; its per-call work (every callback asked per batch hook,
# the logger connector, progress counters, argument building) costs about 0.45 ms, 10% of a
# batch-64 MLP step on a 2-core CPU, and is paid once per chunk instead of once per batch.
# Batch-level callback hooks (``on_train_batch_start/end``) therefore fire once per chunk; the
# optimizer still steps once per batch, so ``trainer.global_step`` counts batches as before.
BATCHES_PER_CALL = 32


class TrainingDivergedError(RuntimeError):
    """The training loss stopped being a finite number."""


class KnowitModule(L.LightningModule):
    """Wraps an architecture with its loss, optimizer, scheduler and performance metrics."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor],
                 loss_kwargs: Mapping[str, Any], optim: str, optim_kwargs: Mapping[str, Any],
                 learning_rate: float, lr_scheduler: str | None,
                 lr_scheduler_kwargs: Mapping[str, Any], monitor: str,
                 metric_factories: Mapping[str, Callable[[], torchmetrics.Metric]],
                 gradient_clip_val: float | None = None,
                 gradient_clip_algorithm: str = "norm") -> None:
        super().__init__()
        # Our own three-line step (below) instead of Lightning's closure machinery: measured
        # 0.3 ms less per step on a 2-core CPU, which is 5% of a batch-64 MLP step.
        self.automatic_optimization = False
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
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
        self._loss_sums: dict[str, torch.Tensor] = {}
        self._loss_counts: dict[str, int] = {}
        self._train_epoch_loss: torch.Tensor | None = None
        # Set at each epoch's start: the optimizer, its parameters, whether a step may skip
        # Lightning's hook dispatch.
        self._optimizer: Any = None
        self._params: list[nn.Parameter] = []
        self._plain_step = False
        self.train_batches_done = 0  # in the current epoch; the progress bar reads it

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets plain attributes (``_current_fx_name``...) several times per step;
        # nn.Module's checks for parameters, buffers and submodules are wasted on them. A
        # name already in __dict__ is none of those, so a plain value can go straight there.
        if name in self.__dict__ and (value is None or isinstance(value, (str, bool, int))):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        out = self.model(x)
        loss = self.loss_fn(out, y, **self.loss_kwargs)
        # Accumulate on the device; no self.log per step (Lightning's per-call bookkeeping
        # costs more than a small model's step). Logged once in the epoch-end hooks.
        n = len(x)
        total = self._loss_sums.get(stage)
        if total is None:
            self._loss_sums[stage] = loss.detach() * n
        else:  # one in-place op per step, no new tensor
            total.add_(loss.detach(), alpha=n)
        self._loss_counts[stage] = self._loss_counts.get(stage, 0) + n
        metrics = self.train_metrics if stage == "train" else self.valid_metrics
        if len(metrics):
            preds, target = (out, y) if out.dim() == 2 and y.dim() == 1 else (
                out.reshape(-1), y.reshape(-1))
            for metric in metrics.values():
                metric.update(preds.detach(), target)
        return loss

    def _start_epoch(self, stage: str) -> None:
        if stage == "train":
            self._train_epoch_loss = None
            self.train_batches_done = 0
        self._loss_sums.pop(stage, None)
        self._loss_counts.pop(stage, None)
        for metric in (self.train_metrics if stage == "train" else self.valid_metrics).values():
            metric.reset()

    def _log_epoch(self, stage: str) -> torch.Tensor | None:
        """Log the stage's sample-weighted mean loss and its metrics; return the loss."""
        count = self._loss_counts.pop(stage, 0)
        if not count:
            return None
        loss = self._loss_sums.pop(stage) / count
        # batch_size=1: one value per epoch, already the epoch's sample-weighted mean.
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=1)
        metrics = self.train_metrics if stage == "train" else self.valid_metrics
        for name, metric in metrics.items():
            self.log(f"{stage}_perf_{name}", metric.compute(), on_step=False, on_epoch=True,
                     batch_size=1)
            metric.reset()
        return loss

    def training_step(self, dataloader_iter: Iterator[Any]) -> torch.Tensor | None:
        """Train on up to :data:`BATCHES_PER_CALL` batches; return the last one's loss."""
        loss = None
        for _ in range(BATCHES_PER_CALL):
            try:
                batch, _, _ = next(dataloader_iter)
            except StopIteration:
                break
            loss = self._train_batch(self._transfer(batch))
            self.train_batches_done += 1
            if dataloader_iter.done:
                # Now, not in on_train_epoch_end: callbacks' epoch-end hooks run before the
                # module's, and they (epoch summary, W&B, hyperband) read train_loss.
                self._train_epoch_loss = self._log_epoch("train")
                break
        return loss

    def _transfer(self, batch: Any) -> Any:
        """What Lightning does to a batch before a step, which the iterator form leaves to us."""
        trainer = self.trainer
        batch = trainer.precision_plugin.convert_input(batch)
        if self.device.type != "cpu":
            batch = trainer.strategy.batch_to_device(batch)
        return batch

    def _train_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        optimizer = self._optimizer
        loss = self._step(batch, "train")
        for param in self._params:  # zero_grad(set_to_none=True), without its profiler scope
            param.grad = None
        if self.gradient_clip_val:
            self.manual_backward(loss)
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val,
                                gradient_clip_algorithm=self.gradient_clip_algorithm)
            optimizer.step()
        elif self._plain_step:
            loss.backward()
            # What LightningOptimizer.step adds around the torch step once its hooks have no
            # listener: the loop's step counting (trainer.global_step).
            optimizer._on_before_step()
            optimizer.optimizer.step()
            optimizer._on_after_step()
        else:
            self.manual_backward(loss)
            optimizer.step()
        return loss.detach()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "valid")

    def on_train_epoch_start(self) -> None:
        self._optimizer = self.optimizers()
        self._params = [p for group in self._optimizer.param_groups for p in group["params"]]
        self._plain_step = self._step_has_no_hooks()
        self._start_epoch("train")

    def _step_has_no_hooks(self) -> bool:
        """Whether ``manual_backward`` and Lightning's optimizer step add nothing but dispatch.

        True for full precision on one device when neither this module nor any callback
        overrides a backward or before-optimizer-step hook. The step then calls torch directly:
        Lightning's hook dispatch (every callback asked, per hook, per step) costs a small model
        more than its arithmetic; measured here, 0.6 ms of a 1.8 ms step for a tiny MLP.
        """
        from lightning.pytorch.plugins.precision import Precision
        from lightning.pytorch.strategies import SingleDeviceStrategy

        trainer = self.trainer
        if (type(trainer.precision_plugin) is not Precision
                or type(trainer.strategy) is not SingleDeviceStrategy
                or type(self).backward is not L.LightningModule.backward):
            return False
        hooks = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
        return not any(getattr(type(obj), hook) is not getattr(base, hook)
                       for obj, base in ((self, L.LightningModule),
                                         *((cb, L.Callback) for cb in trainer.callbacks))
                       for hook in hooks)

    def on_validation_epoch_start(self) -> None:
        self._start_epoch("valid")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("valid")

    def on_train_epoch_end(self) -> None:
        loss = self._train_epoch_loss
        if loss is None:  # the loop ended the epoch without flagging a last batch
            loss = self._log_epoch("train")
        if loss is not None and not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"train_loss became {float(loss)} in epoch {self.current_epoch + 1}; "
                "try a lower trainer.learning_rate or gradient clipping")
        self._check_finite()
        self._step_scheduler()

    def _check_finite(self) -> None:
        """Every logged loss and the monitored metric must stay finite: a run whose valid_loss
        became NaN or inf has diverged and fails, even if an earlier epoch's checkpoint was
        finite (a diverged run never counts, in a single training or a sweep alike)."""
        metrics = self.trainer.callback_metrics
        for name in sorted(k for k in metrics if k.endswith("_loss") or k == self.monitor):
            value = metrics[name]
            if not torch.isfinite(value).all():
                raise TrainingDivergedError(
                    f"{name} became {float(value)} in epoch {self.current_epoch + 1}; try a "
                    "lower trainer.learning_rate or gradient clipping")

    def _step_scheduler(self) -> None:
        """Once per epoch, after validation (so a plateau scheduler sees this epoch's score)."""
        scheduler = self.lr_schedulers()
        if scheduler is None:
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            value = self.trainer.callback_metrics.get(self.monitor)
            if value is not None:
                scheduler.step(value)
        else:
            scheduler.step()

    def _scales_gradients(self) -> bool:
        """Whether the precision plugin scales the loss (fp16 AMP): no fused optimizer then."""
        plugin = getattr(self._trainer, "precision_plugin", None)
        return getattr(plugin, "scaler", None) is not None

    def configure_optimizers(self) -> Any:
        optimizer = make_optimizer(self.optim, self.parameters(), self.learning_rate,
                                   self.optim_kwargs, allow_fused=not self._scales_gradients())
        if not self.lr_scheduler:
            return optimizer
        scheduler = scheduler_class(self.lr_scheduler)(optimizer, **self.lr_scheduler_kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler}}
