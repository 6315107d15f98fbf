"""``knowit-app-info``: what can be trained, without training anything.

``knowit-app-info archs [--name cnn] [--yaml]`` lists each architecture's hyperparameters with
their defaults and suggested search ranges (``--yaml``: the ranges as sweep ``parameters``).
``knowit-app-info datasets [--exp-dir outputs]`` lists the datasets an experiment dir holds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import yaml

from knowit_app.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args, sys.stdout)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="knowit-app-info", description="List architectures and datasets knowit-app knows."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    archs = commands.add_parser(
        "archs", help="hyperparameters of each architecture: defaults and suggested ranges"
    )
    archs.add_argument("--name", help="one architecture only (MLP, CNN, TCN, LSTM)")
    archs.add_argument(
        "--yaml",
        action="store_true",
        help="print the ranges as YAML to paste under a W&B sweep's parameters:",
    )
    archs.set_defaults(run=_run_archs)

    datasets = commands.add_parser("datasets", help="datasets stored in an experiment directory")
    datasets.add_argument("--exp-dir", default="outputs", help="experiment directory (outputs)")
    datasets.set_defaults(run=_run_datasets)

    from knowit_app.cli.splits import add_splits_command

    add_splits_command(commands)
    return parser


# ----------------------------------------------------------------------------------- archs


def _run_archs(args: argparse.Namespace, out: TextIO) -> int:
    from knowit_app import archs

    names = [archs.canonical_name(args.name)] if args.name else list(archs.ARCH_NAMES)
    render = _arch_yaml if args.yaml else _arch_table
    out.write(("---\n" if args.yaml else "\n").join(render(name) for name in names))
    return 0


def _arch_table(name: str) -> str:
    """One architecture's hyperparameters as an aligned table."""
    from knowit_app import archs

    defaults, ranges = archs.hp_defaults(name), archs.hp_ranges(name)
    rows = [(hp, _scalar(value), describe_range(ranges[hp])) for hp, value in defaults.items()]
    title = f"{name}  (arch={name.lower()})"
    return title + "\n" + _table(("hyperparameter", "default", "suggested range"), rows)


def _arch_yaml(name: str) -> str:
    """One architecture's ranges, one ``arch.<hp>: {spec}`` line each, indented for pasting."""
    from knowit_app import archs

    ranges = archs.hp_ranges(name)
    lines = [
        f"# {name} (select it with arch={name.lower()}); paste under a sweep's parameters:",
        "# continuous ranges (distribution: ...) need method random or bayes, not grid",
    ]
    for hp, spec in ranges.items():
        flow = yaml.safe_dump(spec, default_flow_style=True, sort_keys=False).strip()
        lines.append(f"  arch.{hp}: {flow}")
    return "\n".join(lines) + "\n"


def describe_range(spec: dict[str, Any]) -> str:
    """A W&B parameter spec in words: "one of 1, 2", "int_uniform 1 .. 8"."""
    if "value" in spec or len(spec.get("values", ())) == 1:
        value = spec["value"] if "value" in spec else spec["values"][0]
        return f"{_scalar(value)} (not searched by default)"
    if "values" in spec:
        return "one of " + ", ".join(_scalar(v) for v in spec["values"])
    dist = spec.get("distribution", "uniform")
    return f"{dist} {_scalar(spec.get('min'))} .. {_scalar(spec.get('max'))}"


# -------------------------------------------------------------------------------- datasets


def _run_datasets(args: argparse.Namespace, out: TextIO) -> int:
    from knowit_app.data.store import list_datasets

    found = list_datasets(args.exp_dir)
    if not found:
        out.write(f"no datasets in {args.exp_dir}\n")
        return 0
    columns = ("name", "source", "components", "instances", "slices", "rows", "time_delta")
    rows = [tuple(_cell(entry.get(column)) for column in columns) for entry in found]
    out.write(_table(columns, rows))
    return 0


# --------------------------------------------------------------------------------- helpers


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, a dashed rule under the header."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


def _scalar(value: Any) -> str:
    """A value as the user would type it in an override (null, true, 0.5, ReLU)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return _scalar(value)


if __name__ == "__main__":
    raise SystemExit(main())
