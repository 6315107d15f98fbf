"""KnowIt's own example datasets, shipped in the package (``data/builtin/``).

``synth_2`` (regression) and ``synth_c`` (classification) are the files KnowIt 1.0.1 ships in
its ``default_datasets/``, with the same values (Apache-2.0, see ``builtin/LICENSE`` and
``builtin/NOTICE.md``). Loading them from the package instead of generating look-alikes means a
KnowIt user's numbers and ours are computed on the same data. Nothing is cached outside the
package: reading a parquet file of a few MB takes a fraction of a second.

Instance order is the order in ``<name>.json`` (KnowIt's instance ids 0, 1, ...), which is the
order KnowIt uses when it splits by instance; slices are cut where the time step is not the
dataset's ``time_delta`` (KnowIt's rule at import).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from knowit_app.data.dataset import RawDataset

BUILTIN_NAMES = ("synth_2", "synth_c")
ORIGIN = "KnowIt 1.0.1 default_datasets (Apache-2.0)"


def _file(name: str, suffix: str) -> Any:
    return resources.files("knowit_app.data").joinpath("builtin", f"{name}{suffix}")


def builtin_meta(name: str) -> dict[str, Any]:
    """The metadata shipped beside a built-in dataset (components, time step, instances)."""
    return json.loads(_file(name, ".json").read_text(encoding="utf-8"))


def display_instance_name(name: str) -> str | int:
    """An instance name as the user wrote it: KnowIt's synth_2 instances are the ints 0..29."""
    return int(name) if name.lstrip("-").isdigit() and str(int(name)) == name else name


@lru_cache(maxsize=len(BUILTIN_NAMES))
def _arrays(name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one built-in once per process; callers get copies (see :func:`load_builtin`)."""
    import pandas as pd

    meta = builtin_meta(name)
    with _file(name, ".parquet").open("rb") as fh:
        df = pd.read_parquet(fh)
    names = [str(n) for n in meta["instances"]]
    order = {n: k for k, n in enumerate(names)}
    inst = df["instance"].astype(str).map(order).to_numpy()
    if np.isnan(inst.astype(float)).any():
        raise ValueError(f"built-in {name!r}: an instance is missing from its metadata")
    inst = inst.astype(np.int64)
    times = df.index.to_numpy().astype("datetime64[ns]").astype(np.int64)
    rows = np.lexsort((times, inst))  # instance order of the metadata, then time
    inst, times = inst[rows], times[rows]
    values = df[list(meta["components"])].to_numpy(dtype=np.float64)[rows]
    step_ns = int(round(float(meta["time_delta_seconds"]) * 1e9))
    new_slice = np.ones(len(rows), dtype=bool)
    new_slice[1:] = (inst[1:] != inst[:-1]) | (np.diff(times) != step_ns)
    starts = np.flatnonzero(new_slice).astype(np.int64)
    ends = np.append(starts[1:], len(rows)).astype(np.int64)
    arrays = {
        "values": values,
        "times": times,
        "slice_starts": starts,
        "slice_ends": ends,
        "slice_instance": inst[starts],
    }
    return meta, arrays


def load_builtin(name: str) -> RawDataset:
    """The built-in dataset ``name`` (one of :data:`BUILTIN_NAMES`), a fresh copy each call."""
    meta, arrays = _arrays(name)
    return RawDataset(
        name=name,
        components=list(meta["components"]),
        time_delta=float(meta["time_delta_seconds"]),
        instance_names=[str(n) for n in meta["instances"]],
        **{k: v.copy() for k, v in arrays.items()},
    )
