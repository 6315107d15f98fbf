"""``knowit-app-info``: what can be trained, without training anything.

``knowit-app-info archs [--name cnn] [--yaml]`` lists each architecture's hyperparameters with
their defaults and suggested search ranges (``--yaml``: the ranges as sweep ``parameters``).
``knowit-app-info datasets [--exp-dir outputs]`` lists the datasets an experiment dir holds.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from knowit_app.cli.args import CommandParser, run_command
from knowit_app.text_table import format_table


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    return run_command(parser(), argv, lambda args: args.run(args))


def parser() -> CommandParser:
    """The subcommands and their options; a new subcommand is one ``add_parser`` here."""
    p = CommandParser("knowit-app-info",
                      description="List architectures and datasets knowit-app knows.")
    commands = p.add_subparsers(title="commands", required=True, metavar="COMMAND",
                                parser_class=CommandParser)

    archs = commands.add_parser(
        "archs", help="hyperparameters of each architecture: defaults and suggested ranges"
    )
    archs.add_key("name", "one architecture only (MLP, CNN, TCN, LSTM)")
    archs.add_key("yaml", "print the ranges as YAML to paste under a W&B sweep's parameters:",
                  flag=True)
    archs.set_defaults(run=_run_archs)

    datasets = commands.add_parser("datasets", help="datasets stored in an experiment directory")
    datasets.add_key("exp_dir", "experiment directory (outputs)", default="outputs")
    datasets.set_defaults(run=_run_datasets)

    from knowit_app.cli.splits import add_splits_command

    add_splits_command(commands)
    return p


# ----------------------------------------------------------------------------------- archs


def _run_archs(args: argparse.Namespace) -> str:
    from knowit_app import archs

    names = [archs.canonical_name(args.name)] if args.name else list(archs.ARCH_NAMES)
    render = _arch_yaml if args.yaml else _arch_table
    return ("---\n" if args.yaml else "\n").join(render(name) for name in names)


def _arch_table(name: str) -> str:
    """One architecture's hyperparameters as an aligned table."""
    from knowit_app import archs

    defaults, ranges = archs.hp_defaults(name), archs.hp_ranges(name)
    rows = [(hp, _scalar(value), describe_range(ranges[hp])) for hp, value in defaults.items()]
    title = f"{name}  (arch={name.lower()})"
    return f"{title}\n{format_table(('hyperparameter', 'default', 'suggested range'), rows)}\n"


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


def _run_datasets(args: argparse.Namespace) -> str:
    from knowit_app.data.store import list_datasets

    found = list_datasets(args.exp_dir)
    if not found:
        return f"no datasets in {args.exp_dir}"
    columns = ("name", "source", "components", "instances", "slices", "rows", "time_delta")
    rows = [tuple(_cell(entry.get(column)) for column in columns) for entry in found]
    return format_table(columns, rows)


# --------------------------------------------------------------------------------- helpers


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
