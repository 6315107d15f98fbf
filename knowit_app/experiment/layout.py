"""Every path of the experiment directory, in one place (KnowIt's layout).

```
<exp_dir>/
  custom_datasets/<dataset>/              imported datasets
  models/<model>/                         a trained (or consolidated) model:
      bestmodel-epoch=N-valid_loss=M.ckpt
      model_args.yaml
      lightning_logs/version_0/metrics.csv
      run_result.json                     small summary read by consolidation and reports
      consolidated_from.json              which sweep run a consolidated model came from
      .replaced/<time>/                   models a swap replaced (never deleted)
      .swap.json, .swap.lock              the model swap's journal and lock
      sweeps/<sweep>/                     one sweep:
          sweep_config.yaml               the resolved W&B sweep config
          sweep_state.json, .sweep.lock   every run's state (shared by sweepers) and its lock
          <run>/                          one sweep run, same files as a model, plus error.txt
          .interrupted/<run>-<time>/      partial files of a run that was rerun
          worker-<n>.log                  output of local sweep worker n
  models/.staging/<model>-<time>/         a training in progress (moved into place at the end)
```

Every file name of the experiment directory is spelled here and nowhere else.
"""

from __future__ import annotations

import re
from pathlib import Path

from knowit_app.errors import ConfigError

MODELS_DIR = "models"
STAGING_DIR = ".staging"
CHECKPOINT_PREFIX = "bestmodel"
MODEL_ARGS_FILE = "model_args.yaml"
LOGS_DIR = "lightning_logs"
METRICS_FILE = "metrics.csv"  # Lightning's CSVLogger, in LOGS_DIR/version_<n>/
METRICS_GLOB = f"{LOGS_DIR}/version_*/{METRICS_FILE}"
EVALUATION_DIR = "evaluation"  # LOGS_DIR/EVALUATION_DIR/METRICS_FILE: knowit-app-eval's scores
RESULT_FILE = "run_result.json"
ERROR_FILE = "error.txt"  # a failed run's traceback
CONSOLIDATED_FILE = "consolidated_from.json"
HYDRA_DIR = ".hydra"
REPLACED_DIR = ".replaced"
PREDICTIONS_DIR = "predictions"
INTERPRETATIONS_DIR = "interpretations"  # knowit-app-interpret: arrays + their description
VISUALIZATIONS_DIR = "visualizations"  # pictures of the interpretations

# The model swap's own entries (experiment/model_swap.py).
SWAP_JOURNAL = ".swap.json"
SWAP_LOCK = ".swap.lock"
INCOMING_PREFIX = ".incoming-"
SWAP_STAGING_PREFIX = ".staging-"

# A sweep directory.
SWEEPS_DIR = "sweeps"
SWEEP_CONFIG_FILE = "sweep_config.yaml"  # the resolved W&B sweep config of a sweep dir
SWEEP_STATE_FILE = "sweep_state.json"
SWEEP_LOCK = ".sweep.lock"
INTERRUPTED_DIR = ".interrupted"
WORKER_LOG = "worker-{n}.log"  # a local sweep worker's stdout and stderr

# Entries of a model directory that belong to the trained model itself (not its sweeps).
MODEL_ENTRY_PATTERNS = (f"{CHECKPOINT_PREFIX}*.ckpt", MODEL_ARGS_FILE, LOGS_DIR, RESULT_FILE,
                        CONSOLIDATED_FILE, HYDRA_DIR, PREDICTIONS_DIR, INTERPRETATIONS_DIR,
                        VISUALIZATIONS_DIR, "*.log")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=,+-]*$")


MAX_NAME_LENGTH = 200  # well under the 255 bytes a file name may have, leaving room for suffixes


def check_name(key: str, name: str) -> str:
    """Refuse names that would escape the experiment directory or hide as dot-files."""
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        raise ConfigError(key, f"{len(name)} characters is too long for a directory name; "
                               f"use at most {MAX_NAME_LENGTH}")
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise ConfigError(key, f"{name!r} is not a usable directory name; use letters, digits "
                               "and _ . = , + - (not starting with . or -)")
    return name


class ExperimentLayout:
    """Paths under one experiment directory; creates nothing by itself."""

    def __init__(self, exp_dir: str | Path) -> None:
        self.root = Path(exp_dir).expanduser().resolve()

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def staging_dir(self) -> Path:
        return self.models_dir / STAGING_DIR

    def model_dir(self, model_name: str) -> Path:
        return self.models_dir / check_name("model_name", model_name)

    def sweeps_dir(self, model_name: str) -> Path:
        return self.model_dir(model_name) / SWEEPS_DIR

    def sweep_dir(self, model_name: str, sweep_name: str) -> Path:
        return self.sweeps_dir(model_name) / check_name("sweep.name", sweep_name)

    def run_dir(self, model_name: str, sweep_name: str, run_name: str) -> Path:
        return self.sweep_dir(model_name, sweep_name) / check_name("run_name", run_name)


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


def named_dirs(parent: Path) -> list[str]:
    """Sorted names of ``parent``'s subdirectories that a user names (models, sweeps, runs).

    The app's own dot-directories (``.staging``, ``.replaced``, ``.interrupted``) are left out;
    a missing ``parent`` has none. What "no such model/sweep/run" errors list as choices.
    """
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
