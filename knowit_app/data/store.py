"""Datasets on disk: one directory per dataset, written atomically, found by name.

Layout of a dataset directory: ``meta.json`` (name, components, time_delta, instance names,
counts, format version, origin) and ``arrays.npz`` (values, times, slice bounds). A directory is
built under a temporary name next to its final place and renamed in one step, so readers never
see half a dataset. The built-ins (KnowIt's synth_2 and synth_c) are read from the package
itself (:mod:`knowit_app.data.bundled`) and never copied anywhere.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from knowit_app.data import bundled
from knowit_app.data.dataset import RawDataset
from knowit_app.errors import ConfigError
from knowit_app.experiment.io import fsync_dir, fsync_files

FORMAT_VERSION = 1
META_FILE = "meta.json"
ARRAYS_FILE = "arrays.npz"
_ARRAY_KEYS = ("values", "times", "slice_starts", "slice_ends", "slice_instance")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REPLACED_DIR = ".replaced"  # custom_datasets/.replaced/<time>/<name>: datasets an import replaced


def builtin_names() -> list[str]:
    """KnowIt's example datasets shipped in the package (see :mod:`knowit_app.data.bundled`)."""
    return sorted(bundled.BUILTIN_NAMES)


def custom_datasets_dir(exp_dir: str | Path) -> Path:
    """Imported datasets belong to an experiment directory, next to the models trained on them."""
    return Path(exp_dir) / "custom_datasets"


def fingerprint(ds: RawDataset) -> str:
    """A content hash of what training reads (arrays, components, time step, instances).

    The name and origin are left out: the same data under another name or path is the same data.
    A model records it so that evaluation notices when its dataset was replaced since.
    """
    h = hashlib.sha256()
    head = {"components": list(ds.components), "time_delta": float(ds.time_delta),
            "instance_names": list(ds.instance_names)}
    h.update(json.dumps(head, sort_keys=True).encode())
    for key in (*_ARRAY_KEYS, "split"):
        arr = getattr(ds, key)
        if arr is None:
            h.update(f"{key}:none;".encode())
            continue
        arr = np.ascontiguousarray(arr)
        h.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.tobytes())
    return "sha256:" + h.hexdigest()


def _meta_of(ds: RawDataset, origin: str) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "origin": origin,
        "name": ds.name,
        "components": list(ds.components),
        "time_delta": ds.time_delta,
        "instance_names": list(ds.instance_names),
        "rows": ds.n_rows,
        "slices": ds.n_slices,
        "instances": ds.n_instances,
        "custom_split": ds.split is not None,
        "fingerprint": fingerprint(ds),
    }


def save_dataset(ds: RawDataset, directory: str | Path, *, replace: bool = True,
                 origin: str = "imported") -> Path:
    """Write ``ds`` into ``directory`` atomically and return the directory.

    With ``replace=False`` an existing directory is left alone and FileExistsError is raised:
    the caller decides whether someone else's complete copy is good enough.
    """
    return store_dataset(ds, directory, replace=replace, origin=origin)[0]


def store_dataset(ds: RawDataset, directory: str | Path, *, replace: bool = True,
                  origin: str = "imported") -> tuple[Path, Path | None]:
    """:func:`save_dataset`, also returning where a replaced copy was kept (None if none).

    A replaced dataset is never deleted: it moves to ``.replaced/<time>/<name>`` beside the
    datasets, so models trained on it can be evaluated again once it is moved back.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        arrays = {k: getattr(ds, k) for k in _ARRAY_KEYS}
        if ds.split is not None:  # a user-defined split (KnowIt's 'split' column)
            arrays["split"] = ds.split
        np.savez(tmp / ARRAYS_FILE, **arrays)
        (tmp / META_FILE).write_text(json.dumps(_meta_of(ds, origin), indent=1))
        fsync_files(tmp)  # the rename below is the atomic step; the data must precede it
        kept = _publish(tmp, directory, replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory, kept


def _replaced_slot(directory: Path) -> Path:
    """A fresh ``.replaced/<time>/<name>`` for the dataset ``directory``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = directory.parent / REPLACED_DIR
    slot, n = root / stamp / directory.name, 1
    while slot.exists():
        slot, n = root / f"{stamp}-{n}" / directory.name, n + 1
    slot.parent.mkdir(parents=True, exist_ok=True)
    return slot


def _publish(tmp: Path, directory: Path, replace: bool) -> Path | None:
    """Rename ``tmp`` to ``directory``; an old copy moves to ``.replaced/<time>/`` first (back
    on failure). Returns where the old copy went."""
    kept = None
    if replace and directory.exists():
        kept = _replaced_slot(directory)
        os.replace(directory, kept)
    try:
        os.rename(tmp, directory)
        fsync_dir(directory.parent)
    except OSError as exc:
        if kept is not None and not directory.exists():
            os.replace(kept, directory)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "dataset already exists", str(directory)) from exc
        raise
    return kept


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The metadata of a stored dataset, without loading its arrays."""
    return json.loads((Path(directory) / META_FILE).read_text())


def read_dataset(directory: str | Path) -> RawDataset:
    """Load a dataset directory written by :func:`save_dataset`."""
    directory = Path(directory)
    meta = read_meta(directory)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{directory}: format version {meta.get('format_version')}, expected {FORMAT_VERSION}"
        )
    with np.load(directory / ARRAYS_FILE) as arrays:
        data = {k: arrays[k] for k in _ARRAY_KEYS}
        data["split"] = arrays["split"] if "split" in arrays.files else None
    return RawDataset(
        name=meta["name"],
        components=meta["components"],
        time_delta=meta["time_delta"],
        instance_names=meta["instance_names"],
        **data,
    )


def _imported_names(exp_dir: str | Path) -> list[str]:
    root = custom_datasets_dir(exp_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if NAME_PATTERN.match(p.name) and (p / META_FILE).is_file())


def _knowit_names(exp_dir: str | Path) -> list[str]:
    """Datasets of a KnowIt experiment dir, read in place (``<name>_meta.pickle`` + partitions)."""
    from knowit_app.data.knowit_format import META_SUFFIX  # pandas: only when listing

    root = custom_datasets_dir(exp_dir)
    if not root.is_dir():
        return []
    names = (p.name.removesuffix(META_SUFFIX) for p in root.glob(f"*{META_SUFFIX}"))
    return sorted(n for n in names if NAME_PATTERN.match(n) and (root / n).is_dir())


def dataset_names(exp_dir: str | Path) -> dict[str, list[str]]:
    """KnowIt's listing: built-ins as ``defaults``, imported and KnowIt-format as ``custom``."""
    custom = sorted(set(_imported_names(exp_dir)) | set(_knowit_names(exp_dir)))
    return {"defaults": [n for n in builtin_names() if n not in custom], "custom": custom}


def load_dataset(name: str, exp_dir: str | Path) -> RawDataset:
    """The dataset called ``name``: an import in ``exp_dir`` wins over a built-in of that name."""
    kind, where = _locate(name, exp_dir)
    if kind == "imported":
        return _read_imported(where, str(name))
    if kind == "knowit":
        from knowit_app.data.knowit_format import read_knowit_dataset

        return read_knowit_dataset(exp_dir, str(name))  # a KnowIt experiment dir, read in place
    return bundled.load_builtin(str(name))


def dataset_fingerprint(name: str, exp_dir: str | Path) -> str:
    """The content hash of dataset ``name`` as it is now (see :func:`fingerprint`).

    An import is hashed from its arrays, not taken from its ``meta.json``: a file edited or
    damaged after the import must not pass for the data a model was trained on. The hash is
    kept per process while the arrays file keeps its size and modification time, so a sweep's
    runs and repeated loads pay it once. A built-in's is computed once per process.
    """
    kind, where = _locate(name, exp_dir)
    if kind == "imported":
        arrays = (where / ARRAYS_FILE).stat() if (where / ARRAYS_FILE).is_file() else None
        if arrays is None:  # reading it names the problem
            return fingerprint(_read_imported(where, str(name)))
        return _imported_fingerprint(str(where), str(name), arrays.st_mtime_ns, arrays.st_size)
    if kind == "builtin":
        return _builtin_fingerprint(str(name))
    return fingerprint(load_dataset(name, exp_dir))


def replaced_copy(name: str, exp_dir: str | Path, fp: str) -> Path | None:
    """The newest copy of dataset ``name`` with fingerprint ``fp`` that an import replaced
    (``custom_datasets/.replaced/<time>/<name>``), or None."""
    root = custom_datasets_dir(exp_dir) / REPLACED_DIR
    found = sorted(root.glob(f"*/{name}/{META_FILE}"), key=lambda p: p.parent.parent.name,
                   reverse=True) if root.is_dir() and NAME_PATTERN.match(name) else []
    for meta_file in found:
        try:
            if read_meta(meta_file.parent).get("fingerprint") == fp:
                return meta_file.parent
        except (OSError, ValueError, AttributeError):
            continue
    return None


@lru_cache(maxsize=16)
def _imported_fingerprint(directory: str, name: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # part of the cache key only: a rewritten file is hashed again
    return fingerprint(_read_imported(Path(directory), name))


@lru_cache(maxsize=len(bundled.BUILTIN_NAMES))
def _builtin_fingerprint(name: str) -> str:
    return fingerprint(bundled.load_builtin(name))


def _read_imported(directory: Path, name: str) -> RawDataset:
    try:
        return read_dataset(directory)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            "data.name", f"imported dataset {name!r} cannot be read ({exc}); import it again"
        ) from exc


def _locate(name: str, exp_dir: str | Path) -> tuple[str, Path]:
    """Where dataset ``name`` comes from: ("imported" | "knowit" | "builtin", its path)."""
    name = str(name)
    if NAME_PATTERN.match(name):
        custom = custom_datasets_dir(exp_dir) / name
        if (custom / META_FILE).is_file():
            return "imported", custom
        from knowit_app.data.knowit_format import META_SUFFIX

        if (custom_datasets_dir(exp_dir) / f"{name}{META_SUFFIX}").is_file():
            return "knowit", custom
        if name in bundled.BUILTIN_NAMES:
            return "builtin", Path(name)
    available = builtin_names() + [n for n in _imported_names(exp_dir) if n not in builtin_names()]
    raise ConfigError("data.name", f"unknown dataset {name!r}; available: {', '.join(available)}")


def list_datasets(exp_dir: str | Path) -> list[dict[str, Any]]:
    """One summary per dataset visible from ``exp_dir``, for an info command."""
    imported = _imported_names(exp_dir)
    rows = []
    for name in builtin_names():
        if name in imported:
            continue
        ds = bundled.load_builtin(name)
        rows.append(_summary(_meta_of(ds, bundled.ORIGIN), name, "builtin"))
    for name in imported:
        rows.append(_summary(read_meta(custom_datasets_dir(exp_dir) / name), name, "imported"))
    return rows


def _summary(meta: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": source,
        "components": list(meta["components"]),
        "instances": int(meta["instances"]),
        "slices": int(meta["slices"]),
        "rows": int(meta["rows"]),
        "time_delta": float(meta["time_delta"]),
    }
