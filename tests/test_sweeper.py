"""The W&B sweeper end to end: real Hydra multirun, real `sweeps` engine, real offline W&B runs.

Each sweep here runs `python -m knowit_app -m ...` as a user would, on 5 instances of synth_2
with a narrow MLP and one epoch per run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import TUTORIAL_RUN_NAME, check_tutorial_runs, checkpoints, run_cli
from polling import wait_until

TINY = ["data.limit=5", "arch.width=16", "trainer.max_epochs=1"]
RUN_NAME = TUTORIAL_RUN_NAME


def state_of(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep_state.json").read_text())


def runs_by_name(sweep_dir: Path) -> dict[str, dict]:
    return {r["name"]: r for r in state_of(sweep_dir)["runs"]}


@pytest.fixture(scope="module")
def tutorial_sweep(tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep")
    proc = run_cli(["-m", "sweep=tutorial_grid", "model_name=some_sweeped_model",
                    "hydra.sweeper.count=4", *TINY], cwd=work, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    model_dir = work / "outputs/models/some_sweeped_model"
    return model_dir, model_dir / "sweeps/my_sweep_name", proc


@pytest.mark.slow
def test_runs_land_in_the_sweep_layout(tutorial_sweep):
    _, sweep_dir, _ = tutorial_sweep
    check_tutorial_runs(sweep_dir, 4)


@pytest.mark.slow
def test_sweep_record_and_state(tutorial_sweep):
    _, sweep_dir, proc = tutorial_sweep
    record = yaml.safe_load((sweep_dir / "sweep_config.yaml").read_text())
    assert record["method"] == "grid" and record["metric"]["name"] == "valid_loss"
    runs = runs_by_name(sweep_dir)
    assert len(runs) == 4
    for run in runs.values():
        assert run["state"] == "finished"
        assert isinstance(run["score"], float)
        assert run["ended"] >= run["started"]
        assert any(o.startswith("trainer.learning_rate=") for o in run["overrides"])
        assert run["history"], run  # one valid_loss per epoch
        assert min(run["history"]) == pytest.approx(run["score"])  # the best epoch's, minimized
    best = min(runs.values(), key=lambda r: r["score"])
    assert best["name"] in proc.stderr + proc.stdout  # the best-runs table


@pytest.mark.slow
def test_every_run_is_a_wandb_offline_run(tutorial_sweep):
    _, sweep_dir, _ = tutorial_sweep
    offline = sorted((sweep_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 4
    names = {p.name for p in sweep_dir.iterdir() if RUN_NAME.match(p.name)}
    seen = set()
    for run in offline:
        data = next(run.glob("*.wandb")).read_bytes()
        seen |= {n for n in names if n.encode() in data}
        assert b"my_sweep_name" in data  # grouped by sweep
        assert b"valid_loss" in data and b"epoch" in data
    assert seen == names


@pytest.mark.slow
def test_best_run_is_consolidated(tutorial_sweep):
    model_dir, sweep_dir, proc = tutorial_sweep
    runs = runs_by_name(sweep_dir)
    best = min(runs.values(), key=lambda r: r["score"])
    ckpt = checkpoints(model_dir)
    assert len(ckpt) == 1
    assert ckpt[0].read_bytes() == checkpoints(sweep_dir / best["name"])[0].read_bytes()
    assert (model_dir / "model_args.yaml").read_bytes() == \
        (sweep_dir / best["name"] / "model_args.yaml").read_bytes()
    assert (model_dir / "lightning_logs/version_0/metrics.csv").is_file()
    assert f"consolidated run {best['name']}" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_resume_continues_the_grid_without_rerunning(tutorial_sweep, tmp_path):
    model_dir, sweep_dir, _ = tutorial_sweep
    before = {n: checkpoints(sweep_dir / n)[0].stat().st_mtime for n in runs_by_name(sweep_dir)}
    work = model_dir.parents[2]
    proc = run_cli(["-m", "sweep=tutorial_grid", "model_name=some_sweeped_model",
                    "hydra.sweeper.count=2", *TINY], cwd=work, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = runs_by_name(sweep_dir)
    assert len(runs) == 6 and all(r["state"] == "finished" for r in runs.values())
    for name, mtime in before.items():
        assert checkpoints(sweep_dir / name)[0].stat().st_mtime == mtime


@pytest.mark.slow
def test_kill_and_resume_finishes_exactly_the_grid(tmp_path):
    """kill -9 mid-run; the same command again reruns the interrupted run, keeps the rest."""
    args = ["-m", "model_name=k", "sweep.name=grid4", "arch.dropout=0.0,0.1",
            "trainer.learning_rate=0.001,0.01", "data.limit=5", "arch.width=16",
            "trainer.max_epochs=3"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "knowit_app", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sweep_dir = tmp_path / "outputs/models/k/sweeps/grid4"

    def one_done_one_running() -> bool:
        try:
            states = [r["state"] for r in state_of(sweep_dir)["runs"]]
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return "finished" in states and "running" in states

    try:
        wait_until(one_done_one_running, 300, "one run finished and one running",
                   failed=lambda: "the sweep ended" if proc.poll() is not None else None)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = runs_by_name(sweep_dir)
    finished = {n for n, r in first.items() if r["state"] == "finished"}
    interrupted = {n for n, r in first.items() if r["state"] == "running"}
    mtimes = {n: checkpoints(sweep_dir / n)[0].stat().st_mtime for n in finished}

    again = run_cli(args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-4000:]
    runs = runs_by_name(sweep_dir)
    assert sorted(runs) == sorted({f"dropout_{d}-learning_rate_{lr}" for d in ("0.0", "0.1")
                                   for lr in ("0.001", "0.01")})
    assert all(r["state"] == "finished" for r in runs.values())
    for name in finished:
        assert checkpoints(sweep_dir / name)[0].stat().st_mtime == mtimes[name]
    for name in interrupted:
        assert len(checkpoints(sweep_dir / name)) == 1
    assert checkpoints(tmp_path / "outputs/models/k")


@pytest.mark.slow
def test_failed_runs_are_recorded_and_never_win(tmp_path):
    """batch_size 0 passes the first-value check but fails in its job: recorded, not fatal."""
    proc = run_cli(["-m", "model_name=f", "sweep.name=fails", "data.batch_size=64,0,128",
                    "hydra.sweeper.max_failure_rate=0.9", *TINY], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sweep_dir = tmp_path / "outputs/models/f/sweeps/fails"
    runs = runs_by_name(sweep_dir)
    assert {r["state"] for r in runs.values()} == {"finished", "failed"}
    failed = runs["batch_size_0"]
    assert failed["state"] == "failed" and "data.batch_size" in failed["error"]
    assert "Traceback" in (sweep_dir / "batch_size_0" / "error.txt").read_text()
    model_args = yaml.safe_load((tmp_path / "outputs/models/f/model_args.yaml").read_text())
    assert model_args["data"]["batch_size"] in (64, 128)


@pytest.mark.slow
def test_max_failure_rate_stops_a_failing_sweep(tmp_path):
    proc = run_cli(["-m", "model_name=f", "sweep.name=bad", "data.batch_size=64,0,-1,-2,-3",
                    "hydra.sweeper.max_failure_rate=0.5", "hydra.sweeper.parallel=1", *TINY],
                   cwd=tmp_path, timeout=600)  # one at a time: the runs end in grid order
    assert proc.returncode != 0
    assert "max_failure_rate" in proc.stderr
    runs = runs_by_name(tmp_path / "outputs/models/f/sweeps/bad")
    assert len(runs) == 3  # 64 ok, 0 and -1 failed: 2 of 3 > 50%, so -2 and -3 never start


@pytest.mark.slow
def test_hydra_grammar_with_group_choices_and_seeded_random(tmp_path):
    def sweep(name: str) -> dict[str, dict]:
        proc = run_cli(["-m", "model_name=g", f"sweep.name={name}",
                        "hydra.sweeper.method=random", "hydra.sweeper.seed=5",
                        "hydra.sweeper.count=3", "arch.dropout=choice(0.0,0.2,0.5)",
                        "trainer.learning_rate=tag(log,interval(1e-4,1e-1))",
                        "data.batch_size=64,128", "arch=mlp,cnn", "data.limit=5",
                        "trainer.max_epochs=1",
                        "hydra.callbacks.consolidate.enabled=false"],
                       cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return runs_by_name(tmp_path / f"outputs/models/g/sweeps/{name}")

    first, second = sweep("r1"), sweep("r2")
    assert [r["params"] for r in first.values()] == [r["params"] for r in second.values()]
    for run in first.values():
        p = run["params"]
        assert p["arch"] in ("mlp", "cnn") and f"arch={p['arch']}" in run["overrides"]
        assert 1e-4 <= p["trainer.learning_rate"] <= 1e-1
        assert p["arch.dropout"] in (0.0, 0.2, 0.5) and p["data.batch_size"] in (64, 128)
        assert run["state"] == "finished"
        assert run["name"].startswith("arch_")


@pytest.mark.parametrize("sweep_text, key", [
    ("method: grid\nmetric: {name: valid_loss, goal: minimize}\nparameters:\n"
     "  arch.dropout: {values: []}\n", "arch.dropout"),
    ("method: random\nmetric: {name: valid_loss, goal: minimize}\nrun_cap: 2\nparameters:\n"
     "  trainer.learning_rate: {distribution: uniform, min: 0.1, max: 0.01}\n",
     "trainer.learning_rate"),
    ("method: grid\nmetric: {name: valid_loss, goal: lowest}\nparameters:\n"
     "  arch.dropout: {values: [0.1]}\n", "goal"),
    ("method: grid\nmetric: {name: valid_loss, goal: minimize}\nparameters:\n"
     "  arch.dropuot: {values: [0.1]}\n", "arch.dropuot"),
    ("method: grid\nmetrics: {name: valid_loss}\nparameters:\n"
     "  arch.dropout: {values: [0.1]}\n", "metrics"),
])
def test_bad_sweep_files_start_nothing(tmp_path, sweep_text, key):
    conf = tmp_path / "my_conf" / "sweep"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text("name: mine\n" + sweep_text)
    proc = run_cli(["-m", "model_name=v", "sweep=mine",
                    f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", *TINY], cwd=tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and key in lines[0], proc.stderr[-3000:]
    assert not (tmp_path / "outputs/models/v/sweeps").exists()
