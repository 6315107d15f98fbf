"""Interpret one trained model: select points, attribute, write the file, draw the pictures.

Every check that needs no computation (options, method vs architecture, size vs the set) runs
before predictions or attributions are made; everything is written inside the model directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowit_app.interpret.options import InterpretOptions


@dataclass
class InterpretResult:
    """Where an interpretation went and what it holds."""

    model_dir: Path
    options: InterpretOptions
    npz_path: Path
    json_path: Path
    pictures: list[Path] = field(default_factory=list)
    points: int = 0
    seconds: float = 0.0


def _point_labels(ds: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Instance name and slice index (within its instance, from 0) of each row."""
    k = ds.row_slice()[rows]
    instance = ds.slice_instance[k]
    first = np.searchsorted(ds.slice_instance, instance, side="left")
    names = np.asarray(ds.instance_names, dtype=str)[instance]
    return names, (k - first).astype(np.int64)


def _outputs(model: Any, prepared: Any, ds: Any, x: Any, rows: np.ndarray) -> dict[str, Any]:
    """Predictions and targets of the selected points, in original units / class labels."""
    import torch

    from knowit_app.evaluation.forward import to_original

    with torch.no_grad():
        out = model.network(x)
    out_idx = ds.component_index(prepared.out_components, "data.out_components")
    target = ds.values[rows[:, None] + prepared.out_offsets[None, :]][:, :, out_idx]
    if model.task == "classification":
        labels = np.asarray(prepared.class_set)
        probs = torch.softmax(out.to(torch.float64), dim=-1).numpy()
        return {"predictions": labels[probs.argmax(axis=1)], "probabilities": probs,
                "targets": target[:, 0, 0].astype(labels.dtype), "classes": labels}
    return {"predictions": to_original(out, prepared.out_scaler).numpy(), "targets": target}


def interpret_model(model_dir: str | Path, options: InterpretOptions,
                    pictures: bool = True) -> InterpretResult:
    """Interpret the model in ``model_dir`` (a model or a sweep run directory)."""
    import captum

    from knowit_app.data.store import load_dataset
    from knowit_app.evaluation.forward import load_model
    from knowit_app.interpret import attribution as attr
    from knowit_app.interpret.fileformat import write_interpretation
    from knowit_app.interpret.point_errors import load_predictions, point_errors
    from knowit_app.interpret.selection import NEEDS_ERRORS, select_points

    began = time.perf_counter()
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    arch = str(model.args["arch"].get("name", "custom"))
    attr.check_supported(model.network, options.method, arch)
    prepared = model.prepare_data()
    ds = load_dataset(model.args["data"]["name"], model.args["exp_dir"])
    rows = prepared.points[options.set]
    pick = (options.selection, options.size, options.seed)
    if options.selection in NEEDS_ERRORS:  # size checks first, predictions only if they pass
        select_points(rows, prepared.row_slice_start, "random", *pick[1:], set_name=options.set)
        table = load_predictions(model_dir, model, ds, rows, options.set)
        errors = point_errors(table, len(rows), model.task)
    else:
        errors = None
    chosen = select_points(rows, prepared.row_slice_start, *pick, errors=errors,
                           set_name=options.set)
    sel_rows = rows[chosen]
    x, _ = prepared.batch(sel_rows)
    count = (attr.SHAP_BASELINE_POINTS if options.method == "DeepLiftShap"
             else attr.MEAN_BASELINE_POINTS)
    base_rows = attr.sample_baseline_rows(prepared.points["train"], count, options.seed)
    baselines = attr.make_baselines(prepared.batch(base_rows)[0], options.method)
    if model.task == "classification":
        targets: list[Any] = list(range(len(prepared.class_set)))
        out_axes = ["class"]
    else:
        steps, comps = prepared.out_shape
        targets = [(s, c) for s in range(steps) for c in range(comps)]
        out_axes = ["out_step", "out_component"]
    result = attr.attribute(model.network, x, baselines, options.method, targets,
                            options.multiply_by_inputs)
    lead = (len(sel_rows), *((len(targets),) if model.task == "classification"
                              else prepared.out_shape))
    inputs = x.numpy().astype(np.float64)
    rescaled = bool(options.rescale_inputs and prepared.in_scaler is not None)
    if rescaled:
        inputs = prepared.in_scaler.inverse_transform(inputs)
    instances, slices = _point_labels(ds, sel_rows)
    arrays = {
        "attributions": result.values.reshape(*lead, *prepared.in_shape),
        "convergence_delta": result.delta.reshape(lead),
        "inputs": inputs,
        "baselines": baselines.numpy(),
        "timestamps": ds.times[sel_rows].astype("datetime64[ns]"),
        "point_ids": chosen.astype(np.int64), "rows": sel_rows.astype(np.int64),
        "instances": instances, "slices": slices,
        "in_lags": prepared.in_offsets, "in_components": np.asarray(prepared.in_components),
        "out_steps": prepared.out_offsets,
        "out_components": np.asarray(prepared.out_components),
        **_outputs(model, prepared, ds, x, sel_rows),
    }
    scaled_out = prepared.out_scaler is not None
    meta = {
        "method": options.method,
        "arguments": {**options.to_dict(), "baselines": (
            f"{result.baseline_count} training windows" if options.method == "DeepLiftShap"
            else f"mean of {len(base_rows)} training windows"),
            **({"n_steps": attr.IG_STEPS} if options.method == "IntegratedGradients" else {})},
        "task": model.task, "arch": arch, "dataset": prepared.dataset_name,
        "model_name": model.args.get("model_name", model_dir.name),
        "model_dir": str(model_dir.resolve()), "checkpoint": model.checkpoint.name,
        "axes": {"attributions": ["point", *out_axes, "in_step", "in_component"],
                 "inputs": ["point", "in_step", "in_component"],
                 "baselines": ["baseline", "in_step", "in_component"],
                 "convergence_delta": ["point", *out_axes]},
        "inputs_units": "original" if rescaled else "network (scaled)",
        "attribution_units": ("scaled output" if scaled_out else "output") if model.task ==
        "regression" else "logit",
        "captum_version": captum.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    npz_path, json_path = write_interpretation(model_dir, options.file_stem, arrays, meta)
    drawn: list[Path] = []
    if pictures:
        from knowit_app.interpret.pictures import draw_all

        drawn = draw_all(model_dir, options.file_stem, arrays, meta)
    return InterpretResult(model_dir, options, npz_path, json_path, drawn, len(sel_rows),
                           time.perf_counter() - began)
