"""The ``knowit-app`` command: compose ``conf/`` with Hydra, then train one model.

Only Hydra and the config schemas are imported here, so ``knowit-app --help`` and config
composition stay fast; torch and Lightning load when a training actually starts.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from knowit_app.schema import register_schemas

register_schemas()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_task(cfg: DictConfig) -> float | None:
    from knowit_app.task import run_task

    return run_task(cfg)


def main() -> None:
    """Console-script entry point (``knowit-app``)."""
    _hydra_task()


if __name__ == "__main__":
    main()
