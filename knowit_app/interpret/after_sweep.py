"""Interpret the consolidated model at the end of a sweep, without ever failing the sweep."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("knowit_app.sweep")


def interpret_safely(model_dir: Path, method: str) -> Path | None:
    """Interpret ``model_dir`` with ``method`` and KnowIt's other defaults; a failure is a
    warning (the model itself is in place; run knowit-app-interpret later)."""
    try:
        from knowit_app.interpret.options import make_options
        from knowit_app.interpret.run import interpret_model

        result = interpret_model(model_dir, make_options(method))
    except Exception as exc:  # the sweep's models are kept whatever happens here
        text = str(exc).strip().splitlines()
        log.warning("no interpretation: %s%s (run knowit-app-interpret later)",
                    type(exc).__name__, f": {text[0]}" if text else "")
        return None
    log.info("interpretation of %s: %s; pictures in %s", model_dir, result.npz_path,
             result.pictures[0].parent if result.pictures else "-")
    return result.npz_path
