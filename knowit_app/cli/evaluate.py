"""``knowit-app-eval`` and ``knowit-app-predict``: score a trained model, write its predictions.

Arguments are ``key=value`` like the other commands (or ``--key value``)::

    knowit-app-eval model_name=m [sweep=s run=r] [sets=train,valid,eval] [exp_dir=outputs]
    knowit-app-predict model_name=m [sweep=s run=r] [set=eval] [exp_dir=outputs]

Torch loads only after the arguments are checked, so a typo fails fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knowit_app.cli.args import CommandParser, run_command, shown
from knowit_app.evaluation.forward import find_model_dir
from knowit_app.experiment.layout import EVALUATION_DIR, LOGS_DIR, METRICS_FILE

EVAL_USAGE = """\
knowit-app-eval model_name=<model> [sweep=<sweep> run=<run>] [sets=train,valid,eval]
                       [exp_dir=outputs]"""
EVAL_DESCRIPTION = f"""\
Score <exp_dir>/models/<model>/ (or a sweep run) on the chosen sets with its loss and performance
metrics, print them and write {LOGS_DIR}/{EVALUATION_DIR}/{METRICS_FILE} there (result_<set>_loss,
result_<set>_perf_<metric>: perf metrics in original units; with scaling_tag=full also
result_<set>_perf_<metric>_scaled, as training logs them).
Each key is given as key=value or --key value."""

PREDICT_USAGE = """\
knowit-app-predict model_name=<model> [sweep=<sweep> run=<run>] [set=eval]
                          [exp_dir=outputs]"""
PREDICT_DESCRIPTION = """\
Write the model's predictions on one set (train, valid or eval), in original units, to
<model dir>/predictions/<set>.parquet and plot them against the targets in <set>.png.
Each key is given as key=value or --key value."""


def _parser(prog: str, usage: str, description: str) -> CommandParser:
    p = CommandParser(prog, usage=usage, description=description)
    p.add_key("model_name", "the model (or, with sweep and run, the sweep's model)",
              required=True)
    p.add_key("sweep", "a sweep of the model (with run)")
    p.add_key("run", "a run of that sweep (with sweep)")
    p.add_key("exp_dir", "experiment directory (default: outputs)", default="outputs")
    return p


def eval_parser() -> CommandParser:
    """``knowit-app-eval``'s arguments (``key=value`` or ``--key value``)."""
    p = _parser("knowit-app-eval", EVAL_USAGE, EVAL_DESCRIPTION)
    p.add_key("sets", "comma-separated sets to score (default: train,valid,eval)")
    return p


def predict_parser() -> CommandParser:
    """``knowit-app-predict``'s arguments (``key=value`` or ``--key value``)."""
    p = _parser("knowit-app-predict", PREDICT_USAGE, PREDICT_DESCRIPTION)
    p.add_key("set", "the set to predict: train, valid or eval (default: eval)", default="eval")
    return p


def model_dir_of(args: argparse.Namespace) -> Path:
    """The model (or sweep run) directory the arguments name; a ConfigError if there is none."""
    return find_model_dir(args.exp_dir or "outputs", args.model_name, args.sweep or None,
                          args.run or None)


def _evaluate(args: argparse.Namespace) -> str:
    from knowit_app.evaluation.scores import check_sets, evaluate_model, format_metrics

    sets = check_sets(args.sets or None)
    model_dir = model_dir_of(args)
    result = evaluate_model(model_dir, sets)
    if not result.perf_metrics:
        units = "the training loss (no trainer.performance_metrics to score)"
    elif result.outputs_rescaled:
        units = "perf metrics in original units (outputs inverse-scaled; *_scaled as in training)"
    else:
        units = "perf metrics in the data's units"
    return "\n".join([f"{shown(model_dir)}: {units}", format_metrics(result.metrics),
                      f"written to {shown(result.csv_path)}"])


def _predict(args: argparse.Namespace) -> str:
    from knowit_app.evaluation.predictions import check_set, write_predictions

    split = check_set(args.set or "eval")
    result = write_predictions(model_dir_of(args), split)
    return (f"{result.rows} predictions of the {split} set written to "
            f"{shown(result.table_path)}; plot: {shown(result.plot_path)}")


def eval_main(argv: list[str] | None = None) -> int:
    """``knowit-app-eval``: score a model on its sets and write its metrics.csv."""
    return run_command(eval_parser(), argv, _evaluate)


def predict_main(argv: list[str] | None = None) -> int:
    """``knowit-app-predict``: write a model's predictions on one set and plot them."""
    return run_command(predict_parser(), argv, _predict)


if __name__ == "__main__":  # python -m knowit_app.cli.evaluate [eval|predict] key=value ...
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    mains = {"eval": eval_main, "predict": predict_main}
    if command not in mains:
        print("error: give eval or predict first: python -m knowit_app.cli.evaluate eval|predict "
              "key=value ...", file=sys.stderr)
        sys.exit(2)
    sys.exit(mains[command](sys.argv[2:]))
