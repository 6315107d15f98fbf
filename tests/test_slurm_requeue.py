"""A sweep run requeued on Slurm (time limit, preemption) resumes from its last epoch.

``hydra.launcher.max_num_timeout=1``: when Slurm warns a job with SIGUSR2 (``#SBATCH
--signal=USR2@<signal_delay_s>`` before its time limit, or on preemption), submitit calls the
launcher's ``checkpoint()``, runs ``scontrol requeue`` and exits the training; the requeued job
runs the same sweep job again in the same run dir, and the training resumes from
``.resume/last.ckpt``.

How the signal comes: the test sends it, ``scancel --signal=USR2 <job>`` (what submitit's own
``job._interrupt()`` does in its tests), once the training has logged a few epochs. Slurm
delivers it to the job step exactly as it delivers its time-limit warning, and submitit treats
it as a time-out (``timeout_min <= 10``: it then counts every USR2 as one; its log says "this
job is timed-out" and "0 remaining timeouts"), so every part of the requeue path is the real
one. The real time limit is not used because it cannot be tested reliably: slurmctld checks for
due warnings every 30 s, so the signal comes anywhere in the last ``signal_delay_s`` + 30 s, and
a requeued job gets the same time limit and warning again. The training would have to outlast
the first allocation yet fit in the second whatever the jitter and the machine's speed (a
window of about +-20 % of its length, for a test of 5-7 min). By hand it works (timeout_min=2,
signal_delay_s=60, 60 epochs: the warning came 46 s into the first allocation, epochs 0-28
then 29-59), but the second attempt's warning came half a second after its training had ended.
Sent by the test, the signal comes mid-training on any machine, and the test takes ~1 minute.

A requeued job may start again only once its job credential has expired: 10 s on the loopback
cluster (``AuthInfo=cred_expire=10`` in scripts/slurm/start.sh; Slurm's default is 120 s, which
only makes this test 2 minutes longer).

Needs the loopback cluster with accounting (tests/slurm_utils.py): skipped without it, failed
without it under CI=true.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import checkpoints
from polling import wait_until
from slurm_utils import cancel_jobs, wait_for

pytestmark = pytest.mark.slow

MODEL = "requeued"
JOB_NAME = f"knowit-{MODEL}"
EPOCHS = 15
SIGNAL_AFTER = 3  # epochs the first attempt has logged when the test sends the signal
RUN = f"max_epochs_{EPOCHS}"
SWEEP_TIMEOUT = 420  # a hung sweep fails the test instead of blocking CI
EPOCH_LINE = re.compile(r"\] - epoch (\d+)/(\d+): ")


def squeue_state(job_id: str | None = None) -> tuple[str, str] | None:
    """(job id, state) of our job, or None when Slurm no longer lists it."""
    proc = subprocess.run(["squeue", "-h", f"--name={JOB_NAME}", "-o", "%i %T"],
                          capture_output=True, text=True, timeout=20)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and (job_id is None or parts[0] == job_id):
            return parts[0], parts[1]
    return None


def epochs_logged(app_log: str) -> list[int]:
    """The 0-based epochs whose end a training logged (the app's 'epoch k/N' lines)."""
    return [int(m.group(1)) - 1 for m in EPOCH_LINE.finditer(app_log)]


def csv_epochs(run_dir: Path, version: int) -> list[int]:
    """The epochs a lightning_logs version validated, in order."""
    path = run_dir / "lightning_logs" / f"version_{version}" / "metrics.csv"
    with open(path) as fh:
        return [int(r["epoch"]) for r in csv.DictReader(fh) if r.get("valid_loss")]


def csv_valid_losses(run_dir: Path) -> dict[int, float]:
    """valid_loss per epoch over every version (the later attempt's value wins)."""
    losses: dict[int, float] = {}
    for path in sorted((run_dir / "lightning_logs").glob("version_*/metrics.csv")):
        with open(path) as fh:
            losses.update({int(r["epoch"]): float(r["valid_loss"])
                           for r in csv.DictReader(fh) if r.get("valid_loss")})
    return losses


def sacct_attempts(job_id: str) -> list[tuple[str, str]]:
    """(state, exit code) of each run of the job, requeued ones included (``sacct -D``)."""
    proc = subprocess.run(["sacct", "-j", job_id, "-D", "-X", "-n", "-P",
                           "-o", "JobID,State,ExitCode"], capture_output=True, text=True,
                          timeout=20)
    return [(p[1], p[2]) for p in (line.split("|") for line in proc.stdout.splitlines())
            if len(p) == 3 and p[0] == job_id]


def checkpointed_epoch(run_dir: Path) -> int | None:
    """1 + the epoch of the run's resume checkpoint; None while there is none (or half)."""
    import torch

    try:
        ckpt = torch.load(run_dir / ".resume" / "last.ckpt", map_location="cpu",
                          weights_only=False)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError):
        return None
    return int(ckpt["epoch"]) + 1


def test_requeued_run_resumes_from_its_last_epoch(slurm_accounting, tmp_path):
    args = [sys.executable, "-m", "knowit_app", "-m", f"model_name={MODEL}", "sweep.name=rq",
            "hydra/launcher=local_slurm", "hydra.launcher.timeout_min=10",
            "hydra.launcher.signal_delay_s=120", "hydra.launcher.max_num_timeout=1",
            "data.limit=5", "arch.width=16", f"trainer.max_epochs=choice({EPOCHS})"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    log = tmp_path / "sweep.log"
    sweep_dir = tmp_path / f"outputs/models/{MODEL}/sweeps/rq"
    run_dir = sweep_dir / RUN
    app_log = run_dir / "app.log"  # the job's log in its run dir, every attempt appended
    started = time.monotonic()
    ok = False
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def training_well_under_way():
            job = squeue_state()
            if job is None or job[1] != "RUNNING" or not app_log.is_file():
                return None
            done = epochs_logged(app_log.read_text(errors="replace"))
            return job[0] if len(done) >= SIGNAL_AFTER else None

        job_id = wait_for(training_well_under_way, 240, f"{SIGNAL_AFTER} epochs on Slurm",
                          proc, log)
        # Into the next epoch: past the checkpoint of the last epoch logged.
        wait_for(lambda: (checkpointed_epoch(run_dir) or 0) >= SIGNAL_AFTER, 120,
                 f"the checkpoint of epoch {SIGNAL_AFTER}", proc, log)
        signalled = time.monotonic()
        sent = subprocess.run(["scancel", "--signal=USR2", job_id], capture_output=True,
                              text=True, timeout=20)
        assert sent.returncode == 0 and not sent.stderr.strip(), sent.stderr

        # Requeued: pending again, the first attempt gone. Its last checkpoint is what the
        # second attempt must resume from.
        def requeued():
            job = squeue_state(job_id)
            gone = "Exiting gracefully after preemption/timeout" in app_log.read_text(
                errors="replace")
            return job is not None and job[1] == "PENDING" and gone

        wait_for(requeued, 120, "the job to be requeued", proc, log)
        pending = time.monotonic()
        import torch

        resume_ckpt = run_dir / ".resume" / "last.ckpt"
        assert resume_ckpt.is_file(), sorted(p.name for p in run_dir.iterdir())
        ckpt_epoch = int(torch.load(resume_ckpt, map_location="cpu",
                                    weights_only=False)["epoch"])
        assert ckpt_epoch >= SIGNAL_AFTER - 1

        wait_for(lambda: "resuming from" in app_log.read_text(errors="replace"), 240,
                 "the second attempt to resume", proc, log)
        resumed = time.monotonic()
        ok = proc.wait(timeout=SWEEP_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if not ok:  # a finished job may still be exiting: cancel only what a failure left
            cancel_jobs(JOB_NAME)
    ended = time.monotonic()
    output = log.read_text()
    assert proc.returncode == 0, output[-4000:]

    # -- Slurm and submitit: one job, run twice ---------------------------------------------
    submission = (sweep_dir / ".submitit" / job_id / f"{job_id}_submission.sh").read_text()
    assert "#SBATCH --signal=USR2@120" in submission  # the time limit's warning: the same signal
    assert "#SBATCH --time=10" in submission
    # The job may still be exiting when its result is in; slurmdbd records the end later.
    def both_attempts_recorded():
        attempts = sacct_attempts(job_id)
        return attempts if [s for s, _ in attempts] == ["REQUEUED", "COMPLETED"] else None

    attempts = wait_until(both_attempts_recorded, 60, "slurmdbd to record a REQUEUED and a "
                          f"COMPLETED attempt of job {job_id}", interval=1)
    assert attempts[-1][1] == "0:0", attempts
    job_log = (sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    runs_logged = re.split(r"^submitit INFO \([^)]*\) - Starting with JobEnvironment",
                           job_log, flags=re.M)[1:]
    assert len(runs_logged) == 2, job_log[-4000:]
    first, second = runs_logged
    assert "Caught signal SIGUSR2" in first and "this job is timed-out" in first
    assert f"Requeued job {job_id} (0 remaining timeouts)" in first
    assert "resuming from" not in first
    assert f"resuming from {run_dir.resolve() / '.resume' / 'last.ckpt'}" in second
    assert "Caught signal" not in second and "Exiting after successful completion" in second

    # -- the training: the second attempt went on after the checkpointed epoch ---------------
    attempt_logs = app_log.read_text().split(" - resuming from ")
    assert len(attempt_logs) == 2
    before, after = (epochs_logged(text) for text in attempt_logs)
    # The first attempt trained epochs 0..ckpt_epoch (and, if the signal came between an
    # epoch's log line and its checkpoint, one more that is trained again).
    assert before[:ckpt_epoch + 1] == list(range(ckpt_epoch + 1)), before
    assert len(before) <= ckpt_epoch + 2, before
    assert after == list(range(ckpt_epoch + 1, EPOCHS)), after
    # Lightning validates (and the CSV logger records valid_loss) before the epoch's end hooks
    # write the log line and the checkpoint: a signal in between leaves one validated epoch more
    # in version 0 than the app log shows, and that epoch is trained again.
    validated_first = csv_epochs(run_dir, 0)
    assert validated_first == list(range(len(validated_first))), validated_first
    assert len(before) <= len(validated_first) <= len(before) + 1, (validated_first, before)
    assert validated_first[-1] <= ckpt_epoch + 1, (validated_first, ckpt_epoch)
    assert csv_epochs(run_dir, 1) == after  # not restarted at epoch 0
    assert not (run_dir / "lightning_logs" / "version_2").exists()

    # -- the run's outcome, as the sweep recorded it ----------------------------------------
    state = json.loads((sweep_dir / "sweep_state.json").read_text())
    (run,) = state["runs"]
    assert run["name"] == RUN and run["state"] == "finished", run
    assert run["error"] is None and not state["owners"]
    losses = csv_valid_losses(run_dir)
    assert sorted(losses) == list(range(EPOCHS))
    best_epoch = min(losses, key=losses.get)
    assert run["score"] == pytest.approx(losses[best_epoch], rel=1e-6)  # best of both attempts
    (ckpt,) = checkpoints(run_dir)
    assert ckpt.name.startswith(f"bestmodel-epoch={best_epoch}-"), (ckpt.name, losses)
    result = json.loads((run_dir / "run_result.json").read_text())
    assert result["state"] == "finished" and result["epochs"] == EPOCHS, result
    assert not (run_dir / ".resume").exists() and not (run_dir / "error.txt").exists()

    # -- consolidated like any finished sweep ----------------------------------------------
    model_dir = tmp_path / f"outputs/models/{MODEL}"
    (consolidated,) = checkpoints(model_dir)
    assert consolidated.read_bytes() == ckpt.read_bytes()
    assert f"consolidated run {RUN}" in output
    print(f"signal after {signalled - started:.0f} s (checkpointed epoch {ckpt_epoch}), "
          f"requeued {pending - signalled:.0f} s later, resumed {resumed - pending:.0f} s "
          f"later; epochs {before} then {after[0]}..{after[-1]}; sweep {ended - started:.0f} s")


# ---- the job's side of a requeue, without Slurm ---------------------------------------------

def _finished(score: float):
    from knowit_app.experiment.runs import RunResult

    return RunResult(state="finished", monitor="valid_loss", mode="min", best_score=score,
                     best_checkpoint="bestmodel-epoch=4-valid_loss=0.50.ckpt", epochs=5,
                     fit_seconds=1.0, started=1.0, ended=2.0)


def test_requeued_job_keeps_a_training_that_had_finished(tmp_path, monkeypatch):
    """The signal came after the training ended but before the job returned: the requeued
    job returns that result instead of training again from epoch 0 (its .resume/ is gone)."""
    import knowit_app.training.run as run_module
    from knowit_app.sweeps.job import run_sweep_job

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _finished(0.5).write(run_dir)
    (run_dir / ".resume").mkdir()  # the signal came between the result and the clean-up
    monkeypatch.setattr(run_module, "plan_training", lambda cfg: pytest.fail("trained again"))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    kept = run_sweep_job(None, run_dir)  # the job returns its RunResult to the sweeper
    assert kept.state == "finished" and kept.best_score == 0.5
    assert not (run_dir / ".resume").exists()
    # A first attempt (no requeue) never skips its training.
    monkeypatch.delenv("SLURM_RESTART_COUNT")
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        run_sweep_job(None, run_dir)


def test_cleanup_error_while_requeueing_is_no_failure(tmp_path, monkeypatch):
    """submitit's requeue exits the training (SystemExit); a clean-up that then fails (W&B's
    finish, its service killed by the requeue) must not turn the run into a failed one."""
    import knowit_app.training.run as run_module
    import knowit_app.training.wandb_run as tracking
    from knowit_app.sweeps.job import run_sweep_job

    def requeued(*args, **kwargs):
        try:
            raise SystemExit(-1)  # what submitit's signal handler raises after the requeue
        finally:
            raise ConnectionResetError("Connection lost")  # noqa: B012

    monkeypatch.setattr(run_module, "plan_training", lambda cfg: None)
    monkeypatch.setattr(tracking, "fit_tracked", requeued)
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit):
        run_sweep_job(None, run_dir)
    assert not (run_dir / "error.txt").exists() and not (run_dir / "run_result.json").exists()

    def broken(*args, **kwargs):
        raise ValueError("a real failure")

    monkeypatch.setattr(tracking, "fit_tracked", broken)
    with pytest.raises(ValueError):
        run_sweep_job(None, run_dir)
    assert "a real failure" in (run_dir / "error.txt").read_text()
