"""Read a dataset KnowIt stored in an experiment directory (``custom_datasets/<name>``).

KnowIt keeps ``<name>_meta.pickle`` (name, components, time_delta, instance_names,
data_structure, optional custom_splits) beside ``<name>/instance=<i>/slice=<s>/*.parquet``.
The meta pickle is read with the restricted unpickler of :mod:`knowit_app.data.readers` with
pandas turned off: plain values, ``datetime.timedelta`` and numpy arrays of plain items (the
custom split's point lists) load, any other class or function is refused before it is looked up.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knowit_app.data.dataset import RawDataset
from knowit_app.data.nans import refuse_all_nan
from knowit_app.data.readers import instance_label, safe_load_pickle
from knowit_app.errors import ConfigError

META_SUFFIX = "_meta.pickle"
_SET_CODES = {"train": 0, "valid": 1, "eval": 2}


def knowit_paths(source: str | Path, name: str) -> tuple[Path, Path] | None:
    """(meta pickle, package dir) of ``name`` in a KnowIt experiment dir (or its
    ``custom_datasets``/``default_datasets`` folder); None if it holds no such dataset."""
    source = Path(source)
    for folder in (source / "custom_datasets", source):
        meta, package = folder / f"{name}{META_SUFFIX}", folder / name
        if meta.is_file() and package.is_dir():
            return meta, package
    return None


def read_knowit_meta(path: Path) -> dict[str, Any]:
    """KnowIt's dataset metadata, loaded without running any code it might name."""
    meta = safe_load_pickle(path, allow_pandas=False, key="knowit_dataset")
    if not isinstance(meta, dict):
        raise ConfigError("knowit_dataset", f"{path} holds a {type(meta).__name__}, not "
                          "KnowIt's metadata dict")
    missing = [k for k in ("name", "components", "time_delta", "instance_names",
                           "data_structure") if k not in meta]
    if missing:
        raise ConfigError("knowit_dataset", f"{path} lacks {', '.join(missing)}; is it a "
                          "KnowIt dataset?")
    if not isinstance(meta["time_delta"], _dt.timedelta):
        raise ConfigError("knowit_dataset", f"{path}: time_delta is not a timedelta")
    return meta


def read_knowit_dataset(source: str | Path, name: str, new_name: str | None = None) -> RawDataset:
    """The KnowIt dataset ``name`` found in ``source`` as a :class:`RawDataset`."""
    paths = knowit_paths(source, name)
    if paths is None:
        raise ConfigError("knowit_dataset", f"no KnowIt dataset {name!r} in {source} (looked "
                          f"for custom_datasets/{name}{META_SUFFIX} and custom_datasets/{name}/)")
    meta_path, package = paths
    meta = read_knowit_meta(meta_path)
    components = [str(c) for c in meta["components"]]
    try:
        frame = pd.read_parquet(package)
    except (OSError, ValueError) as exc:
        raise ConfigError("knowit_dataset", f"cannot read {package}: "
                          f"{str(exc).splitlines()[0]}") from exc
    missing = [c for c in (*components, "instance", "slice") if c not in frame.columns]
    if missing:
        raise ConfigError("knowit_dataset", f"{package} lacks the columns {', '.join(missing)}")
    inst = np.asarray(frame["instance"].astype(str).astype(np.int64))
    slc = np.asarray(frame["slice"].astype(str).astype(np.int64))
    times = pd.DatetimeIndex(frame.index).to_numpy().astype("datetime64[ns]").astype(np.int64)
    order = np.lexsort((times, slc, inst))
    inst, slc, times = inst[order], slc[order], times[order]
    values = frame[components].to_numpy(dtype=np.float64)[order]
    refuse_all_nan(components, values, "knowit_dataset")
    new = np.ones(len(order), dtype=bool)
    new[1:] = (inst[1:] != inst[:-1]) | (slc[1:] != slc[:-1])
    starts = np.flatnonzero(new).astype(np.int64)
    ends = np.append(starts[1:], len(order)).astype(np.int64)
    _check_structure(meta["data_structure"], inst[starts], slc[starts], ends - starts, package)
    ids = sorted(int(i) for i in meta["instance_names"])
    code = {i: k for k, i in enumerate(ids)}
    split = None
    if meta.get("custom_splits") is not None:
        split = _split_labels(meta["custom_splits"], inst[starts], slc[starts], starts,
                              len(order))
    return RawDataset(
        name=new_name or str(meta["name"]),
        components=components,
        time_delta=meta["time_delta"].total_seconds(),
        values=values,
        times=times,
        slice_starts=starts,
        slice_ends=ends,
        slice_instance=np.asarray([code[int(i)] for i in inst[starts]], dtype=np.int64),
        instance_names=[instance_label(meta["instance_names"][i]) for i in ids],
        split=split,
    )


def _check_structure(structure: dict, inst: np.ndarray, slc: np.ndarray, rows: np.ndarray,
                     package: Path) -> None:
    """The partitions must hold the slices and row counts the metadata promises."""
    expected = {(int(i), int(s)): int(n) for i, ss in structure.items() for s, n in ss.items()}
    found = {(int(i), int(s)): int(n) for i, s, n in zip(inst, slc, rows, strict=True)}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[0]
        raise ConfigError("knowit_dataset", f"{package} does not match its metadata (instance "
                          f"{diff[0][0]}, slice {diff[0][1]}); re-import it in KnowIt")


def _split_labels(splits: dict, inst: np.ndarray, slc: np.ndarray, starts: np.ndarray,
                  n_rows: int) -> np.ndarray:
    """KnowIt's custom_splits ((instance, slice, step) per set) as one label per row."""
    first = {(int(i), int(s)): int(r) for i, s, r in zip(inst, slc, starts, strict=True)}
    labels = np.full(n_rows, -1, dtype=np.int8)
    for set_name, code in _SET_CODES.items():
        points = np.asarray(splits.get(set_name, []), dtype=np.int64).reshape(-1, 3)
        for i, s, t in points:
            labels[first[(int(i), int(s))] + int(t)] = code
    return labels
