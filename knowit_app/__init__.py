"""knowit-app: KnowIt-style time-series training from Hydra configs, with W&B sweeps.

``from knowit_app import KnowIt`` gives the Python API; it is imported lazily so that the
command line starts without loading torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["KnowIt", "load_trained_model", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "KnowIt":
        from knowit_app.api import KnowIt

        return KnowIt
    if name == "load_trained_model":
        from knowit_app.evaluation.trained_model import load_trained_model

        return load_trained_model
    raise AttributeError(f"module 'knowit_app' has no attribute {name!r}")
