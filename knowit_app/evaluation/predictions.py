"""A trained model's predictions on one set, as a table in original units and as a plot.

``<model_dir>/predictions/<set>.parquet`` has one row per prediction point x output step x output
component (regression) or per prediction point (classification), with columns:

- ``instance`` (name), ``slice`` (index of the slice within its instance, from 0);
- ``point_timestamp``: the time of the prediction point (the row the input window ends around);
- ``step``: the output step's offset from the point (from ``data.out_chunk``);
- ``timestamp``: the time the prediction is for (point + step);
- ``component``: the output component's name;
- ``target``: the dataset's value there, read from the raw dataset (so, unscaled);
- ``prediction``: the network's output, inverse-scaled when ``scaling_tag=full``; for
  classification the predicted class label, with its softmax ``probability``.

``<model_dir>/predictions/<set>.png`` plots prediction and target over time, one subplot per
instance (and output component), for the first output step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowit_app.data.splits import SPLIT_NAMES
from knowit_app.errors import ConfigError
from knowit_app.evaluation.forward import load_model, split_outputs, to_original
from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import PREDICTIONS_DIR

if TYPE_CHECKING:
    import pandas as pd

    from knowit_app.data.dataset import RawDataset
    from knowit_app.data.prepared import PreparedData
    from knowit_app.evaluation.trained_model import TrainedModel

MAX_PLOT_INSTANCES = 6
MAX_PLOT_COMPONENTS = 4
COLUMNS = ("instance", "slice", "point_timestamp", "step", "timestamp", "component", "target",
           "prediction")


@dataclass
class PredictionResult:
    """Where one set's predictions went, and how many rows they have."""

    model_dir: Path
    split: str
    table_path: Path
    plot_path: Path
    rows: int


def check_set(split: str) -> str:
    """The one set to predict, or a ConfigError at ``set`` naming the sets there are."""
    if split not in SPLIT_NAMES:
        raise ConfigError("set", f"unknown set {split!r}; allowed: {', '.join(SPLIT_NAMES)}")
    return split


def _slice_within_instance(ds: RawDataset) -> np.ndarray:
    """For each row, the index of its slice among its instance's slices (0, 1, ...)."""
    first = np.searchsorted(ds.slice_instance, ds.slice_instance, side="left")
    return (np.arange(ds.n_slices) - first)[ds.row_slice()]


def predictions_table(model: TrainedModel, prepared: PreparedData, ds: RawDataset,
                      split: str) -> pd.DataFrame:
    """The predictions of ``split`` in original units; see the module docstring for columns."""
    import pandas as pd
    import torch

    check_set(split)
    batches = list(split_outputs(model, prepared, split))
    rows = np.concatenate([b[0] for b in batches]) if batches else np.zeros(0, np.int64)
    out = torch.cat([b[1] for b in batches]) if batches else None
    out_idx = ds.component_index(prepared.out_components, "data.out_components")
    offsets = prepared.out_offsets  # classification: one step, one component
    n_steps, n_comp = len(offsets), len(out_idx)
    step_rows = rows[:, None] + offsets[None, :]  # (points, steps)
    target = ds.values[step_rows][:, :, out_idx]  # (points, steps, components), raw values
    per_point = n_steps * n_comp
    instance_names = np.asarray(ds.instance_names, dtype=object)
    point_instance = ds.slice_instance[ds.row_slice()[rows]]
    table = {
        "instance": np.repeat(instance_names[point_instance], per_point),
        "slice": np.repeat(_slice_within_instance(ds)[rows], per_point),
        "point_timestamp": np.repeat(ds.times[rows].astype("datetime64[ns]"), per_point),
        "step": np.tile(np.repeat(offsets, n_comp), len(rows)),
        "timestamp": np.repeat(ds.times[step_rows].reshape(-1), n_comp).astype("datetime64[ns]"),
        "component": np.tile(np.asarray(prepared.out_components, dtype=object),
                             len(rows) * n_steps),
    }
    if model.task == "classification":
        labels = np.asarray(prepared.class_set)
        probs = (torch.softmax(out.to(torch.float64), dim=-1).numpy() if out is not None
                 else np.zeros((0, len(labels))))
        chosen = probs.argmax(axis=1)
        table["target"] = target.reshape(-1).astype(labels.dtype)
        table["prediction"] = labels[chosen]
        table["probability"] = probs[np.arange(len(chosen)), chosen]
    else:
        pred = (to_original(out, prepared.out_scaler).numpy() if out is not None
                else np.zeros((0, n_steps, n_comp)))
        table["target"] = target.reshape(-1)
        table["prediction"] = pred.reshape(-1)
    return pd.DataFrame(table)


def _draw_values(ax: Any, part: pd.DataFrame) -> None:
    """Regression: target and prediction as lines, one pair per slice (no line across gaps)."""
    for k, (_, piece) in enumerate(part.groupby("slice", sort=True)):
        marker = "." if len(piece) < 100 else None
        times = piece["timestamp"].to_numpy()
        ax.plot(times, piece["target"].to_numpy(), color="black", lw=1.0, marker=marker,
                label="target" if k == 0 else None)
        ax.plot(times, piece["prediction"].to_numpy(), color="tab:orange", lw=1.0, alpha=0.85,
                marker=marker, label="prediction" if k == 0 else None)


def _draw_classes(ax: Any, part: pd.DataFrame, labels: Sequence[Any], cmap: Any) -> None:
    """Classification: two colour strips (target above prediction); lines would be a blur."""
    from matplotlib.dates import date2num

    index = {label: i for i, label in enumerate(labels)}
    lo, hi = np.inf, -np.inf
    for _, piece in part.groupby("slice", sort=True):
        t = date2num(piece["timestamp"].to_numpy())
        half = (t[1] - t[0]) / 2 if len(t) > 1 else 1 / 86400
        strips = np.vstack([piece["prediction"].map(index).to_numpy(),
                            piece["target"].map(index).to_numpy()])
        ax.imshow(strips, aspect="auto", interpolation="nearest", origin="lower", cmap=cmap,
                  vmin=-0.5, vmax=len(labels) - 0.5, extent=(t[0] - half, t[-1] + half, -0.5, 1.5))
        lo, hi = min(lo, t[0] - half), max(hi, t[-1] + half)
    if np.isfinite(lo):
        ax.set_xlim(lo, hi)
    ax.set_ylim(-0.5, 1.5)
    ax.set_yticks([0, 1], ["prediction", "target"])
    ax.xaxis_date()


def plot_predictions(table: pd.DataFrame, path: Path, title: str,
                     class_labels: Sequence[Any] | None = None) -> Path:
    """Prediction against target over time, one subplot per instance and component.

    Only the first output step is drawn (later steps predict the same times again); with
    ``class_labels`` (classification) each subplot shows target and prediction as class colours.
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    from matplotlib.patches import Patch

    first_step = table["step"].min() if len(table) else 0
    shown = table[table["step"] == first_step]
    instances = list(dict.fromkeys(shown["instance"]))
    components = list(dict.fromkeys(shown["component"]))
    notes = [f"output step {int(first_step):+d}"]
    if len(instances) > MAX_PLOT_INSTANCES:
        notes.append(f"first {MAX_PLOT_INSTANCES} of {len(instances)} instances")
        instances = instances[:MAX_PLOT_INSTANCES]
    if len(components) > MAX_PLOT_COMPONENTS:
        notes.append(f"first {MAX_PLOT_COMPONENTS} of {len(components)} components")
        components = components[:MAX_PLOT_COMPONENTS]
    n_rows, n_cols = max(len(instances), 1), max(len(components), 1)
    height = (1.8 if class_labels is not None else 2.6) * n_rows + 0.8
    fig = Figure(figsize=(6.5 * n_cols, height), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    cmap = None
    if class_labels is not None:
        n = len(class_labels)
        cmap = (ListedColormap(colormaps["tab10"].colors[:n]) if n <= 10
                else colormaps["viridis"].resampled(n))
    for i, inst in enumerate(instances):
        for j, comp in enumerate(components):
            ax = axes[i][j]
            part = shown[(shown["instance"] == inst) & (shown["component"] == comp)]
            name = f"{inst} - {comp}"
            if class_labels is None:
                _draw_values(ax, part)
            else:
                _draw_classes(ax, part, class_labels, cmap)
                name += f" (accuracy {np.mean(part['target'] == part['prediction']):.3f})"
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
            ax.set_title(name, fontsize=10)
            if class_labels is None:
                ax.grid(alpha=0.3)
    if not instances:
        axes[0][0].text(0.5, 0.5, "no prediction points", ha="center", va="center")
    elif class_labels is None:
        axes[0][0].legend(loc="upper right", fontsize=8)
    else:
        handles = [Patch(color=cmap(k), label=str(label))
                   for k, label in enumerate(class_labels[:10])]
        axes[0][-1].legend(handles=handles, title="class", loc="upper left", fontsize=8,
                           title_fontsize=8, bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{title} ({'; '.join(notes)})", fontsize=11)
    return replace_atomically(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def write_predictions(model_dir: str | Path, split: str = "eval") -> PredictionResult:
    """Write ``predictions/<split>.parquet`` and ``.png`` into ``model_dir`` (atomically each)."""
    from knowit_app.data.store import load_dataset

    check_set(split)
    model = load_model(model_dir)
    prepared = model.prepare_data()
    ds = load_dataset(model.args["data"]["name"], model.args["exp_dir"])
    table = predictions_table(model, prepared, ds, split)
    out_dir = Path(model_dir) / PREDICTIONS_DIR
    table_path = replace_atomically(out_dir / f"{split}.parquet",
                                    lambda tmp: table.to_parquet(tmp, engine="pyarrow",
                                                                 index=False))
    title = f"{model.args.get('model_name', Path(model_dir).name)}: {split} set"
    plot_path = plot_predictions(table, out_dir / f"{split}.png", title, prepared.class_set)
    return PredictionResult(Path(model_dir), split, table_path, plot_path, len(table))
