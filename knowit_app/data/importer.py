"""Import a user's table (CSV, Parquet or a pandas DataFrame) as a dataset of an experiment.

Rows become steps, sorted by time within each instance; a gap longer than ``time_delta`` starts a
new slice; NaNs are kept (windows over them are excluded when points are chosen). Numeric
``time_column`` values are read as seconds since the epoch. Only pandas and numpy are imported
here, so the ``knowit-app-import`` command starts fast.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from knowit_app.data.dataset import RawDataset
from knowit_app.data.store import (
    META_FILE,
    NAME_PATTERN,
    builtin_names,
    custom_datasets_dir,
    save_dataset,
)
from knowit_app.errors import ConfigError

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def import_dataset(
    source: str | Path | pd.DataFrame,
    name: str,
    exp_dir: str | Path,
    *,
    time_column: str | None = None,
    instance_column: str | None = None,
    components: Sequence[str] | None = None,
    time_delta: float | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Store ``source`` as dataset ``name`` under ``<exp_dir>/custom_datasets`` and return its dir.

    Without ``time_column`` the times come from the index (a CSV's first column). Components
    default to every numeric column other than time and instance. ``time_delta`` is seconds or a
    pandas offset string ("200ms"); by default the most common positive step between rows.
    """
    target = _check_target(name, exp_dir, overwrite)
    frame = _read(source, time_column)
    ds = frame_to_dataset(
        frame,
        name,
        time_column=time_column,
        instance_column=instance_column,
        components=components,
        time_delta=time_delta,
    )
    try:
        return save_dataset(ds, target, replace=overwrite)
    except FileExistsError:
        raise _exists_error(name, target) from None


def _exists_error(name: str, target: Path) -> ConfigError:
    return ConfigError(
        "overwrite",
        f"dataset {name!r} already exists in {target}; pass overwrite=True (--overwrite) to "
        "replace it",
    )


def _check_target(name: str, exp_dir: str | Path, overwrite: bool) -> Path:
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


def _read(source: str | Path | pd.DataFrame, time_column: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            "source",
            f"unsupported file type {path.suffix or '(none)'!r} of {path}; allowed: "
            f"{', '.join(_SUFFIXES)}",
        )
    if not path.is_file():
        raise ConfigError("source", f"file not found: {path}")
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, index_col=None if time_column else 0)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("source", f"cannot read {path}: {first}") from exc


def frame_to_dataset(
    frame: pd.DataFrame,
    name: str,
    *,
    time_column: str | None = None,
    instance_column: str | None = None,
    components: Sequence[str] | None = None,
    time_delta: float | str | None = None,
) -> RawDataset:
    """Turn a table into a :class:`RawDataset` (see :func:`import_dataset` for the rules)."""
    if len(frame) == 0:
        raise ConfigError("source", "the table has no rows")
    times = _times(frame, time_column)
    frame = frame.reset_index(drop=True)
    inst_codes, inst_names = _instances(frame, instance_column, times, name)
    comp_names, values = _components(frame, components, time_column, instance_column)

    order = np.lexsort((times, inst_codes))
    times, inst_codes, values = times[order], inst_codes[order], values[order]
    same_inst = inst_codes[1:] == inst_codes[:-1]
    steps = np.diff(times)
    dup = np.flatnonzero(same_inst & (steps == 0))
    if dup.size:
        i = dup[0]
        raise ConfigError(
            "time_column",
            f"instance {inst_names[inst_codes[i]]!r} has the time "
            f"{pd.Timestamp(times[i])} twice; each time may appear once per instance",
        )
    delta_ns = _time_delta_ns(time_delta, steps[same_inst])
    cut = np.flatnonzero(~same_inst | (steps > delta_ns)) + 1
    starts = np.concatenate([[0], cut]).astype(np.int64)
    ends = np.concatenate([cut, [len(times)]]).astype(np.int64)
    return RawDataset(
        name=name,
        components=comp_names,
        time_delta=delta_ns / 1e9,
        values=values,
        times=times,
        slice_starts=starts,
        slice_ends=ends,
        slice_instance=inst_codes[starts],
        instance_names=inst_names,
    )


def _times(frame: pd.DataFrame, time_column: str | None) -> np.ndarray:
    """Row times as int64 nanoseconds since the epoch (UTC for zone-aware times)."""
    if time_column is None:
        raw = frame.index
        if not isinstance(raw, pd.DatetimeIndex) and not (
            raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)
        ):
            raise ConfigError(
                "time_column",
                "the table has no datetime index; pass time_column (one of: "
                f"{', '.join(map(str, frame.columns))})",
            )
        label = "the index"
    else:
        if time_column not in frame.columns:
            raise ConfigError(
                "time_column",
                f"unknown column {time_column!r}; available: {', '.join(map(str, frame.columns))}",
            )
        raw = frame[time_column]
        label = f"column {time_column!r}"
    try:
        if pd.api.types.is_bool_dtype(raw.dtype):
            raise ValueError("booleans are not times")
        if pd.api.types.is_numeric_dtype(raw.dtype):
            parsed = pd.to_datetime(np.asarray(raw, dtype=np.float64), unit="s")
        else:
            parsed = pd.to_datetime(raw)
    except (ValueError, TypeError, OverflowError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError("time_column", f"{label} cannot be read as times: {first}") from exc
    parsed = pd.DatetimeIndex(parsed)
    if parsed.tz is not None:
        parsed = parsed.tz_convert("UTC").tz_localize(None)
    if parsed.hasnans:
        row = int(np.flatnonzero(parsed.isna())[0])
        raise ConfigError("time_column", f"{label} has no time in row {row}; every row needs one")
    return parsed.to_numpy().astype("datetime64[ns]").astype(np.int64)


def _instances(
    frame: pd.DataFrame, instance_column: str | None, times: np.ndarray, default: str
) -> tuple[np.ndarray, list[str]]:
    """Instance code per row; instances are numbered by their first time, then by name."""
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
    labels = col.astype(str).to_numpy()
    uniq, codes = np.unique(labels, return_inverse=True)
    first = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, times)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.lexsort((uniq, first))] = np.arange(len(uniq))
    names = [str(u) for u in uniq[np.argsort(rank)]]
    return rank[codes], names


def _components(
    frame: pd.DataFrame,
    components: Sequence[str] | None,
    time_column: str | None,
    instance_column: str | None,
) -> tuple[list[str], np.ndarray]:
    reserved = {c for c in (time_column, instance_column) if c is not None}
    if components is None:
        chosen = [c for c in frame.columns if c not in reserved
                  and (pd.api.types.is_numeric_dtype(frame[c].dtype))]
        if not chosen:
            raise ConfigError(
                "components",
                "the table has no numeric columns besides time and instance; columns: "
                f"{', '.join(map(str, frame.columns))}",
            )
    else:
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
                raise ConfigError("components", f"{c!r} is the time or instance column")
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
    return names, values


def _time_delta_ns(time_delta: object, steps: np.ndarray) -> int:
    """The step in nanoseconds: given (seconds or an offset string) or the most common step."""
    if time_delta is None:
        positive = steps[steps > 0]
        if positive.size == 0:
            raise ConfigError(
                "time_delta",
                "cannot infer the time step: no instance has two rows; pass time_delta",
            )
        uniq, counts = np.unique(positive, return_counts=True)
        return int(uniq[np.argmax(counts)])
    seconds: float | None = None
    if isinstance(time_delta, (pd.Timedelta, _dt.timedelta)):
        seconds = pd.Timedelta(time_delta).total_seconds()
    elif isinstance(time_delta, (int, float, np.integer, np.floating)) and not isinstance(
        time_delta, bool
    ):
        seconds = float(time_delta)
    elif isinstance(time_delta, str):
        try:
            seconds = float(time_delta)
        except ValueError:
            try:
                seconds = pd.Timedelta(time_delta).total_seconds()
            except ValueError:
                seconds = None
    if seconds is None or not math.isfinite(seconds) or round(seconds * 1e9) < 1:
        raise ConfigError(
            "time_delta",
            f"cannot use {time_delta!r} as the time step; give positive seconds (0.2) or a "
            "pandas offset such as '200ms'",
        )
    return int(round(seconds * 1e9))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="knowit-app-import",
        description="Import a CSV or Parquet table as a dataset of an experiment directory.",
    )
    p.add_argument("file", help="a .csv or .parquet file")
    p.add_argument("--name", required=True, help="dataset name (use as data.name=NAME)")
    p.add_argument("--exp-dir", default="outputs", help="experiment directory (default: outputs)")
    p.add_argument("--time-column", help="column of times (default: the index / first column); "
                   "numbers are seconds since the epoch")
    p.add_argument("--instance-column", help="column naming the instance of each row")
    p.add_argument("--components", help="comma-separated columns (default: all numeric ones)")
    p.add_argument("--time-delta", help="time step: seconds (0.2) or an offset ('200ms'); "
                   "default: the most common step")
    p.add_argument("--overwrite", action="store_true", help="replace an existing import")
    return p


def main(argv: list[str] | None = None) -> int:
    """Console entry point: import, print a one-line summary, return the exit status."""
    args = _parser().parse_args(argv)
    comps = None
    if args.components is not None:
        comps = [c.strip() for c in args.components.split(",") if c.strip()]
    try:
        path = import_dataset(
            args.file,
            args.name,
            args.exp_dir,
            time_column=args.time_column,
            instance_column=args.instance_column,
            components=comps,
            time_delta=args.time_delta,
            overwrite=args.overwrite,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from knowit_app.data.store import read_meta

    meta = read_meta(path)
    print(
        f"imported {args.name!r}: {meta['rows']} rows, {meta['instances']} instances, "
        f"{meta['slices']} slices, components {', '.join(meta['components'])}, "
        f"time_delta {meta['time_delta']:g} s -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
