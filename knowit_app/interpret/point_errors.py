"""Each prediction point's error, from the model's saved predictions (made now when absent).

``success``/``failure`` selection ranks blocks of points by it: for regression the mean absolute
error over output steps and components (original units), for classification 1 when the
predicted class is wrong and 0 when it is right.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from knowit_app.experiment.layout import PREDICTIONS_DIR

if TYPE_CHECKING:
    import pandas as pd

    from knowit_app.data.dataset import RawDataset
    from knowit_app.evaluation.trained_model import TrainedModel

log = logging.getLogger("knowit_app.interpret")


def _matches(table: pd.DataFrame, times: np.ndarray) -> bool:
    """Whether ``table`` has one equal-sized group of rows per point, at the points' times."""
    n = len(times)
    if n == 0 or len(table) % n:
        return False
    per_point = len(table) // n
    stamps = table["point_timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    return bool(np.array_equal(stamps[::per_point], times))


def load_predictions(model_dir: Path, model: TrainedModel, ds: RawDataset, rows: np.ndarray,
                     split: str) -> pd.DataFrame:
    """``predictions/<split>.parquet`` when it is newer than the checkpoint and matches the
    set's points; otherwise write it first, as ``knowit-app-predict`` does."""
    import pandas as pd

    from knowit_app.evaluation.predictions import write_predictions

    path = Path(model_dir) / PREDICTIONS_DIR / f"{split}.parquet"
    times = ds.times[rows]
    if path.is_file() and path.stat().st_mtime >= model.checkpoint.stat().st_mtime:
        table = pd.read_parquet(path)
        if _matches(table, times):
            return table
    log.info("making the %s-set predictions that success/failure selection needs", split)
    table = pd.read_parquet(write_predictions(model_dir, split).table_path)
    if not _matches(table, times):
        raise RuntimeError(f"{path} does not hold one prediction per point of the {split} set")
    return table


def point_errors(table: pd.DataFrame, n_points: int, task: str) -> np.ndarray:
    """One error per point, in the table's (and the set's) point order."""
    if task == "classification":
        wrong = table["prediction"].to_numpy() != table["target"].to_numpy()
        return wrong.astype(np.float64).reshape(n_points, -1).mean(axis=1)
    diff = np.abs(table["prediction"].to_numpy(np.float64) - table["target"].to_numpy(np.float64))
    return diff.reshape(n_points, -1).mean(axis=1)
