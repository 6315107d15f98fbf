"""A model directory's model: published from staging, replaced atomically, never lost.

Training writes into a private staging directory (``models/.staging/``), so a crash, a kill or
a refused start never leaves a half-written model where a finished one was expected;
:func:`publish` then swaps the staged model in. Consolidation swaps in a sweep run's model the
same way. A model that is replaced is never deleted: its files move to
``models/<model>/.replaced/<time>/`` and the caller says so.

A model is several files (checkpoint, ``model_args.yaml``, ``lightning_logs/``, ...), and no
single rename replaces several files. So a swap is a short sequence of renames driven by a
journal, ``<model_dir>/.swap.json``, written atomically before the first rename and deleted after
the last:

1. journal ``staging`` (names the source), then the new model's directory is renamed to
   ``<model_dir>/.incoming-<id>/``;
2. journal ``swapping`` (the plan: which old entries move to which ``.replaced/<time>/``, which
   new entries move in): the commit point;
3. every old entry is renamed into the backup, then every new entry into the model directory;
4. ``.incoming-<id>/`` is removed, then the journal.

:func:`recover` finishes an interrupted swap: before the commit point it puts the new model back
where it came from (or, if the rename already happened, carries on), after it rolls forward. Each
of its steps is idempotent, so a kill during recovery is recovered too. A reader therefore sees
the old model or the new one, never a mix, and an old model is never deleted.

The old model is every entry of the model directory except ``sweeps/`` and dot-entries (but
``.hydra/`` is a model file), plus any entry the new model brings a namesake of: after a swap the
directory holds the new model's entries exactly. ``sweeps/``, ``.replaced/`` and this module's
own dot-entries never move.

Swaps, recoveries and callers building a new model in :func:`new_staging_dir` serialise on the
experiment's one lock (``<model_dir>/.swap.lock``, :func:`knowit_app.experiment.io.locked`), so
two processes, on one host or on several sharing a file system, never interleave their renames.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from knowit_app.errors import KnowitError, ModelExistsError
from knowit_app.experiment import io
from knowit_app.experiment.io import fsync_dir, is_temporary
from knowit_app.experiment.layout import (
    INCOMING_PREFIX,
    REPLACED_DIR,
    SWAP_JOURNAL,
    SWAP_LOCK,
    SWAP_STAGING_PREFIX,
    SWEEPS_DIR,
    holds_model,
    model_entries,
)

log = logging.getLogger(__name__)

JOURNAL = SWAP_JOURNAL
LOCK_FILE = SWAP_LOCK
STAGING_PREFIX = SWAP_STAGING_PREFIX

# Entries of a model directory that are never part of the model: they never move and a new
# model may not bring them.
_RESERVED = (SWEEPS_DIR, REPLACED_DIR, JOURNAL, LOCK_FILE)

# Test hook: called with a step number before each step of a swap or recovery, so that a test
# can kill the process at every step. None in normal use.
step_hook: Callable[[int, str], None] | None = None
_steps = 0


def _step(what: str) -> None:
    global _steps
    _steps += 1
    if step_hook is not None:
        step_hook(_steps, what)


# --- locking and the journal -----------------------------------------------------------

@contextmanager
def locked(model_dir: Path) -> Iterator[Path]:
    """Hold the model directory's swap lock (re-entrant within a process); create the dir."""
    model_dir = Path(model_dir).resolve()
    model_dir.mkdir(parents=True, exist_ok=True)
    with io.locked(model_dir / LOCK_FILE):
        yield model_dir


def _write_journal(model_dir: Path, data: dict[str, Any]) -> None:
    """Replace the journal atomically: a reader sees the previous version or this one."""
    text = json.dumps(data, indent=2)
    io.replace_atomically(model_dir / JOURNAL, lambda tmp: tmp.write_text(text),
                          before_replace=lambda: _step(f"install journal {data['state']}"))


def _read_journal(model_dir: Path) -> dict[str, Any] | None:
    try:
        text = (model_dir / JOURNAL).read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:  # only os.replace writes it: this is outside damage
        raise KnowitError(f"{model_dir / JOURNAL} is damaged ({exc}); an interrupted model swap "
                          f"cannot be finished: inspect {model_dir} by hand") from exc


# --- the swap ------------------------------------------------------------------------------

def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _is_reserved(name: str) -> bool:
    return (name in _RESERVED or name.startswith(INCOMING_PREFIX)
            or name.startswith(STAGING_PREFIX) or is_temporary(name, JOURNAL))


def _old_entries(model_dir: Path, new_names: list[str]) -> list[str]:
    """The entries that make up the current model: everything but sweeps and dot-entries.

    Dot-entries are kept unless they are model files (``.hydra``) or a new model brings an
    entry of the same name, so that after a swap the directory holds the new model exactly.
    """
    names = {p.name for p in model_entries(model_dir)}
    for entry in os.scandir(model_dir):
        if not entry.name.startswith(".") or entry.name in new_names:
            names.add(entry.name)
    return sorted(n for n in names if not _is_reserved(n))


def _backup_name(model_dir: Path) -> str:
    """A fresh ``.replaced/<time>`` name (suffixed when several swaps share one second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name, n = stamp, 1
    while (model_dir / REPLACED_DIR / name).exists():
        n += 1
        name = f"{stamp}-{n}"
    return f"{REPLACED_DIR}/{name}"


def new_staging_dir(model_dir: Path) -> Path:
    """A scratch directory inside ``model_dir`` to build a new model in, for :func:`swap_in`.

    Use it only while holding :func:`locked`: :func:`recover` deletes leftovers of builds that
    were killed, which it can tell apart from live ones only because builders hold the lock.
    """
    path = Path(model_dir) / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    return path


def swap_in(model_dir: Path, staged_dir: Path) -> Path | None:
    """Make ``staged_dir``'s entries the model of ``model_dir``; return where the old one went.

    ``staged_dir`` is consumed (renamed into the model directory), so it must lie on the same
    file system. The old model's entries move to ``<model_dir>/.replaced/<time>/``, which is
    returned; None when there was no old model.
    """
    model_dir, staged_dir = Path(model_dir).resolve(), Path(staged_dir).resolve()
    if staged_dir == model_dir or staged_dir in model_dir.parents:
        raise KnowitError(f"cannot swap {staged_dir} into {model_dir}: it contains it")
    if not staged_dir.is_dir():
        raise KnowitError(f"cannot swap in {staged_dir}: not a directory")
    new_names = sorted(os.listdir(staged_dir))
    if not new_names:
        raise KnowitError(f"cannot swap in {staged_dir}: it is empty")
    bad = [n for n in new_names if _is_reserved(n)]
    if bad:
        raise KnowitError(f"cannot swap in {staged_dir}: it holds {', '.join(bad)}, which "
                          "belong to the model directory, not to a model")
    with locked(model_dir):
        _recover_locked(model_dir, keep=staged_dir)
        incoming = f"{INCOMING_PREFIX}{uuid.uuid4().hex[:12]}"
        _step("journal staging")
        _write_journal(model_dir, {"state": "staging", "source": str(staged_dir),
                                   "incoming": incoming})
        _step("rename staged dir to incoming")
        try:
            os.replace(staged_dir, model_dir / incoming)
        except OSError as exc:
            _recover_locked(model_dir, keep=staged_dir)  # source untouched: drops the journal
            if exc.errno == errno.EXDEV:
                raise KnowitError(f"cannot swap in {staged_dir}: it is on another file system "
                                  f"than {model_dir}") from exc
            raise
        return _commit(model_dir, incoming)


def _commit(model_dir: Path, incoming: str) -> Path | None:
    """Write the plan (the commit point), then carry it out."""
    new_names = sorted(os.listdir(model_dir / incoming))
    old_names = _old_entries(model_dir, new_names)
    plan = {"state": "swapping", "incoming": incoming, "new": new_names, "old": old_names,
            "backup": _backup_name(model_dir) if old_names else None}
    _step("journal swapping")
    _write_journal(model_dir, plan)
    return _roll_forward(model_dir, plan)


def _roll_forward(model_dir: Path, plan: dict[str, Any]) -> Path | None:
    """Finish a committed swap; every step checks what is already done, so it can repeat."""
    incoming = model_dir / plan["incoming"]
    backup = model_dir / plan["backup"] if plan["backup"] else None
    if backup is not None:
        if not backup.is_dir():
            _step("make backup dir")
            backup.mkdir(parents=True, exist_ok=True)
        for name in plan["old"]:
            # A new entry moves in only after every old one is out, so an entry still in
            # place whose backup copy is missing is the old one.
            if not _lexists(backup / name) and _lexists(model_dir / name):
                _step(f"move old {name}")
                os.replace(model_dir / name, backup / name)
    for name in plan["new"]:
        if _lexists(incoming / name):
            if _lexists(model_dir / name):
                raise KnowitError(f"interrupted model swap in {model_dir}: {name} appeared "
                                  "there after the swap began; move it away and retry")
            _step(f"move new {name}")
            os.replace(incoming / name, model_dir / name)
    if incoming.exists():
        _step("remove incoming dir")
        incoming.rmdir()
    fsync_dir(model_dir)
    _step("remove journal")
    (model_dir / JOURNAL).unlink(missing_ok=True)
    fsync_dir(model_dir)
    return backup


def _roll_back_staging(model_dir: Path, plan: dict[str, Any]) -> Path | None:
    """Recover a swap killed before its commit point.

    The old model has not been touched. If the new model's directory was already renamed into
    the model directory the swap carries on (that rename is atomic, so it is complete);
    otherwise it never left its source and there is nothing to undo.
    """
    incoming = model_dir / plan["incoming"]
    source = Path(plan["source"])
    if incoming.is_dir() and not source.exists():
        return _commit(model_dir, plan["incoming"])
    _step("remove journal")
    (model_dir / JOURNAL).unlink(missing_ok=True)
    fsync_dir(model_dir)
    return None


def _recover_locked(model_dir: Path, keep: Path | None = None) -> Path | None:
    """Recovery proper; the caller holds the lock. ``keep``: a staging dir that is live."""
    for entry in os.scandir(model_dir):
        if is_temporary(entry.name, JOURNAL):  # a journal write a kill interrupted
            Path(entry.path).unlink(missing_ok=True)
        elif (entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False)
                and Path(entry.path) != keep):
            shutil.rmtree(entry.path)  # a build killed before its swap began
    plan = _read_journal(model_dir)
    if plan is None:
        return None
    if plan.get("state") == "staging":
        return _roll_back_staging(model_dir, plan)
    return _roll_forward(model_dir, plan)


def _needs_recovery(model_dir: Path) -> bool:
    try:
        names = os.listdir(model_dir)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return any(n == JOURNAL or is_temporary(n, JOURNAL) or n.startswith(STAGING_PREFIX)
               for n in names)


def recover(model_dir: Path) -> Path | None:
    """Finish a swap a kill interrupted in ``model_dir``; return where its old model went.

    Cheap when there is nothing to do (one directory listing, no lock, no file written), so
    readers may call it before reading a model. Returns None when no swap was pending or the
    pending one had not reached its commit point.
    """
    model_dir = Path(model_dir).resolve()
    if not _needs_recovery(model_dir):
        return None
    with locked(model_dir):
        return _recover_locked(model_dir)


# --- publishing a training ---------------------------------------------------------------

def refuse_existing(model_dir: Path, overwrite: bool) -> None:
    """Raise before any work when training would replace a model the user did not offer."""
    recover(model_dir)  # an interrupted swap decides which model the directory holds
    if holds_model(model_dir) and not overwrite:
        raise ModelExistsError(
            f"model_name: {model_dir} already holds a trained model; choose another "
            "model_name or pass overwrite=true (the old model is kept under .replaced/)")


def publish(staged: Path, model_dir: Path, overwrite: bool) -> Path | None:
    """Move ``staged``'s contents into ``model_dir``; return where a replaced model went."""
    staged, model_dir = Path(staged), Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    with locked(model_dir):  # the check and the swap as one step against other publishers
        refuse_existing(model_dir, overwrite)
        kept = swap_in(model_dir, staged)
    if kept is not None:
        log.warning("replaced the model in %s; the old one is kept in %s", model_dir, kept)
    return kept


def discard_staging(staged: Path, staging_root: Path) -> None:
    """Remove a staging directory left by a refused start, and parents it made empty."""
    staged = Path(staged)
    if staging_root not in staged.parents:
        return
    shutil.rmtree(staged, ignore_errors=True)
    for parent in (staging_root, staging_root.parent, staging_root.parent.parent):
        try:
            parent.rmdir()
        except OSError:
            break

