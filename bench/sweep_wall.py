"""The demo sweep's wall time against the plain loop training the same configurations in turn.

usage: python bench/sweep_wall.py [--count 10] [--epochs 5] [--limit N] [--out FILE.jsonl]
       [--extra key=value ...]

1. Runs the README's demo sweep (``knowit-app -m sweep=tutorial_grid
   model_name=some_sweeped_model hydra.sweeper.count=10``) in a fresh directory, from the
   command to its exit, sampling the memory of its whole process tree (PSS, so pages the
   forked workers share are counted once; RSS summed as well).
2. Times the plain eager loop (``floor.py``: same MLP, Adam, MSE, sample counts, batch size,
   a validation pass every epoch; one torch thread) once per batch size the sweep's runs used,
   and adds up the time it needs to train those configurations one after another in one
   script: its imports once, then each configuration's setup and epochs.
3. Reads start-up from the runs' own logs: the command's start to the first run's fit start
   (``training ...`` is logged just before ``trainer.fit``), and for every run that was not
   the first of its worker, its claim to its fit start (a warm worker's run start).
4. Reads the same to each run's first optimizer step, which ``_sweep_probe.py`` records (the
   sweep runs through it: the app's own entry point plus a global optimizer-step hook):
   the command's start to the first step of any run, and a warm worker's claim of a run to
   that run's first step.

Prints one JSON object (and appends it to ``--out``); the ratio target is <= 0.6.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Figure,
    app_command,
    child_env,
    fresh_dir,
    load_average,
    log,
    machine_info,
    run_child,
)

BENCH = Path(__file__).resolve().parent
FLOOR = BENCH / "floor.py" if (BENCH / "floor.py").exists() else Path(
    "/work/shared/bench/floor.py")
FIT_LINE = re.compile(r"^\[([0-9-]+ [0-9:,]+)\]\[knowit_app\.training\]\[INFO\] - training ")
TARGET_RATIO = 0.6
PROBE = BENCH / "_sweep_probe.py"


def tree_memory_mib(root: int) -> tuple[float, float]:
    """(PSS, RSS) of ``root`` and every descendant, in MiB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    pss = rss = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss / 1024, rss / 1024


class MemorySampler(threading.Thread):
    """Peak memory of a process tree, sampled every half second (a benchmark's estimate)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = (0.0, 0.0)
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.5):
            pss, rss = tree_memory_mib(me)
            self.peak = (max(self.peak[0], pss), max(self.peak[1], rss))


def fit_starts(sweep_dir: Path) -> dict[str, float]:
    """Each run's fit start (epoch seconds), from the ``training ...`` line of its app.log."""
    starts = {}
    for log_file in sweep_dir.glob("*/app.log"):
        for line in log_file.read_text().splitlines():
            match = FIT_LINE.match(line)
            if match:
                stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
                starts[log_file.parent.name] = stamp.timestamp()
                break
    return starts


def first_steps(path: Path) -> dict[str, dict[str, Any]]:
    """Each run's first optimizer step (time, worker pid), as the probe recorded it."""
    steps: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            step = json.loads(line)
            if step["run"] and step["run"] not in steps:
                steps[step["run"]] = step
    return steps


# The demo sweep's first 10 grid points all have arch.dropout=0.0, which costs nothing, while
# floor.py's network has dropout 0.2 (about 0.6 ms per 256x256 layer call here). This grid
# trains floor.py's own network (dropout 0.2) at the demo's batch sizes and learning rates.
MATCHED_GRID = ["model_name=matched", "sweep.name=matched", "arch.dropout=0.2",
                "data.batch_size=64,128,256", "trainer.learning_rate=0.001,0.01,0.1,0.0001"]


def run_sweep(args: argparse.Namespace, work: Path,
              grid: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The demo sweep (or ``grid``: overrides naming ``model_name`` and ``sweep.name``)."""
    base = list(grid) or ["sweep=tutorial_grid", "model_name=some_sweeped_model"]
    app_args = ["-m", *base,
                f"hydra.sweeper.count={args.count}", f"trainer.max_epochs={args.epochs}",
                *([f"data.limit={args.limit}"] if args.limit else []), *args.extra]
    cmd = [*app_command(), *app_args]
    steps_file = work / "first_steps.jsonl"
    log(f"sweep: {' '.join(cmd)} (through {PROBE.name}, which records first steps)")
    sampler = MemorySampler()
    sampler.start()
    child = run_child([sys.executable, str(PROBE), str(steps_file), *app_args], cwd=work,
                      env=child_env(None), timeout=3600)
    sampler.stop.set()
    sampler.join()
    child.check()
    model, sweep_name = "some_sweeped_model", "my_sweep_name"
    for override in base:
        key, _, value = override.partition("=")
        model = value if key == "model_name" else model
        sweep_name = value if key == "sweep.name" else sweep_name
    sweep_dir = work / f"outputs/models/{model}/sweeps/{sweep_name}"
    runs = json.loads((sweep_dir / "sweep_state.json").read_text())["runs"]
    fits = fit_starts(sweep_dir)
    ordered = sorted(runs, key=lambda r: r["started"])
    started_at = {r["name"]: r["started"] for r in runs}
    workers = len(list(sweep_dir.glob("worker-*.log"))) or 1
    warm = [fits[r["name"]] - r["started"] for r in ordered[workers:] if r["name"] in fits]
    steps = first_steps(steps_file)
    by_worker: dict[int, list[dict[str, Any]]] = {}
    for step in sorted(steps.values(), key=lambda s: s["t"]):
        by_worker.setdefault(step["pid"], []).append(step)
    warm_steps = [s["t"] - started_at[s["run"]] for worker_steps in by_worker.values()
                  for s in worker_steps[1:] if s["run"] in started_at]
    return {"command": " ".join(cmd), "run_through": PROBE.name, "wall_s": round(child.wall_s, 2),
            "workers": workers, "runs": len(runs),
            "batch_sizes": [r["params"]["data.batch_size"] for r in runs],
            "states": sorted({r["state"] for r in runs}),
            "first_fit_start_s": round(min(fits.values()) - child.started_at, 2),
            "warm_run_start_s": sorted(round(w, 2) for w in warm),
            "first_step_s": round(min(s["t"] for s in steps.values()) - child.started_at, 2)
            if steps else None,
            "warm_run_first_step_s": sorted(round(w, 2) for w in warm_steps),
            "peak_pss_mib": round(sampler.peak[0]), "peak_rss_sum_mib": round(sampler.peak[1]),
            "output_lines": len((child.stdout + child.stderr).splitlines()),
            "output": (child.stdout + child.stderr)[-6000:]}


def run_floor(batch_sizes: list[int], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """floor.py once per batch size; the one-script sequential time of all configurations."""
    results = work / "floor.jsonl"
    per_batch: dict[int, dict[str, Any]] = {}
    for batch in sorted(set(batch_sizes)):
        cmd = [sys.executable, str(FLOOR), str(results), "--batch", str(batch),
               "--epochs", str(args.epochs)]
        log(f"floor: {' '.join(cmd[1:])}")
        # One torch thread: as fast as two on a quiet machine (2.75 vs 2.70 ms a step) and
        # immune to a busy neighbour, which makes two spinning OpenMP threads crawl.
        run_child(cmd, cwd=work, env=child_env(1), timeout=3600).check()
        per_batch[batch] = json.loads(results.read_text().splitlines()[-1])
    imports = min(r["import_s"] for r in per_batch.values())
    train = sum(per_batch[b]["setup_s"] + per_batch[b]["loop_s"] for b in batch_sizes)
    return {"floor": str(FLOOR), "sequential_s": round(imports + train, 2),
            "per_batch": {b: {k: round(r[k], 2) for k in ("import_s", "setup_s", "loop_s")}
                          | {"threads": r["torch_threads"]} for b, r in per_batch.items()}}


def bench_demo_sweep(reps: int, work: Path, quick: bool = False) -> list[Figure]:
    """``run.py``'s section s: the demo sweep and the plain loop, as table rows."""
    args = argparse.Namespace(count=10, epochs=2 if quick else 5, limit=None, extra=[])
    walls, floors, ratios, firsts, warm, warm_fit, pss, lines = ([] for _ in range(8))
    matched: list[float] = []
    details: list[dict[str, Any]] = []
    for _ in range(reps):
        sweep = run_sweep(args, fresh_dir(work, "matched-"), MATCHED_GRID)
        floor = run_floor(sweep["batch_sizes"], args, fresh_dir(work, "floor-"))
        matched.append(round(sweep["wall_s"] / floor["sequential_s"], 3))
        details.append({"matched_sweep": {k: v for k, v in sweep.items() if k != "output"},
                        "matched_floor": floor})
        log(f"(s) matched grid: sweep {sweep['wall_s']:.0f} s, floor.py sequential "
            f"{floor['sequential_s']:.0f} s")
        sweep = run_sweep(args, fresh_dir(work, "sweep-"))
        floor = run_floor(sweep["batch_sizes"], args, fresh_dir(work, "floor-"))
        walls.append(sweep["wall_s"])
        floors.append(floor["sequential_s"])
        ratios.append(round(sweep["wall_s"] / floor["sequential_s"], 3))
        firsts.append(sweep["first_step_s"])
        warm += sweep["warm_run_first_step_s"]
        warm_fit += sweep["warm_run_start_s"]
        pss.append(sweep["peak_pss_mib"])
        lines.append(sweep["output_lines"])
        details.append({"sweep": {k: v for k, v in sweep.items() if k != "output"},
                        "floor": floor, "output_tail": sweep["output"][-3000:]})
        log(f"(s) sweep {sweep['wall_s']:.0f} s, floor.py sequential "
            f"{floor['sequential_s']:.0f} s, first step {sweep['first_step_s']} s, warm "
            f"{sweep['warm_run_first_step_s']}")
    demo = "the demo sweep (10 runs, 5 epochs), command to exit"
    return [
        Figure("s1", "(s) demo sweep wall", "s", walls, note=demo, details={"runs": details}),
        Figure("s2", "(s) floor.py, same 10 runs in turn", "s", floors,
               note="imports once, then each configuration's setup and epochs"),
        Figure("s3", "(s) ratio sweep / floor.py", "x", ratios, target=TARGET_RATIO,
               note="the demo's 10 runs have dropout 0.0; floor.py's network has 0.2"),
        Figure("s3m", "(s)   same, floor.py's network in all 10 runs", "x", matched,
               target=TARGET_RATIO, note="MATCHED_GRID: dropout 0.2, batch 64/128/256, "
               "4 learning rates, first 10 points"),
        Figure("s4", "(s) command to first run's first step", "s", firsts, target=5.0),
        Figure("s5", "(s) warm worker: claim to first step", "s", warm, target=0.3,
               note="every run that was not the first of its worker"),
        Figure("s6", "(s)   same, claim to Trainer.fit", "s", warm_fit),
        Figure("s7", "(s) peak memory, all processes (PSS)", "MiB", pss),
        Figure("s8", "(s) lines printed", "lines", lines),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="data.limit (a quick check)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for the sweep")
    args = parser.parse_args()
    work = fresh_dir(Path(os.environ.get("TMPDIR", "/tmp")), "sweep-wall-")
    info = machine_info()
    started = time.time()
    sweep = run_sweep(args, work)
    if args.limit:
        floor: dict[str, Any] = {"skipped": "data.limit makes the sample counts differ"}
        ratio = None
    else:
        floor = run_floor(sweep["batch_sizes"], args, work)
        ratio = round(sweep["wall_s"] / floor["sequential_s"], 3)
    record = {"machine": info, "load_average_end": load_average(),
              "bench_s": round(time.time() - started, 1), "sweep": sweep, "floor": floor,
              "ratio": ratio, "target_ratio": TARGET_RATIO,
              "met": ratio is not None and ratio <= TARGET_RATIO}
    text = json.dumps(record)
    if args.out:
        with args.out.open("a") as f:
            f.write(text + "\n")
    shown = {k: v for k, v in record.items() if k != "sweep"}
    shown["sweep"] = {k: v for k, v in sweep.items() if k != "output"}
    print(json.dumps(shown, indent=1))
    print(sweep["output"])


if __name__ == "__main__":
    main()
