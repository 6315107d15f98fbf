"""``knowit-app-info splits [overrides...] [--json]``: which points and instances each split gets.

Composes the app config from the same Hydra overrides ``knowit-app`` takes (``data=synth_c``,
``data.split_method=random``, ``exp_dir=...`` for imported datasets), then runs the data
preparation's own split (:func:`knowit_app.data.prepared.plan_splits`), so what it prints is what
training would use, without training. ``--json`` prints
``{"train": {"points": N, "instances": [...]}, "valid": ..., "eval": ...}``, plus ``"slices"``
(``[instance, slice-in-instance]`` pairs) for the slice methods.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from knowit_app.errors import ConfigError, KnowitError


def add_splits_command(commands: Any) -> None:
    """Register ``splits`` on ``knowit-app-info``'s sub-command parser."""
    splits = commands.add_parser(
        "splits",
        help="prediction points and instances (or slices) in each split, without training",
        description="Compose the data config from Hydra overrides (as knowit-app takes them) "
        "and show the train/valid/eval split it gives.",
    )
    splits.add_argument("overrides", nargs="*",
                        help="Hydra overrides, e.g. data.split_method=random data.seed=7")
    splits.add_key("json", 'print {"train": {"points": N, "instances": [...]}, ...}', flag=True)
    splits.set_defaults(run=run_splits)


def _compose(overrides: list[str]) -> Any:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from knowit_app.config.compose import compose
    from knowit_app.config.compose_errors import is_composition_error, one_line

    try:
        return compose(overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        if is_composition_error(exc):  # worded as knowit-app words it: the key, what is allowed
            raise KnowitError(one_line(exc)) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError("overrides", f"{' '.join(overrides)}: {first}") from exc


def split_summary(overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the composed data config, {split: {"points", "instances"[, "slices"]}})."""
    from omegaconf import OmegaConf

    from knowit_app.data.bundled import display_instance_name
    from knowit_app.data.prepared import plan_splits

    cfg = _compose(list(overrides))
    plan = plan_splits(cfg.data, str(cfg.trainer.task), str(cfg.exp_dir))
    ds = plan.dataset
    first_slice = np.searchsorted(ds.slice_instance, np.arange(ds.n_instances))
    by_slice = str(plan.cfg["split_method"]).startswith("slice-")
    out: dict[str, Any] = {}
    for name, rows in plan.points.items():
        slices = np.unique(np.searchsorted(ds.slice_starts, rows, side="right") - 1)
        instances = np.unique(ds.slice_instance[slices])
        entry: dict[str, Any] = {
            "points": int(len(rows)),
            "instances": [display_instance_name(ds.instance_names[i]) for i in instances],
        }
        if by_slice:
            entry["slices"] = [
                [display_instance_name(ds.instance_names[ds.slice_instance[k]]),
                 int(k - first_slice[ds.slice_instance[k]])]
                for k in slices
            ]
        out[name] = entry
    data = OmegaConf.to_container(cfg.data, resolve=True)
    return data, out


def _listing(values: list[Any], limit: int = 40) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def run_splits(args: argparse.Namespace) -> str:
    """The split as a short report, or as JSON with ``--json``."""
    data, summary = split_summary(args.overrides)
    if args.json:
        return json.dumps(summary, indent=1) + "\n"
    total = sum(s["points"] for s in summary.values())
    lines = [
        f"{data['name']}: {', '.join(data['in_components'])} -> "
        f"{', '.join(data['out_components'])}, in_chunk {list(data['in_chunk'])}, "
        f"out_chunk {list(data['out_chunk'])}",
        f"split_method {data['split_method']} {list(data['split_portions'])}, "
        f"seed {data['seed']}, limit {data['limit']}: {total:,} prediction points",
    ]
    for name, entry in summary.items():
        what = "slices" if "slices" in entry else "instances"
        items = entry[what] if what == "instances" else [f"{i}/{k}" for i, k in entry["slices"]]
        lines.append(f"{name:<5}  {entry['points']:>9,} points  {len(items)} {what}: "
                     f"{_listing(items)}")
    return "\n".join(lines) + "\n"
