"""Shared helpers of the benchmark: statistics, timed child processes, machine facts.

Only the standard library is used here, so the figures that time child processes do not pay
for imports in the benchmark process.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


@dataclass
class Figure:
    """One row of the result table: a named figure with its samples and its target."""

    key: str
    label: str
    unit: str
    samples: list[float]
    target: float | None = None  # the figure must be <= target
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def min(self) -> float | None:
        return min(self.samples) if self.samples else None

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None

    @property
    def met(self) -> bool | None:
        if self.target is None or self.median is None:
            return None
        return self.median <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "unit": self.unit,
                "median": self.median, "min": self.min, "max": self.max,
                "n": len(self.samples), "samples": self.samples, "target": self.target,
                "met": self.met, "note": self.note, "details": self.details}


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class ChildRun:
    """A finished child process: exit status, wall time, peak RSS, captured output."""

    cmd: list[str]
    returncode: int
    wall_s: float
    started_at: float  # time.time() just before the child was started
    maxrss_kib: int  # the child's own peak resident set size (Linux: KiB)
    stdout: str
    stderr: str

    def check(self) -> ChildRun:
        if self.returncode != 0:
            tail = (self.stderr or self.stdout)[-3000:]
            raise RuntimeError(f"command failed with status {self.returncode}: "
                               f"{' '.join(self.cmd)}\n{tail}")
        return self


def run_child(cmd: list[str], *, cwd: Path | str | None = None,
              env: dict[str, str] | None = None, timeout: float | None = None) -> ChildRun:
    """Run ``cmd`` to completion; wall time from just before start to the child's exit.

    ``os.wait4`` reaps the child and returns its own resource usage, so the peak RSS is that
    child's (with its own children's folded in by the kernel only once they are waited for).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started_at = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, _kill, args=(proc.pid,))
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: tell Popen
        out.seek(0)
        err.seek(0)
        return ChildRun(cmd=cmd, returncode=proc.returncode, wall_s=wall, started_at=started_at,
                        maxrss_kib=int(usage.ru_maxrss),
                        stdout=out.read().decode(errors="replace"),
                        stderr=err.read().decode(errors="replace"))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def app_command() -> list[str]:
    """The ``knowit-app`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "knowit-app"
    if script.exists():
        return [str(script)]
    found = shutil.which("knowit-app")
    if found:
        return [found]
    return [sys.executable, "-m", "knowit_app"]


def child_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    env["WANDB_SILENT"] = "true"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Facts a reader needs to compare two result files."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "load_average_start": load_average(),
    }
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("torch", "lightning", "hydra-core", "omegaconf", "numpy", "wandb",
                 "knowit-app"):
        try:
            info[dist] = version(dist)
        except PackageNotFoundError:
            info[dist] = None
    return info


def fresh_dir(parent: Path, prefix: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
