"""A job killed mid-training (preemption, Slurm time limit) resumes from its last epoch."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap

import pytest
from helpers import checkpoints

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import os, sys
    import lightning as L
    from knowit_app.api import compose_config
    from knowit_app.training.run import execute, plan_training

    class DieAtEpoch(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == int(sys.argv[2]):
                os._exit(9)  # as abrupt as a SIGKILL: no cleanup runs

    cfg = compose_config([f"exp_dir={sys.argv[1]}/exp", "data.limit=5", "arch.width=16",
                          "trainer.max_epochs=4"])
    die = [DieAtEpoch()] if int(sys.argv[2]) >= 0 else []
    result = execute(plan_training(cfg), sys.argv[1] + "/run", callbacks=die)
    print("EPOCHS", result.epochs)
""")


def epochs_logged(run_dir, version):
    path = run_dir / "lightning_logs" / f"version_{version}" / "metrics.csv"
    with open(path) as fh:
        return sorted({int(r["epoch"]) for r in csv.DictReader(fh) if r.get("valid_loss")})


def test_killed_training_resumes_from_its_last_epoch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    killed = subprocess.run([sys.executable, str(script), str(tmp_path), "2"],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr[-2000:]
    run_dir = tmp_path / "run"
    assert epochs_logged(run_dir, 0) == [0, 1]
    assert (run_dir / ".resume" / "last.ckpt").is_file()

    again = subprocess.run([sys.executable, str(script), str(tmp_path), "-1"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "EPOCHS 4" in again.stdout
    assert epochs_logged(run_dir, 1) == [2, 3]  # epochs 0 and 1 were not trained again
    assert not (run_dir / ".resume").exists()
    assert len(checkpoints(run_dir)) == 1
