"""(a) Per-epoch training time: the app against ``floor.py``, the plain eager loop, interleaved.

- app: ``knowit_app.training.run.execute(plan, tmpdir)`` on the tutorial config with
  floor.py's network (``FLOOR_NETWORK``: dropout 0.2) at the batch size (``compose_config``
  -> ``plan_training``, i.e. the app's ``prepare()``): the app's own path (seeding,
  ``KnowitModule``, ``build_trainer`` with its checkpoints, CSV logger and callbacks, the
  batches of ``make_dataloader``, Lightning's fit loop). An epoch is timed by a Lightning
  callback from ``on_train_epoch_start`` to ``on_train_epoch_end``, which Lightning calls after
  the epoch's validation pass and checkpoint saves: the whole epoch as a user pays it.
- floor: ``bench/floor.py`` (a verbatim copy of the project's reference loop), run in this same
  process through its own ``main()`` with ``--gather pre --batch B --epochs E`` and the app's
  split sizes (``--n-train``/``--n-valid``; KnowIt's 72083/24344 for synth_2). Its epoch is its
  training pass plus its validation pass, windows gathered once up front.

Repetitions alternate in one process in ABBA order (app, floor, floor, app, ...) so that a busy
machine's drifts hit both sides alike; the ratio is taken per pair and its median reported. The
first epoch of each run is a warm-up and is left out when there are two or more. Each run also
records its process CPU time and involuntary context switches (``resource.getrusage``): a
wall-time ratio far from the CPU-time ratio, or thousands of involuntary switches, mean the
figure measured the neighbours.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, Figure, log, median

# floor.py's MLP has dropout 0.2; the app's MLP default is KnowIt's 0.5, and torch's dropout
# costs more at 0.5 (here 0.97 against 0.63 ms per 256x256 call). The app trains floor.py's
# network, so both sides do the same work (both output layers without bias, as KnowIt's).
FLOOR_NETWORK = ["arch.dropout=0.2"]


def _quiet() -> None:
    import logging

    warnings.filterwarnings("ignore", message=".*srun.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    for name in ("knowit_app", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)


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


def floor_run(batch_size: int, epochs: int, n_train: int, n_valid: int,
              work: Path) -> dict[str, Any]:
    """One run of ``floor.py``'s ``main()`` in this process; its own per-epoch times."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import floor

    results = Path(tempfile.mkstemp(prefix="floor-", suffix=".jsonl", dir=work)[1])
    argv = [str(results), "--gather", "pre", "--batch", str(batch_size), "--epochs",
            str(epochs), "--n-train", str(n_train), "--n-valid", str(n_valid)]
    saved = sys.argv
    sys.argv = ["floor.py", *argv]
    cpu0, csw0 = _usage()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            floor.main()
    finally:
        sys.argv = saved
    cpu1, csw1 = _usage()
    rec = json.loads(results.read_text().splitlines()[-1])
    results.unlink()
    eps = rec["epochs"]
    return {"epoch_s": [e["epoch_s"] for e in eps], "valid_s": [e["valid_s"] for e in eps],
            "losses": [(e["train_loss"], e["valid_loss"]) for e in eps],
            "fit_s": rec["loop_s"], "cpu_s": cpu1 - cpu0, "involuntary_switches": csw1 - csw0}


def per_epoch(times: list[float]) -> float:
    """One run's per-epoch figure: the median epoch, the first (warm-up) left out."""
    return median(times[1:] if len(times) > 1 else times)


def bench_epochs(batch_sizes: list[int], epochs: int, reps: int, work: Path,
                 target_ratio: float) -> list[Figure]:
    """App / floor per-epoch ratio at each batch size, from interleaved pairs."""
    _quiet()
    import torch

    deterministic_before = torch.are_deterministic_algorithms_enabled()
    figures: list[Figure] = []
    plans = {}
    for bs in batch_sizes:
        t0 = time.perf_counter()
        plans[bs] = make_plan(bs, epochs, work / "exp", FLOOR_NETWORK)
        pts = plans[bs].prepared.points
        log(f"(a) planned batch {bs} in {time.perf_counter() - t0:.2f} s "
            f"({len(pts['train'])} train / {len(pts['valid'])} valid points)")
    raw: dict[int, dict[str, list[dict[str, Any]]]] = {bs: {"app": [], "floor": []}
                                                       for bs in batch_sizes}
    for rep in range(reps):
        for bs in batch_sizes:
            pts = plans[bs].prepared.points
            order = ("app", "floor") if rep % 2 == 0 else ("floor", "app")
            for side in order:
                run = (app_run(plans[bs], work) if side == "app" else
                       floor_run(bs, epochs, len(pts["train"]), len(pts["valid"]), work))
                raw[bs][side].append(run)
                log(f"(a) rep {rep + 1}/{reps} batch {bs:4d} {side:5s}: epochs "
                    + " ".join(f"{t:.2f}" for t in run["epoch_s"])
                    + f" s; cpu {run['cpu_s']:.1f} s; {run['involuntary_switches']} "
                    "involuntary switches")
    torch.use_deterministic_algorithms(deterministic_before)
    for bs in batch_sizes:
        app = [per_epoch(r["epoch_s"]) for r in raw[bs]["app"]]
        flo = [per_epoch(r["epoch_s"]) for r in raw[bs]["floor"]]
        ratios = [a / b for a, b in zip(app, flo, strict=True)]
        cpu_ratios = [a["cpu_s"] / b["cpu_s"]
                      for a, b in zip(raw[bs]["app"], raw[bs]["floor"], strict=True)]
        pts = plans[bs].prepared.points
        details = {"batch_size": bs, "n_train": len(pts["train"]), "n_valid": len(pts["valid"]),
                   "app_epoch_s": app, "floor_epoch_s": flo, "cpu_time_ratio": cpu_ratios,
                   "app_valid_s": [per_epoch(r["valid_s"]) for r in raw[bs]["app"]],
                   "floor_valid_s": [per_epoch(r["valid_s"]) for r in raw[bs]["floor"]],
                   "raw": raw[bs]}
        figures.append(Figure(f"a_app_epoch_bs{bs}", f"(a) app epoch, batch {bs}", "s", app,
                              note="train + validation + checkpoint, timed inside Lightning"))
        figures.append(Figure(f"a_floor_epoch_bs{bs}", f"(a) floor.py epoch, batch {bs}", "s",
                              flo, note="floor.py --gather pre: train + validation"))
        figures.append(Figure(f"a_ratio_bs{bs}", f"(a) ratio app/floor.py, batch {bs}", "x",
                              ratios, target=target_ratio,
                              note=f"{reps} interleaved pair(s) in one process",
                              details=details))
        figures.append(Figure(f"a_cpu_ratio_bs{bs}", "(a)   same, by CPU time", "x", cpu_ratios,
                              note="process CPU time of the whole run, all epochs"))
    return figures
