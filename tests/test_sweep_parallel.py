"""A sweep on one machine uses every core by default: worker processes share the sweep.

Real sweeps (`python -m knowit_app -m ...`), tiny trainings. On a machine with at least two
usable cores the default (``hydra.sweeper.parallel=auto``) runs two or more runs at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
from helpers import checkpoints, run_cli
from polling import wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")]

GRID4 = ["arch.dropout=0.0,0.1", "trainer.learning_rate=0.001,0.01"]
NAMES4 = {f"dropout_{d}-learning_rate_{lr}" for d in ("0.0", "0.1") for lr in ("0.001", "0.01")}
TINY = ["data.limit=2", "arch.width=16", "trainer.max_epochs=1"]


def runs_of(sweep_dir: Path) -> list[dict]:
    return json.loads((sweep_dir / "sweep_state.json").read_text())["runs"]


def overlapping(runs: list[dict]) -> bool:
    """Whether two runs were training at the same time (their start-end intervals cross)."""
    return any(a["started"] < b["ended"] and b["started"] < a["ended"]
               for a, b in combinations(runs, 2))


def test_default_runs_in_parallel_with_one_count_and_quiet_output(tmp_path):
    proc = run_cli(["-m", "model_name=p", "sweep.name=g4", *GRID4, *TINY,
                    "hydra.sweeper.count=3"], cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sweep_dir = tmp_path / "outputs/models/p/sweeps/g4"
    runs = runs_of(sweep_dir)
    assert len(runs) == 3  # count is one budget for every worker of the invocation
    assert all(r["state"] == "finished" for r in runs)
    assert overlapping(runs)
    assert (sweep_dir / "worker-1.log").exists() and (sweep_dir / "worker-2.log").exists()
    out = proc.stdout + proc.stderr
    lines = out.splitlines()
    for run in runs:  # one line when a run starts and one when it ends, with its score
        assert f"start {run['name']}" in lines
        assert any(line.startswith(f"done  {run['name']}: valid_loss=") for line in lines)
    assert any(line.startswith("[3/3] best valid_loss=") for line in lines)
    assert any(line.startswith("[1/3] ") and "left" in line for line in lines)
    sync = [line for line in lines if "wandb sync" in line]
    assert sync == [f"W&B offline runs: {sweep_dir / 'wandb'}; upload them with: "
                    f"wandb sync {sweep_dir / 'wandb'}/offline-run-*"]
    assert len(list((sweep_dir / "wandb").glob("offline-run-*"))) == 3
    assert "wandb:" not in out and "Launching" not in out and "epoch 1/1" not in out
    # The run's own log keeps what the console no longer shows.
    app_log = (sweep_dir / runs[0]["name"] / "app.log").read_text()
    assert "epoch 1/1" in app_log


def sweep_with_a_killed_worker(tmp_path: Path, model: str,
                               extra: list[str]) -> tuple[int, str, Path]:
    """Start a 4-point grid, SIGKILL one worker as soon as it owns a run, let the sweep end.

    Returns the sweep's exit status, its output and its sweep dir.
    """
    args = ["-m", f"model_name={model}", "sweep.name=g4", *GRID4, "data.limit=2",
            "arch.width=16", "trainer.max_epochs=3", *extra]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "knowit_app", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    state_path = tmp_path / f"outputs/models/{model}/sweeps/g4/sweep_state.json"

    def a_worker_pid() -> int | None:
        try:
            owners = json.loads(state_path.read_text())["owners"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None
        pids = [o["pid"] for o in owners.values() if o["pid"] != proc.pid]
        return pids[0] if pids else None

    try:
        wait_until(lambda: a_worker_pid() is not None, 300, "a worker to claim a run",
                   failed=lambda: "the sweep ended" if proc.poll() is not None else None)
        os.kill(a_worker_pid(), signal.SIGKILL)
        out = proc.communicate(timeout=900)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out, state_path.parent


def test_a_grid_ends_with_exactly_its_points_and_a_killed_worker_is_replaced(tmp_path):
    code, out, sweep_dir = sweep_with_a_killed_worker(tmp_path, "k", [])
    assert code == 0, out[-4000:]
    runs = runs_of(sweep_dir)
    assert sorted(r["name"] for r in runs) == sorted(NAMES4)  # each grid point once
    assert all(r["state"] == "finished" for r in runs)
    for name in NAMES4:
        assert len(checkpoints(sweep_dir / name)) == 1
    assert "was killed" in out


def test_parallel_1_runs_one_after_another_in_the_sweeper(tmp_path):
    proc = run_cli(["-m", "model_name=s", "sweep.name=g2", "arch.dropout=0.0,0.1", *TINY,
                    "hydra.sweeper.parallel=1", "hydra.sweeper.verbose=true"],
                   cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sweep_dir = tmp_path / "outputs/models/s/sweeps/g2"
    runs = runs_of(sweep_dir)
    assert len(runs) == 2 and all(r["state"] == "finished" for r in runs)
    assert not overlapping(runs)
    assert not list(sweep_dir.glob("worker-*.log"))
    out = proc.stdout + proc.stderr
    assert "[2/2] best valid_loss=" in out
    # verbose: W&B's own lines and each training's epochs are shown as well
    assert "wandb:" in out and "epoch 1/1" in out


def test_a_bad_parallel_is_one_line_before_any_work(tmp_path):
    proc = run_cli(["-m", "model_name=b", *GRID4, "hydra.sweeper.parallel=lots"],
                   cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert "hydra.sweeper.parallel" in proc.stderr and "auto" in proc.stderr
    assert not (tmp_path / "outputs/models/b").exists()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_sweeper_stops_its_workers(tmp_path, sig):
    """`kill <sweeper>` (or kill -9) must not leave workers training on with nobody to
    consolidate: they stop, and their runs are rerun when the sweep is resumed."""
    args = ["-m", "model_name=o", "sweep.name=g4", *GRID4, "data.limit=2", "arch.width=16",
            "trainer.max_epochs=50"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "knowit_app", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = tmp_path / "outputs/models/o/sweeps/g4/sweep_state.json"

    def worker_pids() -> list[int]:
        try:
            owners = json.loads(state_path.read_text())["owners"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return []
        return [o["pid"] for o in owners.values() if o["pid"] != proc.pid]

    try:
        workers = wait_until(worker_pids, 300, "a worker to claim a run",
                             failed=lambda: "the sweep ended" if proc.poll() is not None
                             else None)
        os.kill(proc.pid, sig)
        proc.wait(timeout=120)
        wait_until(lambda: not any(_alive(pid) for pid in workers), 120,
                   f"the workers {workers} to stop after the sweeper got signal {sig}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in worker_pids():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_workers_rerun_does_not_spend_the_count_twice(tmp_path):
    """count=3 with a worker killed mid-run still gives three distinct runs, all finished."""
    code, out, sweep_dir = sweep_with_a_killed_worker(tmp_path, "c", ["hydra.sweeper.count=3"])
    assert code == 0, out[-4000:]
    runs = runs_of(sweep_dir)
    assert len(runs) == 3 and all(r["state"] == "finished" for r in runs), runs
    assert "was killed" in out
