"""(a) Per-epoch training time: the app's path against a bare PyTorch loop, interleaved.

Both sides start from the same ``TrainingPlan`` (Hydra config composed with
``compose_config`` -> ``plan_training``, which runs the app's ``prepare()``), so they train on
the same prepared tensors:

- app: ``knowit_app.training.run.execute(plan, tmpdir)``, i.e. the app's own path (seeding,
  ``KnowitModule``, ``build_trainer`` with its checkpoint, CSV logger and callbacks,
  ``make_dataloader`` batches, Lightning's fit loop). An epoch is timed by a Lightning callback
  from ``on_train_epoch_start`` to ``on_train_epoch_end``, which Lightning calls after the
  epoch's validation pass and checkpoint save: the whole epoch as a user pays it.
- bare: a plain loop written here doing identical work: the same network
  (``knowit_app.archs.build_model`` on the same config, after ``torch.manual_seed`` with the
  trainer's seed, as ``seed_everything`` does), ``torch.optim.Adam`` with the configured
  learning rate, the same training windows in the same order (the seeded permutation the app's
  sampler draws, ``seed + epoch``) built by the same gather, ``PreparedData.batch`` applied to
  plain slices of that permutation (no DataLoader), forward -> ``mse_loss`` -> zero_grad ->
  backward -> step per batch, the epoch's mean train loss, then a validation pass in
  ``torch.inference_mode()`` (as Lightning runs it) over the validation points in order. The
  deterministic-algorithms flag is set as the app's config sets it, and the global RNG draw a
  DataLoader iterator makes when it starts (one per epoch for training, one for validation) is
  made too, so dropout sees the same random stream: both sides log the same epoch losses, which
  the result file shows as a check that the work is identical.

Besides wall time, each run records its process CPU time and involuntary context switches
(``resource.getrusage``): on a busy machine, a wall-time ratio far from the CPU-time ratio, or
thousands of involuntary switches, mean the figure measured the neighbours.

A third case trains a tiny MLP (width 4, depth 1) at batch 64: its compute is next to nothing,
so app minus bare per step is the app path's fixed cost per step (Lightning's loop, logging,
callbacks, DataLoader), reported in milliseconds.

Repetitions are interleaved in one process in ABBA order (app, bare, bare, app, ...), so slow
drifts of a busy machine hit both sides alike; the ratio is taken per pair and its median
reported. The first epoch of each run is a warm-up and is left out when there are two or more.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _common import Figure, log, median


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore", message=".*srun.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    logging.getLogger("knowit_app").setLevel(logging.WARNING)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


TINY_ARCH = ["arch.width=4", "arch.depth=1"]


def make_plan(batch_size: int, epochs: int, exp_dir: Path, extra: list[str] = ()) -> Any:
    """The tutorial config at ``batch_size`` for ``epochs`` epochs, planned by the app."""
    from knowit_app.api import compose_config
    from knowit_app.training.run import plan_training

    cfg = compose_config([f"data.batch_size={batch_size}", f"trainer.max_epochs={epochs}",
                          f"exp_dir={exp_dir}", "model_name=bench", *extra])
    return plan_training(cfg)


def _usage() -> tuple[float, int]:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_nivcsw


def _dataloader_draw() -> None:
    """The one draw from the global RNG a DataLoader iterator makes when it starts."""
    import torch

    torch.empty((), dtype=torch.int64).random_()


def _epoch_timer() -> Any:
    import lightning as L

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.epoch_s: list[float] = []
            self.valid_s: list[float] = []
            self.losses: list[tuple[float, float]] = []
            self._t0 = 0.0
            self._v0 = 0.0

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._t0 = time.perf_counter()

        def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._v0 = time.perf_counter()

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.valid_s.append(time.perf_counter() - self._v0)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.epoch_s.append(time.perf_counter() - self._t0)
            m = trainer.callback_metrics
            self.losses.append((float(m.get("train_loss", float("nan"))),
                                float(m.get("valid_loss", float("nan")))))

    return EpochTimer()


def app_run(plan: Any, work: Path) -> dict[str, Any]:
    """One ``execute`` of the plan; per-epoch times from inside Lightning."""
    from knowit_app.training.run import execute

    out = Path(tempfile.mkdtemp(prefix="app-", dir=work))
    timer = _epoch_timer()
    cpu0, csw0 = _usage()
    t0 = time.perf_counter()
    result = execute(plan, out, callbacks=[timer])
    total = time.perf_counter() - t0
    cpu1, csw1 = _usage()
    shutil.rmtree(out, ignore_errors=True)
    return {"epoch_s": timer.epoch_s, "valid_s": timer.valid_s, "losses": timer.losses,
            "fit_s": result.fit_seconds, "execute_s": total, "cpu_s": cpu1 - cpu0,
            "involuntary_switches": csw1 - csw0}


def bare_run(plan: Any, epochs: int) -> dict[str, Any]:
    """The same training written as a plain PyTorch loop."""
    import torch
    import torch.nn.functional as F

    from knowit_app.archs import build_model

    cfg, prepared = plan.cfg, plan.prepared
    batch_size, seed = int(cfg.data.batch_size), int(cfg.data.seed)
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))
    torch.manual_seed(int(cfg.trainer.seed))
    model = build_model(cfg.arch, tuple(prepared.in_shape), tuple(prepared.out_shape),
                        cfg.trainer.task, None)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.trainer.learning_rate))
    train_rows, valid_rows = prepared.points["train"], prepared.points["valid"]
    n_train, n_valid = len(train_rows), len(valid_rows)
    shuffle = bool(cfg.data.shuffle_train)
    epoch_s: list[float] = []
    valid_s: list[float] = []
    losses: list[tuple[float, float]] = []
    cpu0, csw0 = _usage()
    t_start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        _dataloader_draw()
        model.train()
        order = train_rows
        if shuffle:  # the permutation the app's sampler draws for this epoch
            gen = torch.Generator().manual_seed(seed + epoch)
            order = train_rows[torch.randperm(n_train, generator=gen).numpy()]
        train_sum = torch.zeros(())
        for i in range(0, n_train, batch_size):
            xb, yb = prepared.batch(order[i:i + batch_size])
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            train_sum += loss.detach() * len(xb)
        v0 = time.perf_counter()
        _dataloader_draw()
        model.eval()
        valid_sum = torch.zeros(())
        with torch.inference_mode():
            for i in range(0, n_valid, batch_size):
                xb, yb = prepared.batch(valid_rows[i:i + batch_size])
                valid_sum += F.mse_loss(model(xb), yb) * len(xb)
        losses.append((float(train_sum) / n_train, float(valid_sum) / n_valid))
        t1 = time.perf_counter()
        valid_s.append(t1 - v0)
        epoch_s.append(t1 - t0)
    fit = time.perf_counter() - t_start
    cpu1, csw1 = _usage()
    return {"epoch_s": epoch_s, "valid_s": valid_s, "losses": losses, "fit_s": fit,
            "cpu_s": cpu1 - cpu0, "involuntary_switches": csw1 - csw0}


def per_epoch(times: list[float]) -> float:
    """One run's per-epoch figure: the median epoch, the first (warm-up) left out."""
    return median(times[1:] if len(times) > 1 else times)


def _cases(batch_sizes: list[int], tiny: bool) -> list[tuple[str, int, list[str]]]:
    cases = [(f"bs{bs}", bs, []) for bs in batch_sizes]
    if tiny:
        cases.append(("tiny", 64, TINY_ARCH))
    return cases


def _cpu_per_epoch(run: dict[str, Any]) -> float:
    return run["cpu_s"] / len(run["epoch_s"])


def bench_epochs(batch_sizes: list[int], epochs: int, reps: int, work: Path,
                 target_ratio: float, tiny: bool = True) -> list[Figure]:
    _quiet()
    import torch

    deterministic_before = torch.are_deterministic_algorithms_enabled()
    figures: list[Figure] = []
    cases = _cases(batch_sizes, tiny)
    plans = {}
    for name, bs, extra in cases:
        t0 = time.perf_counter()
        plans[name] = make_plan(bs, epochs, work / "exp", extra)
        log(f"(a) planned {name} (batch {bs}) in {time.perf_counter() - t0:.2f} s "
            f"({len(plans[name].prepared.points['train'])} train / "
            f"{len(plans[name].prepared.points['valid'])} valid points)")
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {name: {"app": [], "bare": []}
                                                       for name, _, _ in cases}
    for rep in range(reps):
        for name, _, _ in cases:
            order = ("app", "bare") if rep % 2 == 0 else ("bare", "app")
            for side in order:
                plan = plans[name]
                run = app_run(plan, work) if side == "app" else bare_run(plan, epochs)
                raw[name][side].append(run)
                log(f"(a) rep {rep + 1}/{reps} {name:5s} {side:4s}: epochs "
                    + " ".join(f"{t:.2f}" for t in run["epoch_s"])
                    + f" s; cpu {run['cpu_s']:.1f} s; {run['involuntary_switches']} "
                    "involuntary switches")
    torch.use_deterministic_algorithms(deterministic_before)
    for name, bs, _ in cases:
        app = [per_epoch(r["epoch_s"]) for r in raw[name]["app"]]
        bare = [per_epoch(r["epoch_s"]) for r in raw[name]["bare"]]
        ratios = [a / b for a, b in zip(app, bare, strict=True)]
        cpu_ratios = [_cpu_per_epoch(a) / _cpu_per_epoch(b)
                      for a, b in zip(raw[name]["app"], raw[name]["bare"], strict=True)]
        points = plans[name].prepared.points
        steps = -(-len(points["train"]) // bs)
        val_steps = -(-len(points["valid"]) // bs)
        overhead_ms = [1000 * (a - b) / (steps + val_steps) for a, b in zip(app, bare,
                                                                           strict=True)]
        # Same seed, same windows, same order, same RNG stream: the epoch-1 losses agree.
        a_loss, b_loss = raw[name]["app"][0]["losses"][0], raw[name]["bare"][0]["losses"][0]
        details = {
            "batch_size": bs, "train_steps_per_epoch": steps, "valid_steps_per_epoch": val_steps,
            "app_epoch_s": app, "bare_epoch_s": bare,
            "cpu_time_ratio": cpu_ratios,
            "app_valid_s": [per_epoch(r["valid_s"]) for r in raw[name]["app"]],
            "bare_valid_s": [per_epoch(r["valid_s"]) for r in raw[name]["bare"]],
            "app_overhead_per_step_ms": overhead_ms,
            "epoch1_losses_app_train_valid": a_loss,
            "epoch1_losses_bare_train_valid": b_loss,
            "raw": raw[name],
        }
        if name == "tiny":
            figures.append(Figure("a_tiny_overhead_per_step", "(a) app cost per step, tiny MLP",
                                  "ms", overhead_ms,
                                  note="(app - bare epoch) / (train + valid steps), batch 64, "
                                       "width 4, depth 1", details=details))
            continue
        figures.append(Figure(f"a_app_epoch_bs{bs}", f"(a) app epoch, batch {bs}", "s", app,
                              note=f"train ({steps} steps) + valid ({val_steps} steps)"))
        figures.append(Figure(f"a_bare_epoch_bs{bs}", f"(a) bare epoch, batch {bs}", "s", bare))
        figures.append(Figure(f"a_ratio_bs{bs}", f"(a) ratio app/bare, batch {bs}", "x",
                              ratios, target=target_ratio,
                              note=f"{reps} interleaved pair(s); epoch-1 losses app "
                                   f"{a_loss[0]:.6f}/{a_loss[1]:.6f}, bare "
                                   f"{b_loss[0]:.6f}/{b_loss[1]:.6f}", details=details))
        figures.append(Figure(f"a_cpu_ratio_bs{bs}", "(a)   same, by CPU time", "x", cpu_ratios,
                              note="process CPU time per epoch, all epochs"))
    return figures
