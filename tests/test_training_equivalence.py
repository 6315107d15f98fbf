"""The app's fast training step is still the same training as a plain PyTorch loop.

The app steps a fused optimizer and, when no callback listens, skips Lightning's hook dispatch.
A plain eager loop (``zero_grad``/``backward``/``step``) on the same seed, network and batches
must log the same epoch losses: to float rounding with fused Adam, and within 1e-3 with torch's
per-tensor Adam (the floor loop's), whose different rounding order drifts a little over steps
(measured: 2e-4 relative on the validation loss after two epochs).
"""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from knowit_app.api import compose_config
from knowit_app.archs import build_model
from knowit_app.data.prepared import make_dataloader
from knowit_app.training.components import make_optimizer
from knowit_app.training.run import execute, plan_training

EPOCHS = 2


class EpochLosses(L.Callback):
    """Records each epoch's logged train/valid loss and the trainer's step count."""

    def __init__(self) -> None:
        self.losses: list[tuple[float, float]] = []
        self.global_step = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        self.losses.append((float(m["train_loss"]), float(m["valid_loss"])))
        self.global_step = trainer.global_step


class ListeningEpochLosses(EpochLosses):
    """Same, but listens to a per-step hook: the app must then take Lightning's full path."""

    def __init__(self) -> None:
        super().__init__()
        self.optimizer_steps = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.optimizer_steps += 1


def plain_loop(plan, fused: bool) -> list[tuple[float, float]]:
    """The same training written as a bare eager loop; per-epoch sample-weighted mean losses."""
    cfg, prepared = plan.cfg, plan.prepared
    torch.manual_seed(int(cfg.trainer.seed))
    model = build_model(cfg.arch, tuple(prepared.in_shape), tuple(prepared.out_shape),
                        cfg.trainer.task, None)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.trainer.learning_rate), fused=fused)
    bs, seed = int(cfg.data.batch_size), int(cfg.data.seed)
    train = make_dataloader(prepared, "train", bs, bool(cfg.data.shuffle_train), seed)
    valid = make_dataloader(prepared, "valid", bs, False, seed)
    losses = []
    for epoch in range(EPOCHS):
        train.sampler.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        for x, y in train:
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(x), count + len(x)
        model.eval()
        v_total, v_count = 0.0, 0
        with torch.inference_mode():
            for x, y in valid:
                v_total += float(torch.nn.functional.mse_loss(model(x), y)) * len(x)
                v_count += len(x)
        losses.append((total / count, v_total / v_count))
    return losses


@pytest.mark.slow
@pytest.mark.parametrize("recorder", [EpochLosses, ListeningEpochLosses])
def test_app_losses_equal_a_plain_loop(tmp_path, recorder):
    cfg = compose_config([f"exp_dir={tmp_path / 'exp'}", "data.limit=3", "arch.width=32",
                          "data.batch_size=64", f"trainer.max_epochs={EPOCHS}"])
    plan = plan_training(cfg)
    rec = recorder()
    execute(plan, tmp_path / "run", callbacks=[rec])
    assert len(rec.losses) == EPOCHS
    for fused, tolerance in ((True, 1e-5), (False, 1e-3)):
        expected = plain_loop(plan, fused)
        for app, plain in zip(rec.losses, expected, strict=True):
            assert math.isclose(app[0], plain[0], rel_tol=tolerance), (fused, rec.losses, expected)
            assert math.isclose(app[1], plain[1], rel_tol=tolerance), (fused, rec.losses, expected)
    # Every optimizer step is counted (checkpoint names, W&B steps and resuming read it).
    steps = len(make_dataloader(plan.prepared, "train", 64, True, 0)) * EPOCHS
    assert rec.global_step == steps
    if isinstance(rec, ListeningEpochLosses):
        assert rec.optimizer_steps == steps


def test_optimizer_is_fused_unless_the_user_chose():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert make_optimizer("Adam", params, 1e-3, {}).defaults["fused"] is True
    # RMSprop has no fused kernel: foreach instead.
    assert make_optimizer("RMSprop", params, 1e-3, {}).defaults["foreach"] is True
    kept = make_optimizer("Adam", params, 1e-3, {"foreach": False})
    assert (kept.defaults["fused"], kept.defaults["foreach"]) == (None, False)
    assert make_optimizer("Adam", params, 1e-3, {}, allow_fused=False).defaults["foreach"]
