"""Datasets on disk: one directory per dataset, written atomically, found by name.

Layout of a dataset directory: ``meta.json`` (name, components, time_delta, instance names,
counts, format version, origin) and ``arrays.npz`` (values, times, slice bounds). A directory is
built under a temporary name next to its final place and renamed in one step, so readers never
see half a dataset. The built-ins (KnowIt's synth_2 and synth_c) are read from the package
itself (:mod:`knowit_app.data.bundled`) and never copied anywhere.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from knowit_app.data import bundled
from knowit_app.data.dataset import RawDataset
from knowit_app.errors import ConfigError

FORMAT_VERSION = 1
META_FILE = "meta.json"
ARRAYS_FILE = "arrays.npz"
_ARRAY_KEYS = ("values", "times", "slice_starts", "slice_ends", "slice_instance")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def builtin_names() -> list[str]:
    """KnowIt's example datasets shipped in the package (see :mod:`knowit_app.data.bundled`)."""
    return sorted(bundled.BUILTIN_NAMES)


def custom_datasets_dir(exp_dir: str | Path) -> Path:
    """Imported datasets belong to an experiment directory, next to the models trained on them."""
    return Path(exp_dir) / "custom_datasets"


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
    }


def save_dataset(ds: RawDataset, directory: str | Path, *, replace: bool = True,
                 origin: str = "imported") -> Path:
    """Write ``ds`` into ``directory`` atomically and return the directory.

    With ``replace=False`` an existing directory is left alone and FileExistsError is raised:
    the caller decides whether someone else's complete copy is good enough.
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
        _publish(tmp, directory, replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _publish(tmp: Path, directory: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``directory``; an old copy is moved aside first, and back on failure."""
    aside = None
    if replace and directory.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
        os.replace(directory, aside / "d")
    try:
        os.rename(tmp, directory)
    except OSError as exc:
        if aside is not None and not directory.exists():
            os.replace(aside / "d", directory)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "dataset already exists", str(directory)) from exc
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


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


def load_dataset(name: str, exp_dir: str | Path) -> RawDataset:
    """The dataset called ``name``: an import in ``exp_dir`` wins over a built-in of that name."""
    name = str(name)
    if NAME_PATTERN.match(name):
        custom = custom_datasets_dir(exp_dir) / name
        if (custom / META_FILE).is_file():
            try:
                return read_dataset(custom)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise ConfigError(
                    "data.name",
                    f"imported dataset {name!r} cannot be read ({exc}); import it again",
                ) from exc
        if (custom_datasets_dir(exp_dir) / f"{name}_meta.pickle").is_file():
            from knowit_app.data.knowit_format import read_knowit_dataset

            return read_knowit_dataset(exp_dir, name)  # a KnowIt experiment dir, read in place
        if name in bundled.BUILTIN_NAMES:
            return bundled.load_builtin(name)
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
