"""The interpretation file format: ``<stem>.npz`` (arrays) beside ``<stem>.json`` (what they are).

No pickle anywhere: ``np.load(path, allow_pickle=False)`` reads every array (numbers, fixed-width
strings, datetime64), ``json.load`` the sidecar. The arrays:

- ``attributions``: float32, axes named in the sidecar's ``axes`` (regression: point, out_step,
  out_component, in_step, in_component; classification: point, class, in_step, in_component);
- ``inputs``: (point, in_step, in_component), in original units when ``inputs_units`` says so;
- ``baselines``: (baseline, in_step, in_component) on the network's (scaled) inputs: the one
  mean training window of DeepLift/IG, or DeepLiftShap's sample of training windows;
- ``predictions``/``targets``: regression (point, out_step, out_component) in original units;
  classification (point,) class labels, with ``probabilities`` (point, class);
- ``convergence_delta``: (point, outputs...) as Captum reports it (for DeepLiftShap the mean
  over baselines);
- ``timestamps`` (datetime64[ns], the prediction points' times), ``point_ids`` (positions in
  the set, KnowIt's ids), ``rows`` (dataset rows), ``instances`` (str) and ``slices`` (int);
- coordinates: ``in_lags``, ``in_components``, ``out_steps``, ``out_components``, ``classes``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import INTERPRETATIONS_DIR

FORMAT_VERSION = 1
REQUIRED_ARRAYS = ("attributions", "inputs", "predictions", "targets", "timestamps",
                   "point_ids", "convergence_delta")


def paths_for(model_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """``(npz, json)`` paths of interpretation ``stem`` of a model directory."""
    base = Path(model_dir) / INTERPRETATIONS_DIR
    return base / f"{stem}.npz", base / f"{stem}.json"


def _plain(value: np.ndarray) -> np.ndarray:
    """Arrays numpy stores without pickle: object strings become fixed-width unicode."""
    value = np.asarray(value)
    if value.dtype == object:
        return value.astype(str)
    return value


def write_interpretation(model_dir: str | Path, stem: str, arrays: Mapping[str, np.ndarray],
                         meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write the arrays, then the sidecar (each atomically); returns their paths."""
    missing = [name for name in REQUIRED_ARRAYS if name not in arrays]
    if missing:
        raise ValueError(f"interpretation lacks {', '.join(missing)}")
    npz_path, json_path = paths_for(model_dir, stem)
    plain = {name: _plain(value) for name, value in arrays.items()}
    shapes = {name: list(value.shape) for name, value in plain.items()}

    def save_npz(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez_compressed(fh, **plain)

    replace_atomically(npz_path, save_npz)
    sidecar = {"format_version": FORMAT_VERSION, "arrays": npz_path.name, "shapes": shapes,
               **meta}
    text = json.dumps(sidecar, indent=2, default=_json_default) + "\n"
    replace_atomically(json_path, lambda tmp: tmp.write_text(text))
    return npz_path, json_path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_interpretation(model_dir: str | Path, stem: str) -> tuple[dict[str, np.ndarray],
                                                                  dict[str, Any]]:
    """The arrays and the sidecar of one interpretation (no pickle is ever loaded)."""
    npz_path, json_path = paths_for(model_dir, stem)
    meta = json.loads(json_path.read_text())
    with np.load(npz_path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays, meta
