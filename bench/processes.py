"""(b) the tutorial run end to end, (c) sweep overhead per run, (e) ``knowit-app --help``.

Each figure times a fresh child process from just before it starts to its exit.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, Figure, app_command, child_env, fresh_dir, log, run_child

TUTORIAL_EPOCHS = 5
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+):")


def warm_cache(work: Path, threads: int | None) -> float:
    """Prepare the tutorial dataset once in a child, so no timed run reads it cold from disk."""
    code = ("from knowit_app.api import compose_config\n"
            "from knowit_app.data.prepared import prepare\n"
            "cfg = compose_config([])\n"
            f"prepare(cfg.data, cfg.trainer.task, {str(work)!r})\n")
    return run_child([sys.executable, "-c", code], cwd=work, env=child_env(threads)).check().wall_s


# --- (b) -----------------------------------------------------------------------------------

def _phases(wall: float, started_at: float, probe: dict[str, Any]) -> dict[str, float]:
    """Split one tutorial run's wall time into consecutive phases (they add up to ``wall``)."""
    m = probe["marks"]
    lines = probe["log"]
    train_line = next(t for t, msg in lines if msg.startswith("training "))
    epoch_lines = [t for t, msg in lines if EPOCH_LINE.match(msg)]
    done_line = next(t for t, msg in lines if msg.startswith("model ") and " best " in msg)
    end = started_at + wall
    points = [
        ("interpreter + imports", started_at, m["imports_done"]),
        ("hydra config + run dir", m["imports_done"], m["plan_start"]),
        ("dataset preparation (plan_training)", m["plan_start"], m["plan_end"]),
        ("setup + first step", m["plan_end"], m["first_step_end"]),
        ("training (rest of the epochs)", m["first_step_end"], epoch_lines[-1]),
        ("writing results", epoch_lines[-1], done_line),
        ("exit", done_line, end),
    ]
    phases = {name: b - a for name, a, b in points}
    phases["_prepare() alone"] = m["prepare_end"] - m["prepare_start"]
    phases["_app imported (knowit_app.app)"] = m["app_imported"] - started_at
    phases["_model built + trainer set up (to 'training' log line)"] = train_line - m["plan_end"]
    epochs = [epoch_lines[0] - m["plan_end"]] + [b - a for a, b in
                                                 zip(epoch_lines, epoch_lines[1:], strict=False)]
    phases["_epoch times (from log lines)"] = epochs  # type: ignore[assignment]
    return phases


def bench_tutorial(reps: int, work: Path, threads: int | None,
                   target_s: float) -> list[Figure]:
    walls: list[float] = []
    rss: list[float] = []
    splits: list[dict[str, float]] = []
    for rep in range(reps):
        exp = fresh_dir(work, "tutorial-")
        out = exp / "probe.json"
        cmd = [sys.executable, str(BENCH_DIR / "_tutorial_probe.py"), str(out),
               "model_name=bench", f"exp_dir={exp}"]
        run = run_child(cmd, cwd=exp, env=child_env(threads), timeout=1800).check()
        probe = json.loads(out.read_text())
        if not (exp / "models" / "bench" / "run_result.json").is_file():
            raise RuntimeError(f"tutorial run wrote no run_result.json in {exp}")
        n_epochs = sum(bool(EPOCH_LINE.match(msg)) for _, msg in probe["log"])
        if n_epochs != TUTORIAL_EPOCHS:
            raise RuntimeError(f"tutorial run logged {n_epochs} epochs, not {TUTORIAL_EPOCHS}")
        split = _phases(run.wall_s, run.started_at, probe)
        walls.append(run.wall_s)
        rss.append(run.maxrss_kib / 1024)
        splits.append(split)
        log(f"(b) rep {rep + 1}/{reps}: {run.wall_s:.1f} s, peak RSS {run.maxrss_kib / 1024:.0f} "
            f"MiB, {probe['steps']} steps; "
            + ", ".join(f"{k} {v:.2f}" for k, v in split.items() if not k.startswith("_")))
    figures = [Figure("b_tutorial_wall", "(b) tutorial run end to end (5 epochs)", "s", walls,
                      target=target_s, note="knowit-app model_name=.. exp_dir=..",
                      details={"splits": splits})]
    for name in splits[0]:
        if name.startswith("_"):
            continue
        figures.append(Figure(f"b_split_{_slug(name)}", f"(b)   {name}", "s",
                              [s[name] for s in splits]))
    figures.append(Figure("b_peak_rss", "(b) tutorial run peak RSS", "MiB", rss))
    return figures


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def bench_imports(reps: int, work: Path, threads: int | None) -> list[Figure]:
    """Context for (b) and (e): a fresh interpreter importing the heavy dependencies.

    Each sample runs from just before the interpreter starts to the end of the import (the
    child prints the time); the time the interpreter then takes to exit is reported once, for
    the training path's imports.
    """
    cases = [("python_start", "python start", "pass"),
             ("import_app", "start + import knowit_app.app (what --help loads)",
              "import knowit_app.app"),
             ("import_torch", "start + import torch", "import torch"),
             ("import_lightning", "start + import lightning (with torch)", "import lightning"),
             ("import_training", "start + import the training path",
              "import knowit_app.app, knowit_app.training.run, knowit_app.training.trainer, "
              "knowit_app.training.module, knowit_app.training.wandb_run")]
    figures = []
    exits: list[float] = []
    for key, label, code in cases:
        samples = []
        for _ in range(reps):
            run = run_child([sys.executable, "-c", f"{code}\nimport time\nprint(time.time())"],
                            cwd=work, env=child_env(threads)).check()
            imported = float(run.stdout.split()[-1])
            samples.append(imported - run.started_at)
            if key == "import_training":
                exits.append(run.started_at + run.wall_s - imported)
        figures.append(Figure(f"i_{key}", f"(i) {label}", "s", samples,
                              note="fresh interpreter, exit not included"))
    figures.append(Figure("i_exit_training", "(i) interpreter exit after those imports", "s",
                          exits, note="module teardown and garbage collection at exit"))
    return figures


# --- (c) -----------------------------------------------------------------------------------

GRID = ["arch.dropout=0.0,0.1,0.2", "trainer.learning_rate=0.001,0.01,0.1"]
GRID_RUNS = 9


def bench_sweep(reps: int, work: Path, threads: int | None, target_s: float) -> list[Figure]:
    overheads: list[float] = []
    walls: list[float] = []
    details: list[dict[str, Any]] = []
    for rep in range(reps):
        exp = fresh_dir(work, "sweep-")
        cmd = [*app_command(), "-m", "model_name=bench", "sweep.name=grid", f"exp_dir={exp}",
               *GRID, "trainer.max_epochs=1", "hydra.callbacks.consolidate.enabled=false"]
        run = run_child(cmd, cwd=exp, env=child_env(threads), timeout=3600).check()
        sweep_dir = exp / "models" / "bench" / "sweeps" / "grid"
        results = []
        for path in sorted(sweep_dir.glob("*/run_result.json")):
            data = json.loads(path.read_text())
            data["run"] = path.parent.name
            results.append(data)
        finished = [r for r in results if r.get("state") in ("finished", "stopped")]
        if len(results) != GRID_RUNS:
            raise RuntimeError(f"sweep wrote {len(results)} run results, expected {GRID_RUNS}: "
                               f"{run.stderr[-2000:]}")
        fit = sum(float(r.get("fit_seconds") or 0.0) for r in results)
        overhead = (run.wall_s - fit) / GRID_RUNS
        results.sort(key=lambda r: r["started"])
        first, last = results[0], results[-1]
        gaps = [b["started"] - a["ended"] for a, b in zip(results, results[1:], strict=False)]
        inside = [r["ended"] - r["started"] - float(r.get("fit_seconds") or 0.0)
                  for r in results]
        detail = {
            "wall_s": run.wall_s, "sum_fit_s": fit, "finished_runs": len(finished),
            "startup_to_first_execute_s": first["started"] - run.started_at,
            "between_runs_mean_s": sum(gaps) / len(gaps) if gaps else 0.0,
            "inside_execute_not_fit_mean_s": sum(inside) / len(inside),
            "after_last_run_s": run.started_at + run.wall_s - last["ended"],
            "states": [r.get("state") for r in results],
        }
        overheads.append(overhead)
        walls.append(run.wall_s)
        details.append(detail)
        log(f"(c) rep {rep + 1}/{reps}: wall {run.wall_s:.1f} s, sum fit {fit:.1f} s, "
            f"overhead {overhead:.2f} s/run; startup {detail['startup_to_first_execute_s']:.2f} s,"
            f" between runs {detail['between_runs_mean_s']:.2f} s, inside execute "
            f"{detail['inside_execute_not_fit_mean_s']:.2f} s, after "
            f"{detail['after_last_run_s']:.2f} s")
    return [
        Figure("c_sweep_overhead_per_run", "(c) sweep overhead per run (9 x 1 epoch)", "s",
               overheads, target=target_s, note="(wall - sum fit) / 9",
               details={"reps": details}),
        Figure("c_sweep_wall", "(c)   sweep wall time (9 runs)", "s", walls),
        Figure("c_marginal_per_run", "(c)   marginal per run (gap + execute - fit)", "s",
               [d["between_runs_mean_s"] + d["inside_execute_not_fit_mean_s"]
                for d in details],
               note="what one more run costs in a warm process, start-up excluded"),
        Figure("c_between_runs", "(c)   gap between runs (mean)", "s",
               [d["between_runs_mean_s"] for d in details]),
        Figure("c_startup", "(c)   start to first run's execute", "s",
               [d["startup_to_first_execute_s"] for d in details]),
    ]


# --- (e) -----------------------------------------------------------------------------------

def bench_help(reps: int, work: Path, threads: int | None, target_s: float) -> list[Figure]:
    walls = []
    for _ in range(reps):
        run = run_child([*app_command(), "--help"], cwd=work, env=child_env(threads)).check()
        if "model_name" not in run.stdout:
            raise RuntimeError("knowit-app --help printed no options")
        walls.append(run.wall_s)
    return [Figure("e_help", "(e) knowit-app --help", "s", walls, target=target_s)]
