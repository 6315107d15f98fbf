"""Hyperband early termination inside a running job, decided by W&B's ``sweeps`` engine.

After each epoch the job compares its metric history with the other runs' histories from the
sweep's state file (shared on disk, so this works in any launcher) and stops if hyperband says
so. The run is then recorded as ``stopped``, not failed: its checkpoint is a valid model.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from knowit_app.errors import KnowitError
from knowit_app.experiment.runs import RunState, read_sweep_config
from knowit_app.experiment.sweep_state import RunRecord, SweepState
from knowit_app.sweeps.engine import LocalEngine
from knowit_app.sweeps.spec import SweepSpec, load_spec

log = logging.getLogger("knowit_app.sweeps")


class HyperbandStopper(L.Callback):
    """Stops this run early when hyperband puts it below its band's threshold."""

    def __init__(self, sweep_dir: Path, run_name: str, spec: SweepSpec) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.run_name = run_name
        self.spec = spec
        self.history: list[float] = []
        self.stopped = False
        self.warned = False

    @classmethod
    def for_run(cls, run_dir: Path, cfg: DictConfig) -> HyperbandStopper | None:
        """A stopper if the run's sweep asks for early termination, else None.

        The sweep's recorded config is loaded by the same loader that checked it, against this
        run's config.
        """
        sweep_dir = Path(run_dir).parent
        raw = read_sweep_config(sweep_dir)
        if not raw.get("early_terminate"):
            return None
        spec = load_spec(raw, cfg, default_name=str(raw.get("name") or sweep_dir.name))
        return cls(sweep_dir, Path(run_dir).name, spec)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.spec.metric_name)
        if value is None or not math.isfinite(float(value)):
            return
        self.history.append(float(value))
        try:
            records = SweepState(self.sweep_dir).records()
        except KnowitError as exc:
            # The state file damaged (or unreadable) mid-sweep: the training itself is fine,
            # so it goes on, unjudged while the file stays bad (one warning per bad spell).
            # Starting the sweep again rebuilds the file from the run dirs.
            if not self.warned:
                log.warning("no early termination for run %s while the sweep state cannot be "
                            "read: %s", self.run_name, exc)
                self.warned = True
            return
        self.warned = False
        others = [r for r in records if r.name != self.run_name]
        params = next((r.params for r in records if r.name == self.run_name), {})
        current = RunRecord(name=self.run_name, params=params, state=RunState.RUNNING, score=None,
                            history=list(self.history), overrides=[], started=None,
                            ended=None, error=None)
        if LocalEngine(self.spec, 0).should_stop_early(others, current):
            trainer.should_stop = True
            self.stopped = True
