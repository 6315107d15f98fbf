"""``knowit-app-interpret``: feature attributions of a trained model, file and pictures.

Arguments are ``key=value`` like the other commands (or ``--key value``)::

    knowit-app-interpret model_name=m method=DeepLiftShap [sweep=s run=r] [set=valid]
        [selection=random] [size=100] [seed=123] [multiply_by_inputs=true]
        [rescale_inputs=true] [exp_dir=outputs]

Every value is checked before torch loads, so a typo fails fast.
"""

from __future__ import annotations

import argparse
import sys

from knowit_app.cli.args import ALIASES, CommandParser, run_command, shown

USAGE = """\
knowit-app-interpret model_name=<model> method=<method> [sweep=<sweep> run=<run>]
                            [set=valid] [selection=random] [size=100] [seed=123]
                            [multiply_by_inputs=true] [rescale_inputs=true] [exp_dir=outputs]"""
DESCRIPTION = """\
Attribute the model's outputs to its inputs (Captum's DeepLift, DeepLiftShap or
IntegratedGradients) for a contiguous block of prediction points of one set, picked at random,
by lowest (success) or highest (failure) prediction error, or all of them. Writes
<model dir>/interpretations/<Method>-<set>-<selection>-<size>-<multiply>-<seed>.npz and .json,
and a heatmap, bar chart and animation to <model dir>/visualizations/.
Each key is given as key=value or --key value."""

KNOWIT_ALIASES = {**ALIASES, "interpretation_method": "method", "interpretation_set": "set"}


def interpret_parser() -> CommandParser:
    """``knowit-app-interpret``'s arguments (``key=value`` or ``--key value``)."""
    p = CommandParser("knowit-app-interpret", usage=USAGE, description=DESCRIPTION,
                      aliases=KNOWIT_ALIASES)
    p.add_key("model_name", "the model (or, with sweep and run, the sweep's model)",
              required=True)
    p.add_key("method", "DeepLift, DeepLiftShap or IntegratedGradients", required=True)
    p.add_key("sweep", "a sweep of the model (with run)")
    p.add_key("run", "a run of that sweep (with sweep)")
    p.add_key("set", "the set to interpret: train, valid or eval (default: valid)",
              default="valid")
    p.add_key("selection", "random, success, failure or all (default: random)",
              default="random")
    p.add_key("size", "number of consecutive prediction points (default: 100)", default="100")
    p.add_key("seed", "seed of the random selection and the baselines (default: 123)",
              default="123")
    p.add_key("multiply_by_inputs", "local (true) or global (false) attributions "
              "(default: true)", default="true")
    p.add_key("rescale_inputs", "store the inputs in original units (default: true)",
              default="true")
    p.add_key("exp_dir", "experiment directory (default: outputs)", default="outputs")
    return p


def _interpret(args: argparse.Namespace) -> str:
    from knowit_app.evaluation.forward import find_model_dir
    from knowit_app.interpret.options import make_options

    options = make_options(args.method, args.set, args.selection, args.size,
                           args.multiply_by_inputs, args.seed, args.rescale_inputs)
    model_dir = find_model_dir(args.exp_dir or "outputs", args.model_name, args.sweep or None,
                               args.run or None)
    from knowit_app.interpret.run import interpret_model

    result = interpret_model(model_dir, options)
    lines = [f"{options.method} attributions of {result.points} {options.set}-set points "
             f"({options.selection}) in {result.seconds:.1f} s",
             f"written to {shown(result.npz_path)} (+ {result.json_path.name})"]
    lines += [f"picture: {shown(p)}" for p in result.pictures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``knowit-app-interpret``: interpret a trained model and draw the result."""
    return run_command(interpret_parser(), argv, _interpret)


if __name__ == "__main__":
    sys.exit(main())
