"""(d) ``consolidate_sweep`` on a synthetic sweep of 1,000 finished runs, in process.

Each run directory holds what a real run leaves that consolidation looks at:
``run_result.json`` (state finished, monitor, mode, best score, best checkpoint, epochs, fit
time), a tiny stand-in checkpoint ``bestmodel-epoch=1-valid_loss=0.12.ckpt``,
``model_args.yaml`` and ``lightning_logs/version_0/metrics.csv``; the sweep directory holds
``sweep_config.yaml`` with ``metric: {name: valid_loss, goal: minimize}``. Every repetition
consolidates a freshly generated experiment directory (generation is not timed), so each one
ranks the runs and copies the winner into an empty model directory.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

from _common import Figure, fresh_dir, log

MODEL, SWEEP = "bench", "synthetic"
CKPT = "bestmodel-epoch=1-valid_loss=0.12.ckpt"
METRICS = "epoch,step,train_loss,valid_loss\n" + "".join(
    f"{e},{(e + 1) * 100 - 1},{0.5 / (e + 1):.4f},{0.4 / (e + 1):.4f}\n" for e in range(5))


def make_sweep(exp_dir: Path, n_runs: int, seed: int) -> Path:
    rng = random.Random(seed)
    sweep_dir = exp_dir / "models" / MODEL / "sweeps" / SWEEP
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep_config.yaml").write_text(
        f"name: {SWEEP}\nmethod: grid\nmetric: {{goal: minimize, name: valid_loss}}\n"
        "parameters:\n  arch.dropout: {values: [0.0, 0.2, 0.5]}\n")
    now = time.time()
    for i in range(n_runs):
        run = sweep_dir / f"run-{i:04d}"
        logs = run / "lightning_logs" / "version_0"
        logs.mkdir(parents=True)
        score = rng.uniform(0.03, 0.5)
        (run / "run_result.json").write_text(json.dumps({
            "state": "finished", "monitor": "valid_loss", "mode": "min",
            "best_score": score, "best_checkpoint": CKPT, "epochs": 5,
            "fit_seconds": round(rng.uniform(5, 20), 3), "started": now, "ended": now + 10,
        }, indent=2) + "\n")
        (run / CKPT).write_bytes(b"\0" * 1024)
        (run / "model_args.yaml").write_text(
            f"data: {{name: synth_2, batch_size: 64}}\narch: {{name: MLP, dropout: {score:.3f}}}\n"
            "trainer: {task: regression, max_epochs: 5}\n")
        (logs / "metrics.csv").write_text(METRICS)
    return sweep_dir


def bench_consolidation(reps: int, work: Path, n_runs: int, target_s: float) -> list[Figure]:
    from knowit_app.experiment.consolidate import consolidate_sweep

    times: list[float] = []
    gen: list[float] = []
    for rep in range(reps):
        exp = fresh_dir(work, "consolidate-")
        t0 = time.perf_counter()
        make_sweep(exp, n_runs, seed=rep)
        gen.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = consolidate_sweep(exp, MODEL, SWEEP)
        times.append(time.perf_counter() - t0)
        if not (result.model_dir / CKPT).is_file() or len(result.ranking) != n_runs:
            raise RuntimeError("consolidation did not promote a run of the synthetic sweep")
        shutil.rmtree(exp, ignore_errors=True)
        log(f"(d) rep {rep + 1}/{reps}: {times[-1]:.3f} s (best {result.run}, "
            f"generated in {gen[-1]:.2f} s)")
    return [Figure("d_consolidate", f"(d) consolidate {n_runs} runs", "s", times,
                   target=target_s, note="in process, fresh dir each rep",
                   details={"generate_s": gen})]
