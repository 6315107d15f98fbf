"""Move a finished training from its staging directory into ``models/<model>/``.

Training writes into a private staging directory, so a crash, a kill or a refused start never
leaves a half-written model where a finished one was expected. Publishing hands the staged
directory to :mod:`knowit_app.experiment.model_dir`, which swaps it in atomically: a kill at any
instant leaves
the old model or the new one, never a mix. A model that is replaced is never deleted: its files
move to ``models/<model>/.replaced/<time>/`` and the caller says so.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from knowit_app.errors import ModelExistsError
from knowit_app.experiment.layout import holds_model
from knowit_app.experiment.model_dir import locked, recover, swap_in

log = logging.getLogger(__name__)


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

