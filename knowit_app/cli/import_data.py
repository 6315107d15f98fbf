"""``knowit-app-import``: store a user's table as a dataset of an experiment directory.

::

    knowit-app-import readings.csv --name plant [--time-column time] [--exp-dir outputs] ...
    knowit-app-import readings.csv name=plant time_column=time

Only pandas and numpy load (no torch), so the command starts fast.
"""

from __future__ import annotations

import argparse
import sys

from knowit_app.cli.args import CommandParser, run_command

DESCRIPTION = """\
Import a CSV or Parquet table as a dataset of an experiment directory.
Each key is given as --key value (--time-column) or key=value (time_column=...)."""


def parser() -> CommandParser:
    """The file to import and the keys that describe it."""
    p = CommandParser("knowit-app-import", description=DESCRIPTION)
    p.add_argument("file", help="a .csv or .parquet file")
    p.add_key("name", "dataset name (use as data.name=NAME)", required=True)
    p.add_key("exp_dir", "experiment directory (default: outputs)", default="outputs")
    p.add_key("time_column", "column of times (default: the index / first column); numbers "
              "are seconds since the epoch")
    p.add_key("instance_column", "column naming the instance of each row")
    p.add_key("components", "comma-separated columns (default: all numeric ones)")
    p.add_key("time_delta", "time step: seconds (0.2) or an offset ('200ms'); default: the "
              "most common step")
    p.add_key("overwrite", "replace an existing import", flag=True)
    return p


def _import(args: argparse.Namespace) -> str:
    from knowit_app.data.importer import import_dataset
    from knowit_app.data.notes import collect_notes
    from knowit_app.data.store import read_meta

    comps = None
    if args.components is not None:
        comps = [c.strip() for c in args.components.split(",") if c.strip()]
    with collect_notes() as notes:  # rows sorted, columns left out, a dataset replaced
        path = import_dataset(args.file, args.name, args.exp_dir, time_column=args.time_column,
                              instance_column=args.instance_column, components=comps,
                              time_delta=args.time_delta, overwrite=args.overwrite)
    meta = read_meta(path)
    return (f"imported {args.name!r}: {meta['rows']} rows, {meta['instances']} instances, "
            f"{meta['slices']} slices, components {', '.join(meta['components'])}, "
            f"time_delta {meta['time_delta']:g} s -> {path}"
            + "".join(f"\n  note: {line}" for line in notes))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: import, print a one-line summary, return the exit status."""
    return run_command(parser(), argv, _import)


if __name__ == "__main__":  # python -m knowit_app.cli.import_data
    sys.exit(main())
