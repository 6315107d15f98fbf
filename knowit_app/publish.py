"""Move a finished training from its staging directory into ``models/<model>/``.

Training writes into a private staging directory, so a crash, a kill or a refused start never
leaves a half-written model where a finished one was expected. Publishing is a handful of
renames on one file system. A model that is replaced is never deleted: its files move to
``models/<model>/.replaced/<time>/`` and the caller says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from knowit_app.errors import ModelExistsError
from knowit_app.layout import REPLACED_DIR, holds_model, model_entries

log = logging.getLogger(__name__)


def refuse_existing(model_dir: Path, overwrite: bool) -> None:
    """Raise before any work when training would replace a model the user did not offer."""
    if holds_model(model_dir) and not overwrite:
        raise ModelExistsError(
            f"model_name: {model_dir} already holds a trained model; choose another "
            "model_name or pass overwrite=true (the old model is kept under .replaced/)")


def publish(staged: Path, model_dir: Path, overwrite: bool) -> Path | None:
    """Move ``staged``'s contents into ``model_dir``; return where a replaced model went."""
    staged, model_dir = Path(staged), Path(model_dir)
    refuse_existing(model_dir, overwrite)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    if not model_dir.exists():
        os.replace(staged, model_dir)
        return None
    kept = None
    old = model_entries(model_dir)
    if old:
        kept = model_dir / REPLACED_DIR / time.strftime("%Y%m%d-%H%M%S")
        kept.mkdir(parents=True, exist_ok=False)
        for entry in old:
            os.replace(entry, kept / entry.name)
        log.warning("replaced the model in %s; the old one is kept in %s", model_dir, kept)
    for entry in sorted(staged.iterdir()):
        os.replace(entry, model_dir / entry.name)
    staged.rmdir()
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
