"""``knowit-app-consolidate``: promote a sweep's best run (or a named one) to be the model.

Arguments are ``key=value`` like the Hydra app's, so the same words work in both commands::

    knowit-app-consolidate model_name=m sweep=my_sweep [run=<run>] [goal=maximize] [exp_dir=...]

It imports neither torch nor Lightning: it reads small JSON files and renames directories.
"""

from __future__ import annotations

import sys
from pathlib import Path

from knowit_app.consolidate import (
    ConsolidationResult,
    check_goal,
    consolidate_sweep,
    format_table,
)
from knowit_app.errors import ConfigError, KnowitError

USAGE = """\
usage: knowit-app-consolidate model_name=<model> sweep=<sweep> [run=<run>] [goal=minimize|maximize]
                              [exp_dir=outputs] [top=10]

Copy the best run of <exp_dir>/models/<model>/sweeps/<sweep>/ (or the run named by run=) into
<exp_dir>/models/<model>/, atomically; a model already there is kept under .replaced/<time>/.
Runs are ranked by their checkpoint's best score; goal defaults to the sweep's metric.goal."""

KEYS = ("exp_dir", "model_name", "sweep", "run", "goal", "top")
ALIASES = {"sweep_name": "sweep", "sweep.name": "sweep", "model": "model_name"}


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` words into a dict; unknown keys and repeats are ConfigErrors."""
    args: dict[str, str] = {}
    for word in argv:
        key, sep, value = word.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if not sep or key not in KEYS:
            raise ConfigError(key or word, f"unknown argument {word!r}; use "
                              + ", ".join(f"{k}=..." for k in KEYS))
        if key in args:
            raise ConfigError(key, "given twice")
        args[key] = value.strip()
    for key in ("model_name", "sweep"):
        if not args.get(key):
            raise ConfigError(key, f"missing; give {key}=<name>")
    return args


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def report(result: ConsolidationResult, top: int) -> str:
    """What the command prints on success: the ranking, the promotion and the backup."""
    metric = result.monitor or "score"
    lines = [f"sweep {result.sweep!r}: {len(result.ranking)} runs, ranked by {metric} "
             f"({result.goal})", format_table(result.ranking, limit=top), ""]
    where = _shown(result.model_dir)
    if not result.changed:
        lines.append(f"{where} already holds run {result.run!r} ({metric}={result.score:.6g}); "
                     "nothing changed")
    else:
        lines.append(f"promoted run {result.run!r} ({metric}={result.score:.6g}) into {where}")
    if result.replaced is not None:
        lines.append(f"the model it replaced is kept in {_shown(result.replaced)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 2 on a user error (message on stderr), 1 on I/O errors."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE)
        return 0
    try:
        args = parse_args(argv)
        goal = check_goal(args["goal"], "goal") if "goal" in args else None
        try:
            top = int(args.get("top", "10"))
        except ValueError:
            raise ConfigError("top", f"{args['top']!r} is not a whole number") from None
        result = consolidate_sweep(args.get("exp_dir") or "outputs", args["model_name"],
                                   args["sweep"], run=args.get("run") or None, goal=goal)
    except KnowitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(result, max(top, 1)))
    return 0


if __name__ == "__main__":  # python -m knowit_app.consolidate_cli
    sys.exit(main())
