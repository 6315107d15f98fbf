"""Shared helpers for tests: run the real console scripts, list a model directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
    from knowit_app.layout import ExperimentLayout
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
