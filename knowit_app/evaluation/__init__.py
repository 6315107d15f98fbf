"""Score a trained model on its splits and write its predictions (KnowIt's evaluation step).

Importing this package is cheap: torch, Lightning and matplotlib load only when a function runs,
so the sweep callback and the command line can import it freely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knowit_app.evaluation.predictions import PredictionResult, write_predictions
    from knowit_app.evaluation.scores import EvalResult, evaluate_model

__all__ = ["EvalResult", "PredictionResult", "evaluate_model", "write_predictions"]

_WHERE = {
    "EvalResult": "scores",
    "evaluate_model": "scores",
    "PredictionResult": "predictions",
    "write_predictions": "predictions",
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
