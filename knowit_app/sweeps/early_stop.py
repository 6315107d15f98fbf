"""Hyperband early termination inside a running job, decided by W&B's ``sweeps`` engine.

After each epoch the job compares its metric history with the other runs' histories from the
sweep's state file (shared on disk, so this works in any launcher) and stops if hyperband says
so. The run is then recorded as ``stopped``, not failed: its checkpoint is a valid model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from knowit_app.experiment.layout import SWEEP_CONFIG_FILE
from knowit_app.sweeps.engine import LocalEngine, RunRecord
from knowit_app.sweeps.spec import SweepSpec
from knowit_app.sweeps.state import SweepState


def spec_from_record(raw: dict[str, Any]) -> SweepSpec:
    """Rebuild a (validated before) sweep spec from ``sweep_config.yaml``."""
    metric = raw.get("metric") or {}
    return SweepSpec(name=raw["name"], method=raw["method"], metric_name=metric["name"],
                     goal=metric.get("goal", "minimize"), target=metric.get("target"),
                     parameters=raw["parameters"], run_cap=raw.get("run_cap"),
                     early_terminate=raw.get("early_terminate"), raw=raw)


class HyperbandStopper(L.Callback):
    """Stops this run early when hyperband puts it below its band's threshold."""

    def __init__(self, sweep_dir: Path, run_name: str, spec: SweepSpec) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.run_name = run_name
        self.spec = spec
        self.history: list[float] = []
        self.stopped = False

    @classmethod
    def for_run(cls, run_dir: Path) -> HyperbandStopper | None:
        """A stopper if the run's sweep asks for early termination, else None."""
        record = Path(run_dir).parent / SWEEP_CONFIG_FILE
        if not record.exists():
            return None
        raw = yaml.safe_load(record.read_text()) or {}
        if not raw.get("early_terminate"):
            return None
        return cls(Path(run_dir).parent, Path(run_dir).name, spec_from_record(raw))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.spec.metric_name)
        if value is None or not math.isfinite(float(value)):
            return
        self.history.append(float(value))
        records = SweepState(self.sweep_dir).records()
        others = [r for r in records if r.name != self.run_name]
        params = next((r.params for r in records if r.name == self.run_name), {})
        current = RunRecord(name=self.run_name, params=params, state="running", score=None,
                            history=list(self.history), overrides=[], started=None,
                            ended=None, error=None)
        if LocalEngine(self.spec, 0).should_stop_early(others, current):
            trainer.should_stop = True
            self.stopped = True
