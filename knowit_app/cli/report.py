"""``knowit-app-report``: write (or rewrite) the offline report of a sweep.

Arguments are ``key=value`` like the Hydra app's and ``knowit-app-consolidate``'s (or
``--key value``)::

    knowit-app-report model_name=m sweep=my_sweep [exp_dir=outputs]

Useful for a sweep that is still running (the report shows it so far), one that was aborted
before the end-of-sweep report, or an older sweep. It imports neither torch nor Lightning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from knowit_app.cli.args import CommandParser, run_command, shown
from knowit_app.errors import not_found
from knowit_app.experiment.layout import ExperimentLayout, named_dirs

USAGE = "knowit-app-report model_name=<model> sweep=<sweep> [exp_dir=outputs]"
DESCRIPTION = """\
Write the report of <exp_dir>/models/<model>/sweeps/<sweep>/ into its report/ directory:
learning curves, parallel coordinates, parameter importance, runs.csv and index.html.
Each key is given as key=value or --key value."""


def parser() -> CommandParser:
    """The command's arguments (``key=value`` or ``--key value``)."""
    p = CommandParser("knowit-app-report", usage=USAGE, description=DESCRIPTION)
    p.add_key("model_name", "the model whose sweep to report", required=True)
    p.add_key("sweep", "the sweep's name", required=True)
    p.add_key("exp_dir", "experiment directory (default: outputs)", default="outputs")
    return p


def find_sweep(exp_dir: str | Path, model_name: str, sweep: str) -> Path:
    """The sweep's directory, or a ConfigError that says what exists instead."""
    layout = ExperimentLayout(exp_dir)
    sweep_dir = layout.sweep_dir(model_name, sweep)
    if sweep_dir.is_dir():
        return sweep_dir
    sweeps_dir = layout.sweeps_dir(model_name)
    if not sweeps_dir.is_dir():
        models = (p.parent.name for p in layout.models_dir.glob("*/sweeps") if p.is_dir())
        raise not_found("model_name", f"sweeps of model {model_name!r}", layout.models_dir,
                        models, "models with sweeps")
    raise not_found("sweep", f"sweep {sweep!r}", sweeps_dir, named_dirs(sweeps_dir), "sweeps")


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 2 on a user error (message on stderr), 1 on I/O errors."""
    return run_command(parser(), argv, _report)


def _report(args: argparse.Namespace) -> str:
    sweep_dir = find_sweep(args.exp_dir or "outputs", args.model_name, args.sweep)
    from knowit_app.report import write_report

    return f"report of sweep {args.sweep!r}: {shown(write_report(sweep_dir))}"


if __name__ == "__main__":  # python -m knowit_app.cli.report
    sys.exit(main())
