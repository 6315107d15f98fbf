"""The sweeper's options, registered as ``hydra/sweeper: wandb``."""


from dataclasses import dataclass
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class WandbSweeperConf:
    """``hydra.sweeper.*``, the one typed form of the sweeper's options, end to end.

    Hydra checks a user's options against this schema; the sweeper builds one of these from
    them and hands it to :class:`knowit_app.sweeps.driver.SweepDriver`.
    """

    _target_: str = "hydra_plugins.knowit_wandb_sweeper.wandb_sweeper.WandbSweeper"
    # New runs this invocation (null: until the search ends; random/bayes need it or run_cap).
    count: Optional[int] = None
    # Runs at once. auto: with the in-process launcher, one worker process per usable core
    # (each one torch thread); with other launchers (submitit, Slurm), 1. A number: that many
    # (worker processes, or one launcher batch of that many jobs). 1: one run after another.
    parallel: Any = "auto"
    # Full output (W&B's run lines, Hydra's launch lines, each training's epochs) on the
    # console; otherwise one line per run start and end and the sweep's progress.
    verbose: bool = False
    # auto (online when W&B credentials exist), offline (local `sweeps` engine), online.
    mode: str = "auto"
    # Search method when parameters come from Hydra's grammar (grid, random, bayes).
    method: Optional[str] = None
    # Seeds the local engine: the same seed gives the same sequence of runs.
    seed: int = 0
    project: Optional[str] = None
    entity: Optional[str] = None
    # Continue an existing W&B server sweep instead of creating one.
    sweep_id: Optional[str] = None
    # Stop the sweep once more than this share of its finished runs failed (after 3 runs).
    max_failure_rate: float = 0.5
    # Hydra-grammar parameters given in a config file, like the Optuna sweeper's `params`.
    params: Optional[Dict[str, Any]] = None
    # A running run whose owner on another host has not beaten for this long is rerun.
    stale_after_min: float = 30.0


ConfigStore.instance().store(group="hydra/sweeper", name="wandb", node=WandbSweeperConf,
                             provider="knowit-app")
