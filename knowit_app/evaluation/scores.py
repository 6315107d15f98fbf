"""Score a trained model on its train, valid and eval sets under KnowIt's column names.

Columns of ``<model_dir>/lightning_logs/evaluation/metrics.csv`` (one row), per set ``<s>``:

- ``result_<s>_loss``: the training loss, on scaled outputs exactly as training computes it, so
  ``result_valid_loss`` equals the checkpoint's ``valid_loss``;
- ``result_<s>_perf_<metric>``: each of the model's ``trainer.performance_metrics`` in the
  data's original units, as KnowIt reports them: with ``data.scaling_tag=full`` predictions and
  targets are inverse-scaled before the metric (without output scaling they already are);
- ``result_<s>_perf_<metric>_scaled``: only with ``scaling_tag=full``, the same metric on the
  scaled outputs, which is what training logs as ``<s>_perf_<metric>``.

Metrics see outputs the way training feeds them (flattened over steps and components for
regression, logits and class indices for classification) and accumulate over the whole set.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowit_app.data.splits import SPLIT_NAMES
from knowit_app.errors import ConfigError
from knowit_app.evaluation.forward import load_model, split_outputs, to_original
from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import EVALUATION_DIR, LOGS_DIR, METRICS_FILE

if TYPE_CHECKING:
    import torch

    from knowit_app.data.prepared import PreparedData
    from knowit_app.evaluation.trained_model import TrainedModel

SCALED_SUFFIX = "_scaled"


@dataclass
class EvalResult:
    """The scores of one model directory and the file they were written to."""

    model_dir: Path
    metrics: dict[str, float]  # column name -> value, in csv order
    csv_path: Path
    sets: tuple[str, ...]
    outputs_rescaled: bool  # whether outputs were inverse-scaled before the perf metrics
    perf_metrics: tuple[str, ...] = ()


def metrics_path(model_dir: str | Path) -> Path:
    """Where the evaluation of ``model_dir`` is written (beside Lightning's ``version_*``)."""
    return Path(model_dir) / LOGS_DIR / EVALUATION_DIR / METRICS_FILE


def check_sets(sets: Iterable[str] | str | None) -> tuple[str, ...]:
    """The requested sets in KnowIt's order; a ConfigError at ``sets`` for unknown names."""
    if sets is None:
        return SPLIT_NAMES
    words = sets.split(",") if isinstance(sets, str) else list(sets)
    names = [w.strip() for w in words if w.strip()]
    unknown = [n for n in names if n not in SPLIT_NAMES]
    if unknown or not names:
        shown = repr(unknown[0]) if unknown else "nothing"
        raise ConfigError("sets", f"unknown set {shown}; use a comma-separated subset of "
                          f"{','.join(SPLIT_NAMES)}")
    return tuple(n for n in SPLIT_NAMES if n in names)


def metric_inputs(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets shaped as training's metrics receive them."""
    if out.dim() == 2 and y.dim() == 1:  # classification: logits and class indices
        return out, y
    return out.reshape(-1), y.reshape(-1)


def metric_factories(model: TrainedModel, prepared: PreparedData) -> dict[str, Callable[[], Any]]:
    """One torchmetrics factory per configured performance metric, as training builds them."""
    from knowit_app.training.components import metric_factory

    trainer = model.args["trainer"]
    kwargs = trainer.get("performance_metrics_kwargs") or {}
    return {name: metric_factory(name, kwargs.get(name, {}), model.task, prepared.class_count)
            for name in trainer.get("performance_metrics") or []}


def score_split(model: TrainedModel, prepared: PreparedData, split: str, *,
                perf: bool = True) -> dict[str, float]:
    """``loss``, ``perf_<metric>`` and (with output scaling) ``perf_<metric>_scaled`` of a set.

    The loss is the sample-weighted mean of the per-batch losses, as Lightning averages it;
    ``perf=False`` computes only the loss (what :meth:`TrainedModel.score` reports).
    """
    import torch

    from knowit_app.training.components import loss_function

    trainer = model.args["trainer"]
    loss_fn = loss_function(trainer["loss_fn"])
    loss_kwargs = trainer.get("loss_kwargs") or {}
    factories = metric_factories(model, prepared) if perf else {}
    scaler = prepared.out_scaler
    original = {name: make() for name, make in factories.items()}
    scaled = {name: make() for name, make in factories.items()} if scaler is not None else {}
    if scaler is not None:
        for metric in original.values():
            metric.set_dtype(torch.float64)
    total, count = 0.0, 0
    for rows, out, y in split_outputs(model, prepared, split):
        total += float(loss_fn(out, y, **loss_kwargs)) * len(rows)
        count += len(rows)
        for metric in scaled.values():
            metric.update(*metric_inputs(out, y))
        if scaler is not None and original:
            out, y = to_original(out, scaler), to_original(y, scaler)
        for metric in original.values():
            metric.update(*metric_inputs(out, y))
    scores = {"loss": total / count if count else math.nan}
    for name in factories:
        scores[f"perf_{name}"] = float(original[name].compute()) if count else math.nan
        if name in scaled:
            scores[f"perf_{name}{SCALED_SUFFIX}"] = (float(scaled[name].compute()) if count
                                                     else math.nan)
    return scores


def score_model(model: TrainedModel, sets: Iterable[str] | None = None,
                prepared: PreparedData | None = None) -> dict[str, float]:
    """KnowIt's ``result_<set>_...`` columns for each requested set, in csv order."""
    prepared = prepared or model.prepare_data()
    metrics: dict[str, float] = {}
    for split in check_sets(sets):
        for key, value in score_split(model, prepared, split).items():
            metrics[f"result_{split}_{key}"] = value
    return metrics


def write_metrics_csv(path: Path, metrics: Mapping[str, float]) -> Path:
    """One header row and one value row (full float precision), replacing ``path`` atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(metrics))
            writer.writerow([repr(float(v)) for v in metrics.values()])

    return replace_atomically(path, write)


def read_metrics_csv(path: str | Path) -> dict[str, float]:
    """The metrics a previous evaluation wrote."""
    with open(path, newline="") as fh:
        header, values = list(csv.reader(fh))[:2]
    return {k: float(v) for k, v in zip(header, values, strict=True)}


def format_metrics(metrics: Mapping[str, float]) -> str:
    """A small table: one row per set, one column per score."""
    from knowit_app.text_table import format_table

    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        _, split, score = key.split("_", 2)
        rows.setdefault(split, {})[score] = value
    columns = list(dict.fromkeys(c for scores in rows.values() for c in scores))
    table = [[split, *(f"{scores[c]:.6g}" if c in scores else "-" for c in columns)]
             for split, scores in rows.items()]
    return format_table(["set", *columns], table, rule=False)


def evaluate_model(model_dir: str | Path, sets: Iterable[str] | str | None = None) -> EvalResult:
    """Score the model in ``model_dir`` (a model or a sweep run) and write its metrics.csv.

    Only ``lightning_logs/evaluation/metrics.csv`` is written (atomically); it holds the sets
    of this evaluation. Cheap to import: torch loads when this runs.
    """
    chosen = check_sets(sets)
    model = load_model(model_dir)
    prepared = model.prepare_data()
    metrics = score_model(model, chosen, prepared)
    path = write_metrics_csv(metrics_path(model_dir), metrics)
    names = tuple(model.args["trainer"].get("performance_metrics") or [])
    return EvalResult(Path(model_dir), metrics, path, chosen, prepared.out_scaler is not None,
                      names)
