"""Import a user's table as a dataset of an experiment, with KnowIt's rules.

KnowIt's forms are accepted as they are: a time-indexed DataFrame (or a .pickle/.csv/.parquet/
.json file of one) whose metadata (``name``, ``components``, ``time_delta``, optional
``instances``) is given as ``meta`` or sits in ``DataFrame.attrs``; a column ``instance`` names
each row's instance and a column ``split`` (0 train, 1 valid, 2 eval) defines a user split for
``split_method=custom``. Neither special column becomes a component. As in KnowIt, rows are
sorted by time within each instance (instances in sorted order of their ids), repeated times keep
the first row, a step longer than ``time_delta`` starts a new slice, and ``base_nan_filler``
handles NaNs: ``'split'`` cuts slices at rows with a NaN in ``nan_filled_components``, a pandas
interpolation method fills them (slices it cannot fill are dropped), None keeps them (windows
over them are never prediction points). Only pandas and numpy are imported here, so
``knowit-app-import`` starts fast.
"""

from __future__ import annotations

import datetime as _dt
import logging
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knowit_app.data.dataset import RawDataset
from knowit_app.data.nans import (
    Rows,
    check_nan_options,
    fill_nans,
    nan_columns,
    refuse_all_nan,
    split_at_nans,
)
from knowit_app.data.notes import note_left_out, note_unsorted
from knowit_app.data.readers import (
    instance_label,
    read_table,
    refuse_repeated,
    row_times,
    time_delta_ns,
)
from knowit_app.data.store import (
    META_FILE,
    NAME_PATTERN,
    builtin_names,
    custom_datasets_dir,
    fingerprint,
    read_dataset,
    read_meta,
    store_dataset,
)
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import MODEL_ARGS_FILE, MODELS_DIR

log = logging.getLogger("knowit_app")

INSTANCE_COLUMN = "instance"
SPLIT_COLUMN = "split"
_META_KEYS = ("name", "components", "time_delta", "instances")


def import_dataset(
    source: str | Path | pd.DataFrame,
    name: str | None = None,
    exp_dir: str | Path = "outputs",
    *,
    meta: Mapping[str, Any] | None = None,
    time_column: str | None = None,
    instance_column: str | None = None,
    components: Sequence[str] | None = None,
    time_delta: float | str | _dt.timedelta | None = None,
    base_nan_filler: str | None = None,
    nan_filled_components: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Store ``source`` as a dataset under ``<exp_dir>/custom_datasets`` and return its dir.

    Explicit arguments win over ``meta``, which wins over ``source.attrs`` (KnowIt's order).
    Without ``time_column`` the times come from the index (a CSV's first column). Components
    default to every numeric column other than time, instance and split. ``time_delta`` is
    seconds, a timedelta or a pandas offset string ("200ms"); by default the most common step.
    """
    if meta is not None and not isinstance(meta, Mapping):
        raise ConfigError("meta", f"must be a dict of {', '.join(_META_KEYS)}; got "
                          f"{type(meta).__name__}")
    check_nan_options(base_nan_filler, nan_filled_components)
    early = dict(meta or {})
    name = name if name is not None else early.get("name")
    if name is not None:  # refuse a bad or taken name before reading any file
        _check_target(name, exp_dir, overwrite)
    frame = source if isinstance(source, pd.DataFrame) else read_table(source, time_column)
    info = dict(meta) if meta is not None else dict(frame.attrs or {})
    name = name if name is not None else info.get("name")
    if name is None:
        raise ConfigError("meta.name", "the dataset needs a name: pass name, meta={'name': ...} "
                          "or set DataFrame.attrs['name']")
    target = _check_target(name, exp_dir, overwrite)
    ds = frame_to_dataset(
        frame,
        name,
        time_column=time_column,
        instance_column=instance_column,
        components=components if components is not None else info.get("components"),
        time_delta=time_delta if time_delta is not None else info.get("time_delta"),
        instances=info.get("instances"),
        base_nan_filler=base_nan_filler,
        nan_filled_components=nan_filled_components,
    )
    return _store(ds, target, exp_dir, overwrite, "imported")


def import_knowit_dataset(source: str | Path, name: str, exp_dir: str | Path = "outputs", *,
                          new_name: str | None = None, overwrite: bool = False) -> Path:
    """Copy dataset ``name`` from a KnowIt experiment dir (``custom_datasets/<name>``: parquet
    partitions + meta pickle) into ``exp_dir`` as ``new_name`` (default: the same name)."""
    from knowit_app.data.knowit_format import knowit_paths, read_knowit_dataset

    target_name = new_name or name
    target = _check_target(target_name, exp_dir, overwrite)
    paths = knowit_paths(source, name)
    if paths is not None and paths[1].resolve() == target.resolve():
        raise ConfigError("new_name", f"{target} is KnowIt's copy itself; it is read in place "
                          "(data.name=" + name + "), or give new_name to convert it")
    ds = read_knowit_dataset(source, name, new_name=target_name)
    return _store(ds, target, exp_dir, overwrite, f"knowit:{Path(source)}")


def _store(ds: RawDataset, target: Path, exp_dir: str | Path, overwrite: bool,
           origin: str) -> Path:
    """Publish ``ds``; a replaced dataset is kept, and the models trained on it are named."""
    try:
        path, kept = store_dataset(ds, target, replace=overwrite, origin=origin)
    except FileExistsError:
        raise _exists_error(ds.name, target) from None
    if kept is None:
        return path
    try:
        old = read_meta(kept).get("fingerprint") or fingerprint(read_dataset(kept))
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile):
        old = None  # a damaged old copy: models naming the dataset are listed below anyway
    new = fingerprint(ds)
    if old is not None and old == new:
        log.warning("dataset %r: the same data as before (the old copy is kept in %s)",
                    ds.name, kept)
        return path
    models = [m for m, fp in models_trained_on(exp_dir, ds.name)
              if fp != new and (old is None or fp in (None, old))]
    trained = ("models trained on the old data: " + ", ".join(models)
               + " (knowit-app-eval and -predict refuse them until the old copy is moved back"
               " to " + str(target) + ", or retrain them)") if models else (
        "no model was trained on the old data")
    log.warning("dataset %r replaced; the old copy is kept in %s; %s", ds.name, kept, trained)
    return path


def models_trained_on(exp_dir: str | Path, name: str) -> list[tuple[str, str | None]]:
    """Models and sweep runs of ``exp_dir`` whose ``model_args.yaml`` names dataset ``name``:
    (path below ``models/``, the dataset fingerprint recorded or None)."""
    import yaml

    root = Path(exp_dir) / MODELS_DIR
    found = []
    for args_file in sorted(root.rglob(MODEL_ARGS_FILE)) if root.is_dir() else []:
        rel = args_file.parent.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):  # staging, replaced, interrupted
            continue
        try:
            args = yaml.safe_load(args_file.read_text())
            data_name = args["data"]["name"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            continue
        if str(data_name) == name:
            recorded = args.get("dataset_fingerprint")
            found.append((rel.as_posix(), str(recorded) if recorded else None))
    return found


def _exists_error(name: str, target: Path) -> ConfigError:
    return ConfigError(
        "overwrite",
        f"dataset {name!r} already exists in {target}; pass overwrite=True (--overwrite) to "
        "replace it",
    )


def _check_target(name: Any, exp_dir: str | Path, overwrite: bool) -> Path:
    """Refuse bad or taken names before reading any data."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            "name",
            f"invalid dataset name {name!r}; use letters, digits, '_', '.' and '-', starting "
            "with a letter or digit",
        )
    if name in builtin_names():
        raise ConfigError(
            "name",
            f"{name!r} is a built-in dataset; choose another name (built-ins: "
            f"{', '.join(builtin_names())})",
        )
    target = custom_datasets_dir(exp_dir) / name
    if not overwrite and (target / META_FILE).exists():
        raise _exists_error(name, target)
    return target


def frame_to_dataset(
    frame: pd.DataFrame,
    name: str,
    *,
    time_column: str | None = None,
    instance_column: str | None = None,
    components: Sequence[str] | None = None,
    time_delta: float | str | _dt.timedelta | None = None,
    instances: Sequence[Any] | None = None,
    base_nan_filler: str | None = None,
    nan_filled_components: Sequence[str] | None = None,
) -> RawDataset:
    """Turn a table into a :class:`RawDataset` (see the module docstring for the rules)."""
    check_nan_options(base_nan_filler, nan_filled_components)
    if len(frame) == 0:
        raise ConfigError("raw_data", "the table has no rows")
    refuse_repeated(list(frame.columns), "the table")
    if instance_column is None and INSTANCE_COLUMN in frame.columns:
        instance_column = INSTANCE_COLUMN
    if instances is not None and instance_column is None:
        raise ConfigError("meta.instances", "instances are named but the table has no "
                          f"{INSTANCE_COLUMN!r} column saying which row belongs to which")
    split_column = SPLIT_COLUMN if SPLIT_COLUMN in frame.columns else None
    times = row_times(frame, time_column)
    frame = frame.reset_index(drop=True)
    inst_codes, inst_names = _instances(frame, instance_column, name)
    reserved = [c for c in (time_column, instance_column, split_column) if c is not None]
    comp_names, values = _components(frame, components, reserved)
    split = _split_labels(frame[split_column]) if split_column else None

    note_unsorted(times, inst_codes, name)
    order = np.lexsort((times, inst_codes))  # stable: the first of repeated times comes first
    times, inst_codes, values = times[order], inst_codes[order], values[order]
    split = split[order] if split is not None else None
    keep = np.ones(len(times), dtype=bool)
    keep[1:] = (inst_codes[1:] != inst_codes[:-1]) | (times[1:] != times[:-1])
    if not keep.all():
        log.warning("dataset %r: %d rows repeat a time of their instance; kept the first of "
                    "each", name, int((~keep).sum()))
    rows = Rows(times[keep], inst_codes[keep], values[keep],
                 split[keep] if split is not None else None)
    same = rows.inst[1:] == rows.inst[:-1]
    delta_ns = time_delta_ns(time_delta, np.diff(rows.times)[same], int((~keep).sum()))
    cut = np.ones(len(rows.times), dtype=bool)
    cut[1:] = ~same | (np.diff(rows.times) > delta_ns)
    if base_nan_filler is not None:
        nan_cols = nan_columns(comp_names, nan_filled_components)
        if base_nan_filler == "split":
            rows, cut = split_at_nans(rows, cut, nan_cols)
        else:
            rows, cut = fill_nans(rows, cut, nan_cols, base_nan_filler, name)
    if len(rows.times) == 0:
        raise ConfigError("base_nan_filler", "no rows are left once NaNs are handled")
    starts = np.flatnonzero(cut).astype(np.int64)
    ends = np.append(starts[1:], len(rows.times)).astype(np.int64)
    used = np.unique(rows.inst)
    if len(used) < len(inst_names):  # instances whose every slice was dropped (KnowIt too)
        log.warning("dataset %r: instances left without data are dropped: %s", name,
                    ", ".join(n for k, n in enumerate(inst_names) if k not in set(used)))
        remap = np.full(len(inst_names), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        rows.inst = remap[rows.inst]
        inst_names = [inst_names[k] for k in used]
    return RawDataset(
        name=name,
        components=comp_names,
        time_delta=delta_ns / 1e9,
        values=rows.values,
        times=rows.times,
        slice_starts=starts,
        slice_ends=ends,
        slice_instance=rows.inst[starts],
        instance_names=inst_names,
        split=rows.split,
    )


def _split_labels(col: pd.Series) -> np.ndarray:
    """KnowIt's split tags per row: 0, 1, 2, or NaN (in no set, stored as -1)."""
    num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isnan(num) | np.isin(num, (0.0, 1.0, 2.0))) | (np.isnan(num) & col.notna()
                                                                .to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ConfigError("split", f"column 'split' holds {col.iloc[row]!r} in row {row}; "
                          "allowed: 0 (train), 1 (valid), 2 (eval) or empty")
    return np.where(np.isnan(num), -1, num).astype(np.int8)


def _instances(frame: pd.DataFrame, instance_column: str | None,
               default: str) -> tuple[np.ndarray, list[str]]:
    """Instance code per row, numbered in sorted order of the ids (KnowIt's groupby order)."""
    if instance_column is None:
        return np.zeros(len(frame), dtype=np.int64), [default]
    if instance_column not in frame.columns:
        raise ConfigError(
            "instance_column",
            f"unknown column {instance_column!r}; available: {', '.join(map(str, frame.columns))}",
        )
    col = frame[instance_column]
    if col.isna().any():
        row = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise ConfigError("instance_column", f"column {instance_column!r} is empty in row {row}")
    try:
        uniq, codes = np.unique(col.to_numpy(), return_inverse=True)
    except TypeError:  # mixed id types cannot be ordered together: order them as text
        uniq, codes = np.unique(col.astype(str).to_numpy(), return_inverse=True)
    return codes.astype(np.int64).reshape(-1), [instance_label(u) for u in uniq]


def _components(
    frame: pd.DataFrame, components: Sequence[str] | None, reserved: list[str]
) -> tuple[list[str], np.ndarray]:
    if components is None:
        chosen = [c for c in frame.columns if c not in reserved
                  and (pd.api.types.is_numeric_dtype(frame[c].dtype))]
        note_left_out([c for c in frame.columns if c not in reserved and c not in chosen],
                       frame)
        if not chosen:
            raise ConfigError(
                "components",
                "the table has no numeric columns besides time, instance and split; columns: "
                f"{', '.join(map(str, frame.columns))}",
            )
    else:
        if isinstance(components, str) or not isinstance(components, Sequence):
            raise ConfigError("components", f"must be a list of column names; got {components!r}")
        chosen = list(components)
        if not chosen:
            raise ConfigError("components", "no components given; name at least one column")
        for c in chosen:
            if c not in frame.columns:
                avail = [str(x) for x in frame.columns if x not in reserved]
                raise ConfigError(
                    "components", f"unknown column {c!r}; available: {', '.join(avail)}"
                )
            if c in reserved:
                raise ConfigError("components", f"{c!r} is the time, instance or split column")
    names = [str(c) for c in chosen]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError("components", f"component {dup!r} is listed twice")
    cols = []
    for c in chosen:
        try:
            col = pd.to_numeric(frame[c], errors="raise")
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "components", f"column {c!r} is not numeric: {str(exc).splitlines()[0]}"
            ) from exc
        cols.append(np.asarray(col, dtype=np.float64))
    values = np.column_stack(cols)
    bad = np.isinf(values)
    if bad.any():
        r, k = np.argwhere(bad)[0]
        raise ConfigError(
            "components", f"column {names[k]!r} is infinite in row {r}; use NaN for missing values"
        )
    refuse_all_nan(names, values)
    return names, values
