"""Time to interpret 100 prediction points of the tutorial MLP with each Captum method.

    python bench/interpret.py                 # trains the tutorial MLP (1 epoch) in a temp dir
    python bench/interpret.py --reps 5 --limit 5 --exp-dir outputs --model my_model

Figures per method (median of ``--reps`` runs, min-max beside it):

- ``attribute``: the Captum calls alone (100 points x every output, baselines ready);
- ``interpret``: ``interpret_model`` without pictures (load model, prepare data, select the
  points, attribute, write the .npz/.json), as ``knowit-app-interpret`` does after start-up;
- ``pictures``: the heatmap, the bar chart and the animation (the GIF is most of it).

The model is the tutorial's: synth_2, the MLP's defaults, KnowIt's data setup; the number of
epochs does not change the cost of interpreting, so one is trained. ``--limit`` keeps only that
many instances (less data to prepare; the attributions cost the same).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METHODS = ("DeepLift", "DeepLiftShap", "IntegratedGradients")


def _train(exp: Path, name: str, limit: int | None) -> Path:
    from knowit_app.api import compose_config
    from knowit_app.experiment.layout import ExperimentLayout
    from knowit_app.training.run import execute, plan_training

    overrides = [f"exp_dir={exp}", f"model_name={name}", "trainer.max_epochs=1"]
    if limit:
        overrides.append(f"data.limit={limit}")
    model_dir = ExperimentLayout(exp).model_dir(name)
    execute(plan_training(compose_config(overrides)), model_dir)
    return model_dir


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _bench_method(model_dir: Path, method: str, reps: int) -> dict[str, list[float]]:
    from knowit_app.evaluation.forward import load_model
    from knowit_app.interpret import attribution as attr
    from knowit_app.interpret import pictures
    from knowit_app.interpret.fileformat import read_interpretation
    from knowit_app.interpret.options import make_options
    from knowit_app.interpret.run import interpret_model

    opts = make_options(method, "eval", "random", 100)
    model = load_model(model_dir)
    prepared = model.prepare_data()
    rows = prepared.points["eval"][:100]
    x, _ = prepared.batch(rows)
    count = attr.SHAP_BASELINE_POINTS if method == "DeepLiftShap" else attr.MEAN_BASELINE_POINTS
    base = attr.make_baselines(prepared.batch(attr.sample_baseline_rows(
        prepared.points["train"], count, 123))[0], method)
    targets = [(0, 0)]
    times: dict[str, list[float]] = {"attribute": [], "interpret": [], "pictures": []}
    for _ in range(reps):
        times["attribute"].append(_timed(lambda: attr.attribute(
            model.network, x, base, method, targets))[0])
        seconds, _ = _timed(lambda: interpret_model(model_dir, opts, pictures=False))
        times["interpret"].append(seconds)
        arrays, meta = read_interpretation(model_dir, opts.file_stem)
        times["pictures"].append(_timed(lambda a=arrays, m=meta: pictures.draw_all(
            model_dir, opts.file_stem, a, m))[0])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="instances of synth_2 to keep")
    parser.add_argument("--exp-dir", type=Path, default=None, help="use a trained model here")
    parser.add_argument("--model", default="tutorial_mlp")
    parser.add_argument("--json", type=Path, default=None, help="also write the samples here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="bench-interpret-") as scratch:
        exp = args.exp_dir or Path(scratch) / "outputs"
        model_dir = exp / "models" / args.model
        if not model_dir.is_dir():
            print(f"training {args.model} (tutorial MLP, 1 epoch) in {exp} ...", flush=True)
            _train(exp, args.model, args.limit)
        results = {m: _bench_method(model_dir, m, args.reps) for m in METHODS}
    load = os.getloadavg()
    print(f"\n100 points, median of {args.reps} (min-max), seconds; {platform.processor() or ''} "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f}")
    print("| method | attribute | interpret (no pictures) | pictures |")
    print("|---|---|---|---|")
    for method, times in results.items():
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
                 for v in times.values()]
        print(f"| {method} | {' | '.join(cells)} |")
    if args.json:
        args.json.write_text(json.dumps({"load": load, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
