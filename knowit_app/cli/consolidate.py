"""``knowit-app-consolidate``: promote a sweep's best run (or a named one) to be the model.

Arguments are ``key=value`` like the Hydra app's, so the same words work in both commands::

    knowit-app-consolidate model_name=m sweep=my_sweep [run=<run>] [goal=maximize] [exp_dir=...]

It imports neither torch nor Lightning: it reads small JSON files and renames directories.
"""

from __future__ import annotations

import sys

from knowit_app.cli.args import parse_kv, run_command, shown
from knowit_app.errors import ConfigError
from knowit_app.experiment.consolidate import (
    ConsolidationResult,
    check_goal,
    consolidate_sweep,
    format_table,
)

USAGE = """\
usage: knowit-app-consolidate model_name=<model> sweep=<sweep> [run=<run>] [goal=minimize|maximize]
                              [exp_dir=outputs] [top=10]

Copy the best run of <exp_dir>/models/<model>/sweeps/<sweep>/ (or the run named by run=) into
<exp_dir>/models/<model>/, atomically; a model already there is kept under .replaced/<time>/.
Runs are ranked by their checkpoint's best score; goal defaults to the sweep's metric.goal."""

KEYS = ("exp_dir", "model_name", "sweep", "run", "goal", "top")


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` words into a dict; unknown keys, repeats and missing keys are errors."""
    return parse_kv(argv, KEYS, required=("model_name", "sweep"))


def report(result: ConsolidationResult, top: int) -> str:
    """What the command prints on success: the ranking, the promotion and the backup."""
    metric = result.monitor or "score"
    lines = [f"sweep {result.sweep!r}: {len(result.ranking)} runs, ranked by {metric} "
             f"({result.goal})", format_table(result.ranking, limit=top), ""]
    where = shown(result.model_dir)
    if not result.changed:
        lines.append(f"{where} already holds run {result.run!r} ({metric}={result.score:.6g}); "
                     "nothing changed")
    else:
        lines.append(f"promoted run {result.run!r} ({metric}={result.score:.6g}) into {where}")
    if result.replaced is not None:
        lines.append(f"the model it replaced is kept in {shown(result.replaced)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 2 on a user error (message on stderr), 1 on I/O errors."""
    return run_command(argv, USAGE, _consolidate)


def _consolidate(argv: list[str]) -> str:
    args = parse_args(argv)
    goal = check_goal(args["goal"], "goal") if "goal" in args else None
    try:
        top = int(args.get("top", "10"))
    except ValueError:
        raise ConfigError("top", f"{args['top']!r} is not a whole number") from None
    result = consolidate_sweep(args.get("exp_dir") or "outputs", args["model_name"],
                               args["sweep"], run=args.get("run") or None, goal=goal)
    return report(result, max(top, 1))


if __name__ == "__main__":  # python -m knowit_app.cli.consolidate
    sys.exit(main())
