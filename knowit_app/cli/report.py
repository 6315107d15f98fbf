"""``knowit-app-report``: write (or rewrite) the offline report of a sweep.

Arguments are ``key=value`` like the Hydra app's and ``knowit-app-consolidate``'s::

    knowit-app-report model_name=m sweep=my_sweep [exp_dir=outputs]

Useful for a sweep that is still running (the report shows it so far), one that was aborted
before the end-of-sweep report, or an older sweep. It imports neither torch nor Lightning.
"""

from __future__ import annotations

import sys
from pathlib import Path

from knowit_app.cli.args import parse_kv, run_command, shown
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import ExperimentLayout

USAGE = """\
usage: knowit-app-report model_name=<model> sweep=<sweep> [exp_dir=outputs]

Write the report of <exp_dir>/models/<model>/sweeps/<sweep>/ into its report/ directory:
learning curves, parallel coordinates, parameter importance, runs.csv and index.html."""

KEYS = ("exp_dir", "model_name", "sweep")


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` words into a dict; unknown keys, repeats and missing keys are errors."""
    return parse_kv(argv, KEYS, required=("model_name", "sweep"))


def find_sweep(exp_dir: str | Path, model_name: str, sweep: str) -> Path:
    """The sweep's directory, or a ConfigError that says what exists instead."""
    layout = ExperimentLayout(exp_dir)
    sweep_dir = layout.sweep_dir(model_name, sweep)
    if sweep_dir.is_dir():
        return sweep_dir
    sweeps_dir = layout.sweeps_dir(model_name)
    if not sweeps_dir.is_dir():
        models = sorted(p.parent.name for p in layout.models_dir.glob("*/sweeps") if p.is_dir())
        there = f"models with sweeps: {', '.join(models)}" if models else "no model has sweeps"
        raise ConfigError("model_name", f"no sweeps of model {model_name!r} in "
                                        f"{layout.models_dir}; {there}")
    names = sorted(p.name for p in sweeps_dir.iterdir()
                   if p.is_dir() and not p.name.startswith("."))
    there = f"sweeps there: {', '.join(names)}" if names else "it has no sweeps yet"
    raise ConfigError("sweep", f"no sweep {sweep!r} in {sweeps_dir}; {there}")


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 2 on a user error (message on stderr), 1 on I/O errors."""
    return run_command(argv, USAGE, _report)


def _report(argv: list[str]) -> str:
    args = parse_args(argv)
    sweep_dir = find_sweep(args.get("exp_dir") or "outputs", args["model_name"], args["sweep"])
    from knowit_app.report import write_report

    return f"report of sweep {args['sweep']!r}: {shown(write_report(sweep_dir))}"


if __name__ == "__main__":  # python -m knowit_app.cli.report
    sys.exit(main())
