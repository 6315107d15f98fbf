"""The Sweeper class Hydra instantiates; it hands the work to knowit_app.sweeps.driver."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.knowit_wandb_sweeper.config import WandbSweeperConf


class WandbSweeper(Sweeper):
    """Sweeps with W&B: a W&B server's controller, or W&B's `sweeps` engine offline."""

    def __init__(self, **options: Any) -> None:
        # Hydra checked the options against WandbSweeperConf; the driver gets them typed.
        self.options = WandbSweeperConf(**options)
        self.driver: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from knowit_app.sweeps.driver import SweepDriver

        self.driver = SweepDriver(self.options)
        self.driver.setup(hydra_context=hydra_context, task_function=task_function,
                          config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from hydra.errors import CompactHydraException

        from knowit_app.config.paths import StartRefused
        from knowit_app.errors import ConfigError, KnowitError

        try:
            return self.driver.sweep(arguments)
        except ConfigError as exc:
            # knowit_app.app.main prints it as one line and exits 2, as for a single training.
            raise StartRefused(exc) from None
        except KnowitError as exc:
            # Hydra prints a CompactHydraException as its message alone: one clear line.
            raise CompactHydraException(f"error: {exc}") from None
