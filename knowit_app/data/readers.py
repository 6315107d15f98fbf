"""Read a user's table from the files KnowIt accepts: .pickle, .csv, .parquet and .json.

Pickles run code while they load: ``pickle.load`` calls whatever callable the file names. A
KnowIt user's pickled DataFrame needs pandas' and numpy's own rebuild functions, nothing else, so
:class:`SafeUnpickler` resolves only those (an exact list of functions, and classes from pandas'
and numpy's data-structure modules) plus a few plain builtins and datetime types. A file that
names anything else (``os.system``, ``builtins.eval``, pandas' I/O or eval machinery, a user
class) is refused before that callable is ever looked up, and a pickle that loads but is not a
DataFrame is refused too. Parquet is the recommended form: it runs no code at all.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from knowit_app.errors import ConfigError

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".pickle": "pickle",
            ".pkl": "pickle", ".json": "json"}

# Plain values a pickled frame or KnowIt's dataset metadata may hold.
_PLAIN = {
    ("builtins", n) for n in ("slice", "bytearray", "complex", "set", "frozenset", "range")
} | {
    ("datetime", n) for n in ("timedelta", "datetime", "date", "time", "timezone")
} | {("zoneinfo", "ZoneInfo"), ("_codecs", "encode"), ("copyreg", "_reconstructor"),
     ("builtins", "object")}
# numpy's array rebuild: the array's items are themselves unpickled through this same loader.
_NUMPY = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
          ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
          ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
          ("numpy._core.numeric", "_frombuffer")}
# pandas' own rebuild functions (its classes are allowed by module below).
_PANDAS_FUNCS = {
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pandas._libs.tslibs.nattype", "__nat_unpickle"),
    ("pandas._libs.missing", "NAType"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
    ("pandas.core.indexes.period", "_new_PeriodIndex"),
    ("pandas.core.arrays.arrow.array", "ArrowExtensionArray"),
    ("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "type_for_alias"),
    ("pyarrow.lib", "py_buffer"), ("pyarrow.lib", "chunked_array"),
}
_PANDAS_CLASS_MODULES = ("pandas.core.frame", "pandas.core.series", "pandas.core.indexes.",
                         "pandas.core.internals.", "pandas.core.arrays.", "pandas.core.dtypes.",
                         "pandas._libs.tslibs.", "pandas.core.flags")
_PANDAS_TOP_CLASSES = {"DataFrame", "Series", "Index", "DatetimeIndex", "RangeIndex",
                       "Timestamp", "Timedelta", "CategoricalDtype", "StringDtype",
                       "DatetimeTZDtype", "Categorical", "Int64Dtype", "Float64Dtype"}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds pandas/numpy data and plain values, and refuses the rest."""

    def __init__(self, file: Any, *, allow_pandas: bool = True, origin: str = "the pickle",
                 key: str = "source") -> None:
        super().__init__(file)
        self.allow_pandas = allow_pandas
        self.origin = origin
        self.key = key

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN or (module, name) in _NUMPY:
            return super().find_class(module, name)
        if self.allow_pandas and _pandas_allowed(module, name):
            found = super().find_class(module, name)
            if (module, name) in _PANDAS_FUNCS or isinstance(found, type):
                return found
        raise ConfigError(
            self.key,
            f"{self.origin} refers to {module}.{name}, which the safe loader does not run; "
            "only pandas/numpy data and plain values may be pickled (save the table as "
            ".parquet instead)",
        )


def _pandas_allowed(module: str, name: str) -> bool:
    if (module, name) in _PANDAS_FUNCS:
        return True
    if module in ("pandas", "pandas.arrays"):
        return name in _PANDAS_TOP_CLASSES or module == "pandas.arrays"
    return any(module == p or (p.endswith(".") and module.startswith(p))
               for p in _PANDAS_CLASS_MODULES)


def safe_load_pickle(path: Path, *, allow_pandas: bool = True, key: str = "source") -> Any:
    """Load ``path`` with :class:`SafeUnpickler`; any failure is a ConfigError naming ``key``."""
    data = path.read_bytes()
    try:
        return SafeUnpickler(io.BytesIO(data), allow_pandas=allow_pandas, origin=str(path),
                             key=key).load()
    except ConfigError:
        raise
    except Exception as exc:  # a corrupt pickle raises anything from anywhere
        raise ConfigError(key, f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


def read_table(path: str | Path, time_column: str | None) -> pd.DataFrame:
    """Read a table file as KnowIt does: CSV with the times in the first column, JSON with
    ``orient='index'``, Parquet as written, a pickle only if it holds a DataFrame."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(
            "raw_data",
            f"unsupported file type {path.suffix or '(none)'!r} of {path}; allowed: "
            f"{', '.join(SUFFIXES)}",
        )
    if not path.is_file():
        raise ConfigError("raw_data", f"file not found: {path}")
    if kind == "pickle":
        frame = safe_load_pickle(path, key="raw_data")
        if not isinstance(frame, pd.DataFrame):
            raise ConfigError("raw_data", f"{path} holds a {type(frame).__name__}, not a "
                              "pandas DataFrame")
        return frame
    if kind == "csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            # pandas would rename a repeated name to 'a.1' without a word: refuse it instead
            refuse_repeated([c for c in next(csv.reader(fh), []) if c], path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "json":
            return pd.read_json(path, orient="index")
        return pd.read_csv(path, index_col=None if time_column else 0)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("raw_data", f"cannot read {path}: {first}") from exc


def refuse_repeated(columns: list[Any], where: object) -> None:
    """A column name given twice is refused (pandas would rename or duplicate it silently)."""
    seen: set[str] = set()
    for c in map(str, columns):
        if c in seen:
            raise ConfigError("raw_data", f"column {c!r} appears twice in {where}; give each "
                              "column its own name")
        seen.add(c)


def as_timedelta(value: Any) -> _dt.timedelta | None:
    """A pandas Timedelta or datetime.timedelta as a datetime.timedelta; None otherwise."""
    if isinstance(value, (pd.Timedelta, _dt.timedelta)):
        return pd.Timedelta(value).to_pytimedelta()
    return None


def row_times(frame: pd.DataFrame, time_column: str | None) -> np.ndarray:
    """Row times as int64 nanoseconds since the epoch (UTC for zone-aware times)."""
    if time_column is None:
        raw = frame.index
        if not isinstance(raw, pd.DatetimeIndex) and not (
            raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)
        ):
            # A CSV's first column became the index: it is a candidate too.
            named = [raw.name] if raw.name is not None else []
            raise ConfigError(
                "time_column",
                "the table is not time-indexed (KnowIt needs a DatetimeIndex); set one or pass "
                f"time_column (one of: {', '.join(map(str, [*named, *frame.columns]))})",
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
            with warnings.catch_warnings():  # per-element parsing is what we ask for here
                warnings.filterwarnings("ignore", message="Could not infer format")
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


def time_delta_ns(time_delta: object, steps: np.ndarray, repeated: int = 0) -> int:
    """The step in nanoseconds: given (seconds, a timedelta or an offset string) or the most
    common step (``repeated``: rows dropped for repeating a time, to explain a failure)."""
    if time_delta is None:
        positive = steps[steps > 0]
        if positive.size == 0:
            why = (f"no instance has two distinct times ({repeated} rows repeated a time and "
                   "were dropped)" if repeated else "no instance has two rows")
            raise ConfigError("time_delta", f"cannot infer the time step: {why}; pass "
                              "time_delta")
        uniq, counts = np.unique(positive, return_counts=True)
        return int(uniq[np.argmax(counts)])
    seconds: float | None = None
    td = as_timedelta(time_delta)
    if td is not None:
        seconds = pd.Timedelta(td).total_seconds()
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
            f"cannot use {time_delta!r} as the time step; give positive seconds (0.2), a "
            "timedelta or a pandas offset such as '200ms'",
        )
    return int(round(seconds * 1e9))


def instance_label(value: Any) -> str:
    """An instance id as text; a whole float (KnowIt's synth_2 has 0.0, 1.0, ...) drops '.0'."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
