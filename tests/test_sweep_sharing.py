"""Several sweeper processes share one offline sweep through its state on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import checkpoints
from polling import wait_until

pytestmark = pytest.mark.slow

ARGS = ["-m", "model_name=shared", "sweep.name=grid6", "arch.dropout=0.0,0.1,0.2",
        "trainer.learning_rate=0.001,0.01", "data.limit=5", "arch.width=16",
        "trainer.max_epochs=2", "trainer.num_threads=1",
        "hydra.sweeper.parallel=1"]  # three sweepers, one run each at a time
GRID = {f"dropout_{d}-learning_rate_{lr}" for d in ("0.0", "0.1", "0.2")
        for lr in ("0.001", "0.01")}


def start(cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "knowit_app", *ARGS], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_three_processes_finish_the_grid_once_even_if_one_is_killed(tmp_path):
    procs = [start(tmp_path) for _ in range(3)]
    state_path = tmp_path / "outputs/models/shared/sweeps/grid6/sweep_state.json"
    victim = procs[0]

    def victim_claimed_a_run() -> bool:
        try:
            owners = json.loads(state_path.read_text())["owners"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            owners = {}
        return any(o["pid"] == victim.pid for o in owners.values())

    # Kill the first process once it is training a run.
    wait_until(victim_claimed_a_run, 300, "the first process to claim a run",
               failed=lambda: "the first process ended" if victim.poll() is not None else None)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    outputs = [p.communicate(timeout=600)[0] for p in procs[1:]]
    assert all(p.returncode == 0 for p in procs[1:]), outputs
    state = json.loads(state_path.read_text())
    names = [r["name"] for r in state["runs"]]
    assert sorted(names) == sorted(GRID)  # every grid point once, none twice
    assert all(r["state"] == "finished" for r in state["runs"])
    sweep_dir = state_path.parent
    for name in GRID:
        assert len(checkpoints(sweep_dir / name)) == 1
    # The killed process's run was picked up by a survivor.
    assert any("rerunning interrupted run" in out for out in outputs)
