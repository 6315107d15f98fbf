"""Shared helpers for tests: run the real console scripts, list a model directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# Small and fast, but the real thing: 5 of synth_2's instances (3 train, 1 valid, 1 eval),
# a narrow MLP, one or two epochs.
FAST = ["data.limit=5", "arch.width=32", "trainer.max_epochs=2"]
CKPT_NAME = re.compile(r"^bestmodel-epoch=(\d+)-valid_loss=(\d+\.\d\d)\.ckpt$")


def run_cli(args: list[str], cwd: Path, module: str = "knowit_app",
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> <args>`` the way a user runs the console script."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def checkpoints(model_dir: Path) -> list[Path]:
    return sorted(Path(model_dir).glob("bestmodel-*.ckpt"))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes: to show that nothing changed."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


# One short epoch of a narrow MLP on 5 instances: for tests of what comes after training.
QUICK = ["data.limit=5", "arch.width=32", "trainer.max_epochs=1", "data.batch_size=256"]


def train_in_process(exp: Path, name: str, *overrides: str) -> Path:
    """Train ``models/<name>`` in ``exp`` through the app's own core; return its directory."""
    from knowit_app.api import compose_config
    from knowit_app.experiment.layout import ExperimentLayout
    from knowit_app.training.run import execute, plan_training

    cfg = compose_config([f"exp_dir={exp}", f"model_name={name}", *QUICK, *overrides])
    model_dir = ExperimentLayout(exp).model_dir(name)
    execute(plan_training(cfg), model_dir)
    return model_dir


# The KnowIt W&B sweep tutorial's grid, with its bare parameter names, as the tutorial writes it.
TUTORIAL_SWEEP = {
    "name": "my_sweep_name",
    "method": "grid",
    "metric": {"goal": "minimize", "name": "valid_loss"},
    "parameters": {
        "dropout": {"values": [0.0, 0.2, 0.5]},
        "batch_size": {"values": [64, 128, 256]},
        "learning_rate": {"values": [0.001, 0.01, 0.1]},
    },
}


# A run of the tutorial grid, named from its swept values.
TUTORIAL_RUN_NAME = re.compile(r"^batch_size_(64|128|256)-dropout_(0\.0|0\.2|0\.5)-"
                               r"learning_rate_(0\.001|0\.01|0\.1)$")
SWEEP_ENTRIES_NOT_RUNS = ("wandb", "report")


def run_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of a sweep (not its W&B files, its report or hidden entries)."""
    return sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir()
                  and not p.name.startswith(".") and p.name not in SWEEP_ENTRIES_NOT_RUNS)


def check_tutorial_runs(sweep_dir: Path, count: int) -> None:
    """``count`` tutorial-grid runs, each a complete model trained with its name's values."""
    import yaml

    runs = run_dirs(sweep_dir)
    assert len(runs) == count, [r.name for r in runs]
    for run in runs:
        match = TUTORIAL_RUN_NAME.match(run.name)
        assert match, run.name
        assert len(checkpoints(run)) == 1
        assert (run / "lightning_logs/version_0/metrics.csv").is_file()
        args = yaml.safe_load((run / "model_args.yaml").read_text())
        bs, dropout, lr = match.groups()
        assert args["data"]["batch_size"] == int(bs)
        assert args["arch"]["dropout"] == float(dropout)
        assert args["trainer"]["learning_rate"] == float(lr)


def write_metrics(run_dir: Path, rows: list[dict[str, float]], version: int = 0) -> Path:
    """``lightning_logs/version_<n>/metrics.csv`` written by Lightning's own CSVLogger.

    Each row is one ``log_metrics`` call and must hold ``epoch``; ``step`` defaults to it.
    """
    from lightning.pytorch.loggers import CSVLogger

    from knowit_app.experiment.layout import LOGS_DIR

    logger = CSVLogger(save_dir=str(run_dir), name=LOGS_DIR, version=version)
    for row in rows:
        logger.log_metrics(dict(row), step=int(row.get("step", row["epoch"])))
    logger.save()
    return Path(logger.log_dir) / "metrics.csv"


def toy_frame() -> pd.DataFrame:
    """3 instances x 40 steps of 1 s; i1 has a 1 h gap after 25 steps (so 4 slices).

    a, b, c inputs (c constant), y a regression target, label classes 0..2. NaNs: a in row 10
    of i0, y in row 20 and label in row 30 of i2.
    """
    rng = np.random.default_rng(0)
    parts = []
    for k, name in enumerate(["i0", "i1", "i2"]):
        secs = np.arange(40) + 1000 * k + 3600 * (np.arange(40) >= 25) * (name == "i1")
        a, b = rng.normal(size=40), rng.normal(size=40)
        part = pd.DataFrame({
            "time": pd.Timestamp("2024-01-01") + pd.to_timedelta(secs, unit="s"),
            "inst": name, "a": a, "b": b, "c": 5.0,
            "y": 2 * a + b + 3, "label": (a > 0).astype(float) + (b > 0),
        })
        parts.append(part)
    parts[0].loc[10, "a"] = np.nan
    parts[2].loc[20, "y"] = np.nan
    parts[2].loc[30, "label"] = np.nan
    return pd.concat(parts, ignore_index=True)


def toy_data_config(**kw):
    """A data config for the toy_frame() dataset (imported as 'toy'); keywords override."""
    base = dict(name="toy", in_components=["a", "b", "c"], out_components=["y"],
                in_chunk=[-6, 0], out_chunk=[0, 2], split_portions=[0.5, 0.25, 0.25],
                split_method="slice-chronological", limit=None, scaling_tag="full",
                scaling_method="z-norm", batch_size=8, padding_method="constant", seed=1)
    base.update(kw)
    return base
