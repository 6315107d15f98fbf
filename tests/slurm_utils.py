"""Is a Slurm cluster here to run sweeps on? For tests that need one (tests/test_slurm.py).

Start the loopback cluster with ``scripts/slurm/install.sh && scripts/slurm/start.sh``. Without
it the Slurm tests are skipped, with the reason, except under CI (``CI=true``), where a missing
or stopped cluster fails them: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from polling import wait_until

# "planned": idle but reserved for a pending job (e.g. one an earlier test left to finish).
READY_STATES = {"idle", "mixed", "allocated", "completing", "planned"}
SETTLE_S = 30  # how long a node may take to come back between tests (e.g. after a kill -9)
START_HINT = "start it with: scripts/slurm/install.sh && scripts/slurm/start.sh"


def _run(cmd: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def slurm_available() -> tuple[bool, str]:
    """Whether ``sinfo`` is installed and shows a node that takes jobs; else why not."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False, f"Slurm is not installed (no sinfo/sbatch on PATH); {START_HINT}"
    answer: list[tuple[bool, str]] = []
    seen: set[str] = set()

    def settled() -> bool:
        """True once sinfo gives an answer that waiting will not change."""
        try:
            proc = _run(["sinfo", "-h", "-o", "%T"])
        except subprocess.TimeoutExpired:
            answer.append((False, f"sinfo did not answer in 20 s (slurmctld down?); {START_HINT}"))
            return True
        if proc.returncode != 0:
            detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            answer.append((False, f"sinfo failed ({detail}); {START_HINT}"))
            return True
        seen.clear()
        seen.update(s.strip().rstrip("*~#!%$@^-").lower() for s in proc.stdout.split())
        if seen & READY_STATES:
            answer.append((True, f"Slurm node states: {', '.join(sorted(seen))}"))
            return True
        return False

    try:
        wait_until(settled, SETTLE_S, "a Slurm node that takes jobs", interval=1)
    except AssertionError:
        return False, (f"no Slurm node takes jobs (states: "
                       f"{', '.join(sorted(seen)) or 'none'}); {START_HINT}")
    return answer[-1]


def accounting_available() -> tuple[bool, str]:
    """Whether ``sacct`` works. submitit needs it to notice a job that died without a result."""
    if shutil.which("sacct") is None:
        return False, "sacct is not installed"
    try:
        proc = _run(["sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID"])
    except subprocess.TimeoutExpired:
        return False, "sacct did not answer in 20 s (slurmdbd down?)"
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return False, (f"sacct fails ({detail}): start the cluster with accounting "
                       "(scripts/slurm/start.sh, KNOWIT_SLURM_ACCOUNTING=1)")
    return True, "sacct works"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(check=slurm_available) -> None:
    """Skip the calling test when ``check`` fails; under CI, fail it instead."""
    ok, why = check()
    if ok:
        return
    if in_ci():
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


def cancel_jobs(name: str) -> None:
    """Cancel every job called ``name`` that a test left behind (never fails)."""
    if shutil.which("scancel"):
        try:
            _run(["scancel", f"--name={name}"])
        except (OSError, subprocess.SubprocessError):
            pass


def array_tasks(name: str) -> dict[int, dict[str, str]]:
    """The queued tasks of the job array called ``name``, by index: ``array`` (``<id>_<index>``,
    what scancel takes), ``job_id`` (the task's own job id, what ``scontrol listpids`` takes)
    and ``state`` (PENDING, RUNNING, ...)."""
    proc = _run(["squeue", "-h", f"--name={name}", "-r", "-o", "%F %K %A %T"])
    tasks: dict[int, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1].isdigit():
            tasks[int(parts[1])] = {"array": f"{parts[0]}_{parts[1]}", "job_id": parts[2],
                                    "state": parts[3]}
    return tasks


def task_pid(job_id: str) -> int | None:
    """The pid of task 0 of step 0 of a job (the Python process submitit runs), if running."""
    proc = _run(["scontrol", "listpids", job_id])
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "0" and parts[3] == "0" and parts[0].isdigit():
            return int(parts[0])
    return None


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log,
             interval: float = 0.5):
    """Poll ``predicate`` until it returns something true while the sweep ``proc`` still runs;
    fail with the end of the sweep's ``log`` if it ends or ``timeout`` passes first."""
    try:
        return wait_until(predicate, timeout, what, interval=interval,
                          failed=lambda: "the sweep ended" if proc.poll() is not None else None)
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{log.read_text()[-4000:]}") from None
