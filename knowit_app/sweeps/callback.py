"""The Hydra callback that consolidates a sweep when it ends.

Hydra calls ``on_multirun_end`` in the launching process after the sweeper returns, whatever
the launcher. Imports stay light: Hydra instantiates callbacks for every run, sweep or not.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("knowit_app.sweep")


class ConsolidateSweep(Callback):
    """Copies the best run of the sweep that just ended into its model directory."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from knowit_app.sweeps.state import CONFIG_FILE

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not self.enabled or not (sweep_dir / CONFIG_FILE).exists():
            return  # not a sweep of ours (e.g. hydra/sweeper=basic)
        from knowit_app.consolidate import consolidate_sweep
        from knowit_app.errors import KnowitError

        try:
            result = consolidate_sweep(config.exp_dir, config.model_name, sweep_dir.name)
        except KnowitError as exc:
            log.warning("no consolidation: %s", exc)
            return
        log.info("consolidated run %s (%s=%.5g) into %s", result.run, result.monitor,
                 result.score, result.model_dir)
        if result.replaced is not None:
            log.warning("the model that was in %s is kept in %s", result.model_dir,
                        result.replaced)
