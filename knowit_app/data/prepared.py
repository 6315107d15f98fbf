"""From a data config to tensors and batches: the one entry point training needs.

``prepare`` validates the whole data config, loads the dataset, finds prediction points, splits
them and fits the scalers; the result holds the scaled dataset once, as two tensors, and builds
each batch by index arithmetic (windows = row + offsets), so no per-sample Python runs per step.
The loaders (``make_dataloader``, in ``windows``) gather a split's windows once when they fit.

As in KnowIt, input and output components keep the dataset's column order whatever order the
config lists them in, the training loader drops its last partial batch, and a batch size larger
than the smallest non-empty split is lowered to that split's size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from knowit_app.config.checks import TASKS, check_seed
from knowit_app.config.schema import DataConfig
from knowit_app.data.dataset import RawDataset
from knowit_app.data.points import check_min_slice, parse_chunk, prediction_points
from knowit_app.data.scaling import Scaler, check_scaling, make_scalers
from knowit_app.data.splits import (
    SPLIT_NAMES,
    check_limit,
    check_method,
    check_portions,
    selection_order,
    split_points,
)
from knowit_app.data.store import load_dataset
from knowit_app.data.windows import (  # noqa: F401  (the loaders' public home stays here too)
    PointBatches,
    WindowLoader,
    effective_batch_size,
    make_dataloader,
)
from knowit_app.errors import ConfigError

PADDING_METHODS = ("constant", "edge")


def check_padding(method: object) -> str:
    if method not in PADDING_METHODS:
        raise ConfigError(
            "data.padding_method",
            f"unknown padding method {method!r}; allowed: {', '.join(PADDING_METHODS)}",
        )
    return str(method)


@dataclass
class PreparedData:
    """A dataset ready for training: scaled tensors, split points and the window geometry."""

    task: str
    x: torch.Tensor  # float32 (n_rows, n_in_components), scaled
    y: torch.Tensor  # regression: float32 (n_rows, n_out_components); classification: int64
    points: dict[str, np.ndarray]  # split -> int64 rows, ascending
    row_slice_start: np.ndarray  # int64 (n_rows,) first row of each row's slice
    row_slice_end: np.ndarray  # int64 (n_rows,) end (exclusive) of each row's slice
    in_offsets: np.ndarray  # int64 (n_in_steps,)
    out_offsets: np.ndarray  # int64 (n_out_steps,)
    in_shape: tuple[int, int]
    out_shape: tuple[int, int]
    class_set: list | None
    in_scaler: Scaler | None
    out_scaler: Scaler | None
    padding_method: str = "constant"
    in_components: list[str] = dataclasses.field(default_factory=list)
    out_components: list[str] = dataclasses.field(default_factory=list)
    dataset_name: str = ""
    # Train points in KnowIt's selection order: the sequence its shuffling sampler permutes.
    train_order: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.padding_method = check_padding(self.padding_method)

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, n_in, C_in) and targets for the prediction points ``rows``.

        Input steps outside the point's slice are zeros ("constant") or a copy of the slice's
        first/last row ("edge"). Targets: (B, n_out, C_out) floats, or (B,) class indices.
        """
        rows = np.asarray(rows, dtype=np.int64)
        idx = rows[:, None] + self.in_offsets[None, :]
        start = self.row_slice_start[rows][:, None]
        end = self.row_slice_end[rows][:, None]
        xb = self.x[torch.from_numpy(np.clip(idx, start, end - 1))]
        if self.padding_method == "constant":
            outside = torch.from_numpy((idx < start) | (idx >= end))
            xb = xb.masked_fill(outside[..., None], 0.0)
        if self.task == "classification":  # one output step, possibly ahead of the point
            return xb, self.y[torch.from_numpy(rows + self.out_offsets[0])]
        out_idx = rows[:, None] + self.out_offsets[None, :]
        return xb, self.y[torch.from_numpy(out_idx)]

    def split_sizes(self) -> dict[str, int]:
        return {name: int(len(self.points[name])) for name in SPLIT_NAMES}

    def class_counts(self) -> dict[int, int] | None:
        """KnowIt's ``class_counts``: rows of each class id in the whole dataset."""
        if self.class_set is None:
            return None
        y = self.y.numpy()
        counts = np.bincount(y[y >= 0], minlength=len(self.class_set))
        return {i: int(n) for i, n in enumerate(counts)}

    @property
    def class_count(self) -> int | None:
        return None if self.class_set is None else len(self.class_set)

    def dynamics(self) -> dict[str, Any]:
        """Plain-Python facts about the data a model is built for (for model_args.yaml)."""
        return {
            "task": self.task,
            "dataset": self.dataset_name,
            "in_components": list(self.in_components),
            "out_components": list(self.out_components),
            "in_chunk": [int(self.in_offsets[0]), int(self.in_offsets[-1])],
            "out_chunk": [int(self.out_offsets[0]), int(self.out_offsets[-1])],
            "in_shape": [int(v) for v in self.in_shape],
            "out_shape": [int(v) for v in self.out_shape],
            "split_sizes": self.split_sizes(),
            # KnowIt's names for the same facts (its tools read these).
            **{f"{name}_size": n for name, n in self.split_sizes().items()},
            "class_set": None if self.class_set is None else list(self.class_set),
            "class_count": self.class_count,
            "class_counts": self.class_counts(),
            "in_scaler": None if self.in_scaler is None else self.in_scaler.to_dict(),
            "out_scaler": None if self.out_scaler is None else self.out_scaler.to_dict(),
            "padding_method": self.padding_method,
        }


# KnowIt data kwargs with no counterpart here: accepted at the values that mean what we do.
KNOWIT_ONLY_KEYS: dict[str, tuple[Any, ...]] = {
    "task": ("regression", "classification", None),
    "batch_sampling_mode": ("independent", None),
    "slide_stride": (1, None),
    "variable_sequence_length_limit": (None,),
}


def _as_plain(data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config as a plain dict over DataConfig's defaults; unknown keys are errors."""
    if isinstance(data_cfg, DictConfig):
        data_cfg = OmegaConf.to_container(data_cfg, resolve=True)
    data_cfg = dict(data_cfg)
    for key, allowed in KNOWIT_ONLY_KEYS.items():
        if key in data_cfg and data_cfg.pop(key) not in allowed:
            raise ConfigError(
                f"data.{key}", f"only {', '.join(map(str, allowed))} is supported here"
            )
    cfg = dataclasses.asdict(DataConfig())
    unknown = sorted(set(data_cfg) - set(cfg))
    if unknown:
        raise ConfigError(
            f"data.{unknown[0]}", f"unknown data option; allowed: {', '.join(sorted(cfg))}"
        )
    cfg.update(data_cfg)
    return cfg


def _component_list(value: object, key: str) -> list[str]:
    iterable = hasattr(value, "__iter__") and not isinstance(value, (str, bytes))
    items = list(value) if iterable else []
    if not items or not all(isinstance(v, str) for v in items):
        raise ConfigError(key, f"expected a non-empty list of component names, got {value!r}")
    dup = [v for v in items if items.count(v) > 1]
    if dup:
        raise ConfigError(key, f"component {dup[0]!r} is listed twice")
    return items


def _check_int(value: object, key: str, *, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
        positive and value <= 0
    ):
        want = "a positive integer" if positive else "an integer"
        raise ConfigError(key, f"expected {want}, got {value!r}")
    return int(value)


def _class_set(column: np.ndarray, name: str) -> list:
    """Sorted distinct labels of the whole dataset, as Python ints when they are integral."""
    labels = np.unique(column[~np.isnan(column)])
    if len(labels) < 2:
        found = ", ".join(f"{v:g}" for v in labels) or "none"
        raise ConfigError(
            "data.out_components",
            f"{name!r} has a single class ({found}); classification needs at least 2",
        )
    if np.all(labels == np.round(labels)):
        return [int(v) for v in labels]
    return [float(v) for v in labels]


def _check_config(cfg: dict[str, Any], task: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Every check that needs no data, so a typo fails before anything is loaded."""
    if task not in TASKS:
        raise ConfigError("trainer.task", f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    _check_int(cfg["batch_size"], "data.batch_size", positive=True)
    check_seed("data.seed", cfg["seed"])
    check_padding(cfg["padding_method"])
    check_scaling(cfg["scaling_tag"], cfg["scaling_method"], task)
    in_chunk = parse_chunk(cfg["in_chunk"], "data.in_chunk")
    out_chunk = parse_chunk(cfg["out_chunk"], "data.out_chunk")
    check_portions(cfg["split_portions"])
    check_method(cfg["split_method"], check_limit(cfg["limit"]))
    check_min_slice(cfg["min_slice"])
    _component_list(cfg["in_components"], "data.in_components")
    out_names = _component_list(cfg["out_components"], "data.out_components")
    if task == "classification":
        if len(out_names) != 1:
            raise ConfigError(
                "data.out_components",
                f"classification needs exactly one out component, got {len(out_names)}",
            )
        if out_chunk[0] != out_chunk[1]:
            raise ConfigError(
                "data.out_chunk",
                "classification predicts one step: out_chunk needs start == end, got "
                f"{list(out_chunk)}",
            )
    return in_chunk, out_chunk


def _targets(column_values: np.ndarray, task: str, class_set: list | None,
             out_scaler: Scaler | None) -> torch.Tensor:
    """Scaled float targets, or class indices with -1 where the label is missing."""
    if task == "classification":
        target = column_values[:, 0]
        pos = np.searchsorted(np.asarray(class_set, dtype=np.float64), target)
        return torch.from_numpy(np.where(np.isnan(target), -1, pos).astype(np.int64))
    if out_scaler is not None:
        column_values = out_scaler.transform(column_values)
    return torch.from_numpy(column_values.astype(np.float32))


@dataclass
class SplitPlan:
    """The dataset and its split points for a data config: what training and ``splits`` show."""

    cfg: dict[str, Any]
    dataset: RawDataset
    in_idx: np.ndarray
    out_idx: np.ndarray
    points: dict[str, np.ndarray]
    all_points: np.ndarray  # every prediction point, before limit and split


def plan_splits(data_cfg: Mapping[str, Any], task: str, exp_dir: str | Path) -> SplitPlan:
    """Validate ``data_cfg`` for ``task``, load the dataset and split its prediction points."""
    cfg = _as_plain(data_cfg)
    (a, b), (c, d) = _check_config(cfg, task)
    ds = load_dataset(cfg["name"], exp_dir)
    # KnowIt's x_map/y_map: the dataset's column order, not the order the config lists.
    in_idx = np.sort(ds.component_index(list(cfg["in_components"]), "data.in_components"))
    out_idx = np.sort(ds.component_index(list(cfg["out_components"]), "data.out_components"))
    if task == "classification":  # fails early on a single-class target
        _class_set(ds.values[:, out_idx[0]], ds.components[out_idx[0]])
    points = prediction_points(ds, [a, b], [c, d], in_idx, out_idx, cfg["min_slice"])
    splits = split_points(
        ds, points, cfg["split_method"], cfg["split_portions"], cfg["limit"], cfg["seed"]
    )
    return SplitPlan(cfg=cfg, dataset=ds, in_idx=in_idx, out_idx=out_idx, points=splits,
                     all_points=points)


def prepare(data_cfg: Mapping[str, Any], task: str, exp_dir: str | Path) -> PreparedData:
    """Validate ``data_cfg`` (DataConfig keys) for ``task`` and build the PreparedData."""
    plan = plan_splits(data_cfg, task, exp_dir)
    cfg, ds, splits = plan.cfg, plan.dataset, plan.points
    in_idx, out_idx = plan.in_idx, plan.out_idx
    (a, b), (c, d) = parse_chunk(cfg["in_chunk"], "x"), parse_chunk(cfg["out_chunk"], "x")
    in_names = [ds.components[i] for i in in_idx]
    out_names = [ds.components[i] for i in out_idx]
    class_set = None
    if task == "classification":
        class_set = _class_set(ds.values[:, out_idx[0]], out_names[0])
    in_scaler, out_scaler = make_scalers(
        ds.values, splits["train"], in_idx, out_idx, cfg["scaling_tag"], cfg["scaling_method"], task
    )
    x = ds.values[:, in_idx]
    if in_scaler is not None:
        x = in_scaler.transform(x)
    row_start, row_end = ds.row_slice_bounds()
    return PreparedData(
        task=task,
        x=torch.from_numpy(x.astype(np.float32)),
        y=_targets(ds.values[:, out_idx], task, class_set, out_scaler),
        points=splits,
        row_slice_start=row_start,
        row_slice_end=row_end,
        in_offsets=np.arange(a, b + 1, dtype=np.int64),
        out_offsets=np.arange(c, d + 1, dtype=np.int64),
        in_shape=(b - a + 1, len(in_idx)),
        out_shape=(d - c + 1, len(out_idx)),
        class_set=class_set,
        in_scaler=in_scaler,
        out_scaler=out_scaler,
        padding_method=cfg["padding_method"],
        in_components=in_names,
        out_components=out_names,
        dataset_name=ds.name,
        train_order=selection_order(ds, plan.all_points, cfg["split_method"], cfg["seed"],
                                    splits["train"]),
    )
