"""How a launched run ended, as the sweep state records it.

The job returns its :class:`~knowit_app.experiment.runs.RunResult` (through Hydra's
``JobReturn``), so the sweeper takes state and score from there. Only when there is no return
(the launcher lost the batch, or a sweeper died and a new one finds the run) is the outcome
read back from the run directory, through :mod:`knowit_app.experiment`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from knowit_app.experiment.layout import INTERRUPTED_DIR
from knowit_app.experiment.runs import SCORED_STATES, RunResult, RunState, write_error
from knowit_app.experiment.sweep_state import outcome_of

log = logging.getLogger("knowit_app.sweep")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for the state file and the log."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def result_on_disk(run_dir: Path) -> RunResult | None:
    """The run's ``run_result.json``, None when it has none (or an unreadable one)."""
    try:
        return RunResult.read(run_dir)
    except (OSError, ValueError, TypeError):
        return None


def failed(run_dir: Path, exc: BaseException, why: str = "") -> dict[str, Any]:
    """A failed run's record update; its traceback is kept (the job writes one first if it can).
    """
    write_error(run_dir, exc, replace=False)
    return {"state": RunState.FAILED.value, "score": None, "error": why + one_line(exc)}


def job_outcome(ret: JobReturn | None, run_dir: Path, metric: str,
                launch_error: Exception | None) -> dict[str, Any]:
    """The record update for one launched run, from its job's return value.

    Without a return (the launcher raised for the whole batch) a run that finished on disk
    counts and any other failed: none is lost.
    """
    update: dict[str, Any] = {"ended": time.time()}
    if ret is None:
        result = result_on_disk(run_dir)
        if result is not None:
            update.update(outcome_of(result, run_dir, metric))
        else:
            assert launch_error is not None
            update.update(failed(run_dir, launch_error, "the launcher lost this job: "))
    elif ret.status == JobStatus.COMPLETED:
        result = ret.return_value
        update.update(outcome_of(result if isinstance(result, RunResult) else None, run_dir,
                                 metric, None if isinstance(result, RunResult)
                                 else "the job returned no result"))
    else:
        try:
            ret.return_value  # noqa: B018 - re-raises the job's exception (Hydra's public API)
        except Exception as exc:
            update.update(failed(run_dir, exc))
        else:
            update.update(state=RunState.FAILED.value, score=None, error="the job failed")
    return update


def adopt_finished(run_dir: Path, run: dict[str, Any], metric: str) -> bool:
    """A run whose sweeper died after the job finished keeps its result: no rerun."""
    result = result_on_disk(run_dir)
    if result is None or result.state not in SCORED_STATES:
        return False
    outcome = outcome_of(result, run_dir, metric)
    if outcome["state"] not in SCORED_STATES:
        return False
    run.update(outcome, ended=time.time())
    return True


def set_aside(run_dir: Path) -> None:
    """Move an interrupted run's partial files out of the way (kept, not deleted)."""
    if run_dir.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = run_dir.parent / INTERRUPTED_DIR / f"{run_dir.name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        run_dir.rename(target)
