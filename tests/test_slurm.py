"""Sweeps on a real Slurm cluster: `knowit-app -m ... hydra/launcher=local_slurm`, end to end.

Needs the loopback cluster (scripts/slurm/install.sh && scripts/slurm/start.sh): skipped without
it, failed without it under CI=true (tests/slurm_utils.py). Each batch of `parallel` runs is one
job array; the jobs run on this machine's cores, one core each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from helpers import check_tutorial_runs, checkpoints, run_cli, run_dirs
from slurm_utils import array_tasks, cancel_jobs, task_pid, wait_for

pytestmark = pytest.mark.slow

TINY = ["data.limit=5", "arch.width=16", "trainer.max_epochs=1"]
ON_SLURM = ["hydra/launcher=local_slurm"]
SUBMITIT_LINE = re.compile(r"^submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\) - (.*)$")
SWEEP_TIMEOUT = 420  # a hung launcher fails the test instead of blocking CI


def state_of(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep_state.json").read_text())


def runs_by_name(sweep_dir: Path) -> dict[str, dict]:
    return {r["name"]: r for r in state_of(sweep_dir)["runs"]}


def job_intervals(sweep_dir: Path) -> dict[str, tuple[float, float]]:
    """Each finished Slurm task's [start, end] wall-clock time, from its submitit log."""
    intervals = {}
    for log in sorted((sweep_dir / ".submitit").glob("*/*_log.out")):
        start = end = None
        for line in log.read_text(errors="replace").splitlines():
            m = SUBMITIT_LINE.match(line)
            if not m:
                continue
            t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if m.group(2).startswith("Starting with"):
                start = t
            elif m.group(2).startswith("Exiting after"):
                end = t
        if start is not None and end is not None:
            intervals[log.parent.name] = (start, end)
    return intervals


def sweep_on_slurm(work: Path, model: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    ok = False
    try:
        proc = run_cli(["-m", f"model_name={model}", *ON_SLURM, *args], cwd=work,
                       timeout=SWEEP_TIMEOUT)
        ok = proc.returncode == 0
        return proc
    finally:
        if not ok:
            cancel_jobs(f"knowit-{model}")  # leave nothing queued behind a failed or hung sweep


# ---- (a) a 4-run sweep, 2 at a time ---------------------------------------------------------

@pytest.fixture(scope="module")
def slurm_sweep(slurm, tmp_path_factory):
    work = tmp_path_factory.mktemp("slurm_sweep")
    started = time.monotonic()
    proc = sweep_on_slurm(work, "some_sweeped_model", [
        "sweep=tutorial_grid", "hydra.sweeper.count=4", "hydra.sweeper.parallel=2",
        "data.limit=5", "arch.width=16", "trainer.max_epochs=3"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    model_dir = work / "outputs/models/some_sweeped_model"
    return model_dir, model_dir / "sweeps/my_sweep_name", proc, time.monotonic() - started


def test_slurm_runs_land_in_the_sweep_layout(slurm_sweep):
    _, sweep_dir, _, _ = slurm_sweep
    check_tutorial_runs(sweep_dir, 4)


def test_slurm_sweep_state_has_every_score(slurm_sweep):
    _, sweep_dir, _, _ = slurm_sweep
    runs = runs_by_name(sweep_dir)
    assert len(runs) == 4
    for run in runs.values():
        assert run["state"] == "finished", run
        assert isinstance(run["score"], float)
        assert run["error"] is None
        assert run["ended"] >= run["started"]
    assert not state_of(sweep_dir)["owners"]  # every claim was settled


def test_slurm_best_run_is_consolidated(slurm_sweep):
    model_dir, sweep_dir, proc, _ = slurm_sweep
    best = min(runs_by_name(sweep_dir).values(), key=lambda r: r["score"])
    ckpt = checkpoints(model_dir)
    assert len(ckpt) == 1
    assert ckpt[0].read_bytes() == checkpoints(sweep_dir / best["name"])[0].read_bytes()
    assert (model_dir / "model_args.yaml").read_bytes() == \
        (sweep_dir / best["name"] / "model_args.yaml").read_bytes()
    assert f"consolidated run {best['name']}" in proc.stderr + proc.stdout


def test_slurm_runs_two_jobs_at_once(slurm_sweep):
    """Two job arrays of two tasks; the tasks of an array ran at the same time.

    The intervals come from submitit's own log lines, written inside each job from its start to
    its exit. The trainings inside them last about a second and a half each, too short to
    overlap reliably once the two jobs' imports finish at different moments, so the test holds
    the jobs, not the trainings, to running at once.
    """
    _, sweep_dir, _, _ = slurm_sweep
    intervals = job_intervals(sweep_dir)
    arrays = {name.split("_")[0] for name in intervals}
    assert len(intervals) == 4 and len(arrays) == 2, intervals
    overlapping = [(a, b) for a in intervals for b in intervals if a < b
                   and intervals[a][0] < intervals[b][1] and intervals[b][0] < intervals[a][1]]
    assert overlapping, f"no two Slurm jobs ran at once: {intervals}"
    # The batches ran one after the other: the second started after the first had ended.
    first, second = sorted(arrays, key=int)
    assert min(s for k, (s, _) in intervals.items() if k.startswith(second + "_")) >= \
        max(e for k, (_, e) in intervals.items() if k.startswith(first + "_")) - 1


def test_slurm_job_logs_are_kept(slurm_sweep):
    _, sweep_dir, _, elapsed = slurm_sweep
    logs = sorted((sweep_dir / ".submitit").glob("*/*_log.err"))
    assert len(logs) == 4
    print(f"4-run sweep on Slurm, 2 at a time: {elapsed:.0f} s")


# ---- (b) a run that raises inside its job ---------------------------------------------------

@pytest.fixture(scope="module")
def failing_sweep(slurm, tmp_path_factory):
    """batch_size 0 passes the sweeper's up-front check (made with the first value, 64) and
    fails inside the job, on the node."""
    work = tmp_path_factory.mktemp("slurm_failing")
    proc = sweep_on_slurm(work, "bad", ["data.batch_size=64,0", "hydra.sweeper.parallel=2",
                                        *TINY])
    assert proc.returncode == 0, proc.stderr[-4000:]
    sweeps = [p for p in (work / "outputs/models/bad/sweeps").iterdir()
              if (p / "sweep_state.json").exists()]
    assert len(sweeps) == 1, sweeps
    return work, sweeps[0], proc


def test_slurm_failed_run_keeps_its_exception(failing_sweep):
    _, sweep_dir, _ = failing_sweep
    runs = runs_by_name(sweep_dir)
    assert set(runs) == {"batch_size_64", "batch_size_0"}
    assert runs["batch_size_64"]["state"] == "finished"
    assert isinstance(runs["batch_size_64"]["score"], float)
    bad = runs["batch_size_0"]
    assert bad["state"] == "failed" and bad["score"] is None
    assert "batch_size" in bad["error"] and "positive" in bad["error"], bad["error"]
    error_txt = (sweep_dir / "batch_size_0/error.txt").read_text()
    assert "Traceback" in error_txt and "batch_size" in error_txt


def test_slurm_job_logs_land_in_the_sweep_dir(failing_sweep):
    """Also for a sweep named by the sweeper (no sweep.name): logs sit next to its runs."""
    work, sweep_dir, _ = failing_sweep
    assert len(list((sweep_dir / ".submitit").glob("*/*_log.out"))) == 2
    strays = [p for p in (work / "outputs").rglob(".submitit")
              if p.parent != sweep_dir]
    assert not strays, f"submitit logs outside the sweep dir: {strays}"


# ---- (c) jobs killed while they train -------------------------------------------------------

def test_slurm_killed_jobs_are_recorded_failed(slurm_accounting, tmp_path):
    """scancel one training job (SIGTERM, then SIGKILL) and kill -9 another (as the OOM killer
    would): both runs are recorded failed, none is lost or counted finished, and the third run
    of the batch (queued until a core frees) finishes and is consolidated."""
    model = "killed"
    args = [sys.executable, "-m", "knowit_app", "-m", f"model_name={model}", "sweep.name=kill",
            *ON_SLURM, "trainer.max_epochs=400,401,1", "hydra.sweeper.parallel=3",
            "hydra.sweeper.max_failure_rate=1.0", "data.limit=5", "arch.width=16"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    log = tmp_path / "sweep.log"
    sweep_dir = tmp_path / f"outputs/models/{model}/sweeps/kill"
    long_runs = ("max_epochs_400", "max_epochs_401")
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def both_long_runs_train():
            try:
                names = [r["name"] for r in state_of(sweep_dir)["runs"]]
            except (FileNotFoundError, json.JSONDecodeError):
                return None
            tasks = array_tasks(f"knowit-{model}")  # task i runs the i-th claimed run
            if not all(n in names and (sweep_dir / n / "lightning_logs").is_dir()
                       and tasks.get(names.index(n), {}).get("state") == "RUNNING"
                       for n in long_runs):
                return None
            return {n: tasks[names.index(n)] for n in long_runs}

        jobs = wait_for(both_long_runs_train, 240, "both long runs to train", proc, log)

        def trained_an_epoch(name: str) -> bool:  # well inside training, past its setup
            app_log = sweep_dir / name / "app.log"
            return app_log.is_file() and "] - epoch 1/" in app_log.read_text(errors="replace")

        wait_for(lambda: all(trained_an_epoch(n) for n in long_runs), 240,
                 "both long runs to log an epoch", proc, log)
        cancel = subprocess.run(["scancel", jobs["max_epochs_400"]["array"]],
                                capture_output=True, text=True)
        assert cancel.returncode == 0 and not cancel.stderr.strip(), cancel.stderr
        pid = task_pid(jobs["max_epochs_401"]["job_id"])
        assert pid is not None, f"no task pid for job {jobs['max_epochs_401']}"
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=SWEEP_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        cancel_jobs(f"knowit-{model}")
    output = log.read_text()
    assert proc.returncode == 0, output[-4000:]

    runs = runs_by_name(sweep_dir)
    assert set(runs) == {*long_runs, "max_epochs_1"}  # none lost
    for name in long_runs:
        run = runs[name]
        assert run["state"] == "failed", run  # never finished, never left running
        assert run["score"] is None and run["error"], run
        assert (sweep_dir / name / "error.txt").is_file()
    assert runs["max_epochs_1"]["state"] == "finished"
    assert isinstance(runs["max_epochs_1"]["score"], float)
    assert not state_of(sweep_dir)["owners"]
    model_dir = tmp_path / f"outputs/models/{model}"
    assert checkpoints(model_dir)[0].read_bytes() == \
        checkpoints(sweep_dir / "max_epochs_1")[0].read_bytes()


# ---- (d) a user's own architecture, swept on the cluster ------------------------------------

def test_slurm_sweeps_a_custom_architecture(slurm, tmp_path):
    """The node finds the architecture in <exp_dir>/custom_archs/, not in the sweeper's cwd."""
    from test_custom_arch import TINY_ARCH

    from knowit_app import KnowIt, load_trained_model

    exp = tmp_path / "exp"
    source = tmp_path / "src" / "tiny_net.py"
    source.parent.mkdir()
    source.write_text(TINY_ARCH)
    KnowIt(exp).import_arch(str(source))
    source.unlink()  # only the imported copy is left for the jobs to load
    proc = sweep_on_slurm(tmp_path, "custom_on_slurm", [
        f"exp_dir={exp}", "sweep.name=s", "arch=custom", "arch.name=tiny_net",
        "+arch.arch_hps.width=3,7", "hydra.sweeper.parallel=2", "data.limit=5",
        "trainer.max_epochs=1"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    sweep_dir = exp / "models" / "custom_on_slurm" / "sweeps" / "s"
    assert {r["state"] for r in runs_by_name(sweep_dir).values()} == {"finished"}
    widths = sorted(load_trained_model(d).network.body[1].out_features
                    for d in run_dirs(sweep_dir))
    assert widths == [3, 7]
    assert list((sweep_dir / ".submitit").glob("*/*_log.out"))  # they ran as Slurm jobs
    rebuilt = load_trained_model(exp / "models" / "custom_on_slurm")  # consolidated
    assert rebuilt.network.body[1].out_features in (3, 7)
