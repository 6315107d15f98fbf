"""``knowit-app-eval`` and ``knowit-app-predict``: score a trained model, write its predictions.

Arguments are ``key=value`` like the other commands::

    knowit-app-eval model_name=m [sweep=s run=r] [sets=train,valid,eval] [exp_dir=outputs]
    knowit-app-predict model_name=m [sweep=s run=r] [set=eval] [exp_dir=outputs]

Torch loads only after the arguments are checked, so a typo fails fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from knowit_app.cli.args import parse_kv, run_command, shown
from knowit_app.evaluation.forward import find_model_dir

EVAL_USAGE = """\
usage: knowit-app-eval model_name=<model> [sweep=<sweep> run=<run>] [sets=train,valid,eval]
                       [exp_dir=outputs]

Score <exp_dir>/models/<model>/ (or a sweep run) on the chosen sets with its loss and performance
metrics, print them and write lightning_logs/evaluation/metrics.csv there (result_<set>_loss,
result_<set>_perf_<metric>: perf metrics in original units; with scaling_tag=full also
result_<set>_perf_<metric>_scaled, as training logs them)."""

PREDICT_USAGE = """\
usage: knowit-app-predict model_name=<model> [sweep=<sweep> run=<run>] [set=eval]
                          [exp_dir=outputs]

Write the model's predictions on one set (train, valid or eval), in original units, to
<model dir>/predictions/<set>.parquet and plot them against the targets in <set>.png."""

COMMON_KEYS = ("exp_dir", "model_name", "sweep", "run")


def parse_args(argv: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
    """``key=value`` words into a dict; unknown keys, repeats and no model_name are errors."""
    return parse_kv(argv, keys, required=("model_name",))


def model_dir_of(args: dict[str, str]) -> Path:
    """The model (or sweep run) directory the arguments name; a ConfigError if there is none."""
    return find_model_dir(args.get("exp_dir") or "outputs", args["model_name"],
                          args.get("sweep") or None, args.get("run") or None)


def _evaluate(argv: list[str]) -> str:
    from knowit_app.evaluation.scores import check_sets, evaluate_model, format_metrics

    args = parse_args(argv, (*COMMON_KEYS, "sets"))
    sets = check_sets(args.get("sets") or None)
    model_dir = model_dir_of(args)
    result = evaluate_model(model_dir, sets)
    units = ("perf metrics in original units (outputs inverse-scaled; *_scaled as in training)"
             if result.outputs_rescaled else "perf metrics in the data's units")
    return "\n".join([f"{shown(model_dir)}: {units}", format_metrics(result.metrics),
                      f"written to {shown(result.csv_path)}"])


def _predict(argv: list[str]) -> str:
    from knowit_app.evaluation.predictions import check_set, write_predictions

    args = parse_args(argv, (*COMMON_KEYS, "set"))
    split = check_set(args.get("set") or "eval")
    result = write_predictions(model_dir_of(args), split)
    return (f"{result.rows} predictions of the {split} set written to "
            f"{shown(result.table_path)}; plot: {shown(result.plot_path)}")


def eval_main(argv: list[str] | None = None) -> int:
    """``knowit-app-eval``: score a model on its sets and write its metrics.csv."""
    return run_command(argv, EVAL_USAGE, _evaluate)


def predict_main(argv: list[str] | None = None) -> int:
    """``knowit-app-predict``: write a model's predictions on one set and plot them."""
    return run_command(argv, PREDICT_USAGE, _predict)


if __name__ == "__main__":  # python -m knowit_app.cli.evaluate [eval|predict] key=value ...
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    mains = {"eval": eval_main, "predict": predict_main}
    if command not in mains:
        print("usage: python -m knowit_app.cli.evaluate eval|predict key=value ...",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(mains[command](sys.argv[2:]))
