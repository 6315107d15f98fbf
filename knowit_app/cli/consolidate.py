"""``knowit-app-consolidate``: promote a sweep's best run (or a named one) to be the model.

Arguments are ``key=value`` like the Hydra app's (or ``--key value``), so the same words work
in both commands::

    knowit-app-consolidate model_name=m sweep=my_sweep [run=<run>] [goal=maximize] [exp_dir=...]

It imports neither torch nor Lightning: it reads small JSON files and renames directories.
"""

from __future__ import annotations

import argparse
import sys

from knowit_app.cli.args import CommandParser, run_command, shown
from knowit_app.errors import ConfigError
from knowit_app.experiment.consolidate import ConsolidationResult, consolidate_sweep
from knowit_app.experiment.runs import normalise_goal
from knowit_app.sweeps.tables import format_table

USAGE = """\
knowit-app-consolidate model_name=<model> sweep=<sweep> [run=<run>] [goal=minimize|maximize]
                              [exp_dir=outputs] [top=10]"""
DESCRIPTION = """\
Copy the best run of <exp_dir>/models/<model>/sweeps/<sweep>/ (or the run named by run=) into
<exp_dir>/models/<model>/, atomically; a model already there is kept under .replaced/<time>/.
Runs are ranked by their checkpoint's best score; goal defaults to the sweep's metric.goal.
Each key is given as key=value or --key value."""


def parser() -> CommandParser:
    """The command's arguments (``key=value`` or ``--key value``)."""
    p = CommandParser("knowit-app-consolidate", usage=USAGE, description=DESCRIPTION)
    p.add_key("model_name", "the model whose sweep to consolidate", required=True)
    p.add_key("sweep", "the sweep's name", required=True)
    p.add_key("run", "promote this run instead of the best one")
    p.add_key("goal", "minimize or maximize (default: the sweep's metric.goal)")
    p.add_key("exp_dir", "experiment directory (default: outputs)", default="outputs")
    p.add_key("top", "how many ranked runs to show (default: 10)", default="10")
    return p


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
    return run_command(parser(), argv, _consolidate)


def _consolidate(args: argparse.Namespace) -> str:
    goal = normalise_goal(args.goal, "goal") if args.goal else None
    try:
        top = int(args.top)
    except ValueError:
        raise ConfigError("top", f"{args.top!r} is not a whole number") from None
    result = consolidate_sweep(args.exp_dir or "outputs", args.model_name, args.sweep,
                               run=args.run or None, goal=goal)
    return report(result, max(top, 1))


if __name__ == "__main__":  # python -m knowit_app.cli.consolidate
    sys.exit(main())
