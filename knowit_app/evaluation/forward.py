"""Load a trained model and run it over one split, in the split's order, without gradients.

Scores and predictions both need the same pass; keeping it here means they see exactly the
same batches (the training batch size, the training windows and padding).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from knowit_app.errors import ConfigError, not_found
from knowit_app.experiment.layout import ExperimentLayout, named_dirs

if TYPE_CHECKING:
    import torch

    from knowit_app.data.prepared import PreparedData
    from knowit_app.data.scaling import Scaler
    from knowit_app.evaluation.trained_model import TrainedModel


def find_model_dir(exp_dir: str | Path, model_name: str, sweep: str | None = None,
                   run: str | None = None) -> Path:
    """``<exp_dir>/models/<model>/`` or, with ``sweep`` and ``run``, that sweep run's directory.

    A ConfigError (one line, naming the key) when only one of sweep/run is given or the
    directory does not exist.
    """
    if bool(sweep) != bool(run):
        raise ConfigError("run" if sweep else "sweep",
                          "missing; a sweep run needs both sweep=<sweep> and run=<run>")
    layout = ExperimentLayout(exp_dir)
    if sweep and run:
        path = layout.run_dir(model_name, sweep, run)
        if not path.is_dir():
            where = path.parent
            if not where.is_dir():  # the sweep itself is not there: name the sweep key
                sweeps_dir = layout.sweeps_dir(model_name)
                raise not_found("sweep", f"sweep {sweep!r} of model {model_name!r}",
                                sweeps_dir, named_dirs(sweeps_dir), "sweeps")
            raise not_found("run", f"sweep run {sweep}/{run} of model {model_name!r}", where,
                            named_dirs(where), "runs")
    else:
        path = layout.model_dir(model_name)
        if not path.is_dir():
            root = layout.models_dir
            raise not_found("model_name", f"model {model_name!r}", root, named_dirs(root),
                            "models")
    return path


def load_model(model_dir: str | Path) -> TrainedModel:
    """The trained model in ``model_dir`` (torch is imported only now, not with this module)."""
    from knowit_app.evaluation.trained_model import load_trained_model

    return load_trained_model(model_dir)


def batch_size_of(model: TrainedModel) -> int:
    """The batch size the model was trained with (so validation batches are the same)."""
    return int(model.args["data"]["batch_size"])


def split_outputs(model: TrainedModel, prepared: PreparedData, split: str,
                  ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """``(point rows, network outputs, targets)`` per batch; outputs and targets are scaled."""
    import torch

    rows = prepared.points[split]
    size = batch_size_of(model)
    model.network.eval()
    with torch.no_grad():
        for start in range(0, len(rows), size):
            batch_rows = rows[start:start + size]
            x, y = prepared.batch(batch_rows)
            yield batch_rows, model.network(x), y


def to_original(values: torch.Tensor, scaler: Scaler | None) -> torch.Tensor:
    """Undo the output scaling (per component, last axis) in float64; identity without one."""
    import torch

    values = values.to(torch.float64)
    if scaler is None:
        return values
    scale = torch.as_tensor(scaler.scale, dtype=torch.float64)
    shift = torch.as_tensor(scaler.shift, dtype=torch.float64)
    return values * scale + shift
