"""Every path of the experiment directory, in one place (KnowIt's layout).

```
<exp_dir>/
  custom_datasets/<dataset>/              imported datasets
  models/<model>/                         a trained (or consolidated) model:
      bestmodel-epoch=N-valid_loss=M.ckpt
      model_args.yaml
      lightning_logs/version_0/metrics.csv
      run_result.json                     small summary read by consolidation and reports
      sweeps/<sweep>/<run>/               one sweep run, same files as a model
  models/.staging/<model>-<time>/         a training in progress (moved into place at the end)
```
"""

from __future__ import annotations

import re
from pathlib import Path

from knowit_app.errors import ConfigError

CHECKPOINT_PREFIX = "bestmodel"
MODEL_ARGS_FILE = "model_args.yaml"
LOGS_DIR = "lightning_logs"
RESULT_FILE = "run_result.json"
ERROR_FILE = "error.txt"  # a failed run's traceback
CONSOLIDATED_FILE = "consolidated_from.json"
HYDRA_DIR = ".hydra"
REPLACED_DIR = ".replaced"

# Entries of a model directory that belong to the trained model itself (not its sweeps).
PREDICTIONS_DIR = "predictions"
SWEEP_CONFIG_FILE = "sweep_config.yaml"  # the resolved W&B sweep config of a sweep dir
MODEL_ENTRY_PATTERNS = (f"{CHECKPOINT_PREFIX}*.ckpt", MODEL_ARGS_FILE, LOGS_DIR, RESULT_FILE,
                        CONSOLIDATED_FILE, HYDRA_DIR, PREDICTIONS_DIR, "*.log")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=,+-]*$")


def check_name(key: str, name: str) -> str:
    """Refuse names that would escape the experiment directory or hide as dot-files."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or len(name) > 200:
        raise ConfigError(key, f"{name!r} is not a usable directory name; use letters, digits "
                               "and _ . = , + - (not starting with . or -)")
    return name


class ExperimentLayout:
    """Paths under one experiment directory; creates nothing by itself."""

    def __init__(self, exp_dir: str | Path) -> None:
        self.root = Path(exp_dir).expanduser().resolve()

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def staging_dir(self) -> Path:
        return self.models_dir / ".staging"

    @property
    def custom_datasets_dir(self) -> Path:
        return self.root / "custom_datasets"

    def model_dir(self, model_name: str) -> Path:
        return self.models_dir / check_name("model_name", model_name)

    def sweeps_dir(self, model_name: str) -> Path:
        return self.model_dir(model_name) / "sweeps"

    def sweep_dir(self, model_name: str, sweep_name: str) -> Path:
        return self.sweeps_dir(model_name) / check_name("sweep.name", sweep_name)

    def run_dir(self, model_name: str, sweep_name: str, run_name: str) -> Path:
        return self.sweep_dir(model_name, sweep_name) / check_name("run_name", run_name)


def find_checkpoint(model_dir: Path) -> Path | None:
    """The best-model checkpoint of a model or run directory (newest if several)."""
    found = sorted(Path(model_dir).glob(f"{CHECKPOINT_PREFIX}*.ckpt"),
                   key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def model_entries(model_dir: Path) -> list[Path]:
    """The files of the trained model held directly in a model directory (sweeps excluded)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    seen: dict[Path, None] = {}
    for pattern in MODEL_ENTRY_PATTERNS:
        for path in sorted(model_dir.glob(pattern)):
            seen[path] = None
    return list(seen)


def holds_model(model_dir: Path) -> bool:
    """Whether a model directory already holds a trained model that training would replace."""
    return any(p.name != HYDRA_DIR and not p.name.endswith(".log")
               for p in model_entries(model_dir))
