"""The Hydra callback that consolidates a sweep and writes its report when it ends.

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
    """Copies the best run of the sweep that just ended into its model directory, then writes
    the sweep's offline report (``<sweep>/report/``).

    ``report=false`` skips the report; ``evaluate=true`` also scores the consolidated model on
    train, valid and eval (``lightning_logs/evaluation/metrics.csv``), as ``knowit-app-eval``;
    ``interpret=<method>`` also interprets it with KnowIt's defaults (knowit_app.interpret).
    """

    def __init__(self, enabled: bool = True, report: bool = True,
                 evaluate: bool = False, interpret: str | None = None) -> None:
        from knowit_app.interpret.options import check_method

        self.enabled = enabled
        self.report = report
        self.evaluate = evaluate
        self.interpret = (check_method(interpret, "hydra.callbacks.consolidate.interpret")
                          if interpret else None)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from knowit_app.experiment.layout import SWEEP_CONFIG_FILE

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not (sweep_dir / SWEEP_CONFIG_FILE).exists():
            return  # not a sweep of ours (e.g. hydra/sweeper=basic)
        try:
            if self.enabled:
                self._consolidate(config, sweep_dir)
        finally:  # the report shows the sweep whatever consolidation made of it
            if self.report:
                write_report_safely(sweep_dir)

    def _consolidate(self, config: DictConfig, sweep_dir: Path) -> None:
        from knowit_app.errors import KnowitError
        from knowit_app.experiment.consolidate import consolidate_sweep

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
        if self.evaluate:
            evaluate_safely(result.model_dir)
        if self.interpret:
            from knowit_app.interpret.after_sweep import interpret_safely

            interpret_safely(result.model_dir, self.interpret)


def write_report_safely(sweep_dir: Path) -> Path | None:
    """Write the sweep's report; a failure is a warning, never a failed sweep."""
    try:
        from knowit_app.report import write_report

        index = write_report(sweep_dir)
    except Exception as exc:  # the runs are done and kept whatever happens to the report
        text = str(exc).strip().splitlines()
        log.warning("no sweep report: %s%s (write it later with knowit-app-report)",
                    type(exc).__name__, f": {text[0]}" if text else "")
        return None
    log.info("sweep report: %s", index)
    return index


def evaluate_safely(model_dir: Path) -> None:
    """Score the consolidated model; a failure is a warning (the model itself is in place)."""
    try:
        from knowit_app.evaluation.scores import evaluate_model, format_metrics

        result = evaluate_model(model_dir)
    except Exception as exc:
        log.warning("no evaluation: %s: %s (run knowit-app-eval later)", type(exc).__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        return
    log.info("evaluation of %s (%s):\n%s", model_dir, result.csv_path,
             format_metrics(result.metrics))
