"""Every core on one machine: worker processes that share one sweep through its state file.

With Hydra's in-process (basic) launcher, ``hydra.sweeper.parallel`` (``auto``: the cores this
process may use) worker processes each run the sweeper's own claim -> train -> tell loop, one
torch thread each, against the same ``sweep_state.json``: the protocol that already lets
several sweepers share a sweep. A worker is forked from the sweeper after the sweep is planned,
so it pays no import and no config check; it takes the next run as soon as its run ends (no
batch barrier). ``count`` is one budget for the whole invocation, kept in the state file and
taken under its lock. The parent only supervises: it prints each worker's run lines and the
sweep's progress, replaces a worker killed by a signal (its run is rerun by the stale-owner
rule) and stops every worker on Ctrl-C. Other launchers (submitit, Slurm) are left as they are.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import WORKER_LOG
from knowit_app.experiment.sweep_state import SweepState

log = logging.getLogger("knowit_app.sweep")

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
BUDGETS = "budgets"  # the state file's key: invocation id -> runs it may still start


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a Slurm allocation or taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_launcher(config: DictConfig) -> bool:
    """Whether Hydra's launcher runs jobs in this process (the basic launcher)."""
    target = OmegaConf.select(config, "hydra.launcher._target_", default=BASIC_LAUNCHER)
    return target == BASIC_LAUNCHER


def resolve_parallel(value: Any, config: DictConfig) -> int:
    """``hydra.sweeper.parallel`` as a number: ``auto`` is every usable core with the basic
    launcher and 1 (one job at a time) with any other launcher, as before."""
    if str(value).strip().lower() == "auto":
        return usable_cores() if local_launcher(config) else 1
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError("hydra.sweeper.parallel", f"{value!r} is not allowed; allowed: auto "
                          "(every core) or a positive integer")
    return number


# ---- the invocation's budget (count) in the shared state ------------------------------------

def open_budget(state: SweepState, count: int | None) -> str:
    """Record this invocation's ``count`` in the state file; return the invocation's id."""
    invocation = uuid.uuid4().hex[:12]
    with state.locked() as data:
        data.setdefault(BUDGETS, {})[invocation] = None if count is None else int(count)
    return invocation


def close_budget(state: SweepState, invocation: str) -> None:
    with state.locked() as data:
        data.get(BUDGETS, {}).pop(invocation, None)


def take_budget(data: dict[str, Any], invocation: str | None) -> bool:
    """Under the state's lock: take one run from the invocation's budget (False: spent).

    Without an invocation (one process sweeps) the caller counts its own runs.
    """
    if invocation is None:
        return True
    budgets = data.setdefault(BUDGETS, {})
    left = budgets.get(invocation)
    if left is None:
        return invocation in budgets  # unbounded while the invocation is open
    if left < 1:
        return False
    budgets[invocation] = left - 1
    return True


# ---- the worker processes ------------------------------------------------------------------

class WorkerPool:
    """``parallel`` forked workers running ``loop`` against one sweep; the parent supervises."""

    def __init__(self, sweep_dir: Path, parallel: int, verbose: bool,
                 progress: Any, prepare: Callable[[int, Connection], None]) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.parallel = parallel
        self.verbose = verbose
        self.progress = progress
        self.prepare = prepare  # run in each worker before its loop (its progress pipe)
        self.context = multiprocessing.get_context("fork")
        self.workers: dict[int, Any] = {}  # sentinel -> process
        self.pipes: dict[Connection, int] = {}
        self.started = 0

    def run(self, loop: Callable[[], Any]) -> list[int]:
        """Run ``loop`` in every worker until each has no run left; the workers' exit codes."""
        import gc

        warm_imports()
        gc.freeze()  # fewer pages copied into each worker (the collector's own writes)
        codes: list[int] = []
        replacements = self.parallel
        # `kill <sweeper>` must stop the workers too, as Ctrl-C does (never leave orphans).
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for _ in range(self.parallel):
                self._start(loop)
            gc.unfreeze()  # the workers have their copies; this process collects again
            while self.workers or self.pipes:
                for ready in wait([*self.workers, *self.pipes]):
                    if isinstance(ready, Connection):
                        self._receive(ready)
                        continue
                    process = self.workers.pop(ready)
                    process.join()
                    codes.append(process.exitcode)
                    if process.exitcode and process.exitcode < 0 and replacements > 0:
                        replacements -= 1  # killed: its run goes to a new worker
                        log.warning("sweep worker %d was killed (signal %d); starting another",
                                    process.pid, -process.exitcode)
                        self._start(loop)
        except BaseException:
            self.stop()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        return codes

    def _start(self, loop: Callable[[], Any]) -> None:
        self.started += 1
        reader, writer = self.context.Pipe(duplex=False)
        log_path = self.sweep_dir / WORKER_LOG.format(n=self.started)
        process = self.context.Process(
            target=_worker_main, name=f"sweep-worker-{self.started}",
            args=(self.started, loop, writer, log_path, self.verbose, self.prepare))
        process.start()
        writer.close()
        self.workers[process.sentinel] = process
        self.pipes[reader] = self.started

    def _receive(self, pipe: Connection) -> None:
        try:
            event = pipe.recv()
        except Exception:  # a worker killed mid-message leaves a truncated pickle: drop its pipe
            self.pipes.pop(pipe, None)
            pipe.close()
            return
        self.progress.event(*event)

    def stop(self) -> None:
        """Stop every worker (Ctrl-C, or the sweeper failed); their runs are rerun on resume."""
        for process in self.workers.values():
            if process.is_alive():
                try:
                    os.kill(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.workers.values():
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        self.workers.clear()


def _worker_main(index: int, loop: Callable[[], Any], pipe: Connection, log_path: Path,
                 verbose: bool, prepare: Callable[[int, Connection], None]) -> None:
    """A worker: output into its log file, then the sweep loop until no run is left."""
    if not verbose:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    signal.signal(signal.SIGTERM, _interrupt)  # a stop: end like Ctrl-C, owners released
    _stop_with_parent()
    prepare(index, pipe)
    try:
        loop()
    finally:
        pipe.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_with_parent() -> None:
    """Ask Linux to send this worker SIGTERM when the sweeper dies, even by SIGKILL.

    No library offers the parent-death signal; prctl(PR_SET_PDEATHSIG) through ctypes is the
    one call. Elsewhere nothing happens (a worker then ends when its run ends).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the sweeper died before the call: stop now
        raise KeyboardInterrupt("the sweeper process is gone")


def warm_imports() -> None:
    """Import what every run needs once, before the workers are forked from this process."""
    started = time.perf_counter()
    # wandb.init imports W&B's launch inputs (and its public API) on first use: 2-4 s here.
    import lightning  # noqa: F401
    import wandb  # noqa: F401
    import wandb.sdk.launch.inputs.internal  # noqa: F401

    import knowit_app.training.module  # noqa: F401
    import knowit_app.training.trainer  # noqa: F401
    import knowit_app.training.wandb_run  # noqa: F401

    log.debug("imports for the workers: %.1f s", time.perf_counter() - started)


def run_workers(driver: Any, plan: Any, state: SweepState, count: int | None,
                parallel: int) -> list[Any]:
    """Run the sweep in ``parallel`` worker processes sharing ``count``; wait for them all."""
    from knowit_app.sweeps.progress import PipeProgress

    driver.invocation = open_budget(state, count)
    console = driver.progress

    def prepare(index: int, pipe: Connection) -> None:
        driver.progress = PipeProgress(pipe)
        driver.job_idx = index * 100_000  # Hydra job numbers stay unique across workers

    pool = WorkerPool(plan.sweep_dir, parallel, bool(driver.options.verbose), console, prepare)
    try:
        codes = pool.run(lambda: driver._loop(plan, state, None, 1))
    finally:
        close_budget(state, driver.invocation)
        driver.invocation = None
    failed = [c for c in codes if c]
    if failed:
        log.warning("%d of %d sweep workers ended with an error; see %s", len(failed),
                    len(codes), plan.sweep_dir / WORKER_LOG.format(n="<n>"))
    driver._check_failures(state)  # a worker that stopped the sweep stops it here too
    return []
