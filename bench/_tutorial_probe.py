"""Runs ``knowit-app`` exactly as its console script does, recording when each phase ends.

Used by (b): ``python bench/_tutorial_probe.py <out.json> <knowit-app arguments...>``.
What it adds to the app's own run, all through public hooks and pass-through wrappers:

- the modules a training needs are imported first (the same modules the app imports lazily
  later, so the total is unchanged; only the moment moves), which makes "imports" one phase;
- ``plan_training`` and ``prepare`` of ``knowit_app.training.run`` are wrapped to timestamp
  their start and end;
- ``torch.optim.optimizer.register_optimizer_step_post_hook`` timestamps the first optimizer
  step (and counts steps);
- a logging handler on ``knowit_app`` timestamps the app's own log lines ("training ...",
  "epoch k/n", "model ...: best ...");
- at exit, the marks and the process's peak RSS go to ``<out.json>``.
"""

import time

T0 = time.time()

import atexit  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

OUT = Path(sys.argv[1])
ARGS = sys.argv[2:]
marks = {"probe_start": T0}
log_lines = []
steps = {"n": 0}

# What the console script imports, then what a training imports later on.
import knowit_app.app  # noqa: E402

marks["app_imported"] = time.time()
import lightning  # noqa: E402,F401
from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: E402

import knowit_app.training.model_args  # noqa: E402,F401
import knowit_app.training.module  # noqa: E402,F401
import knowit_app.training.run as run_mod  # noqa: E402
import knowit_app.training.trainer  # noqa: E402,F401
import knowit_app.training.wandb_run  # noqa: E402,F401

marks["imports_done"] = time.time()


def _wrap(name, start_key, end_key):
    original = getattr(run_mod, name)

    def wrapper(*args, **kwargs):
        marks.setdefault(start_key, time.time())
        result = original(*args, **kwargs)
        marks.setdefault(end_key, time.time())
        return result

    wrapper.__wrapped__ = original
    setattr(run_mod, name, wrapper)


_wrap("plan_training", "plan_start", "plan_end")
_wrap("prepare", "prepare_start", "prepare_end")


def _step_hook(optimizer, args, kwargs):
    if steps["n"] == 0:
        marks["first_step_end"] = time.time()
    steps["n"] += 1


register_optimizer_step_post_hook(_step_hook)


class _Marks(logging.Handler):
    def emit(self, record):
        log_lines.append((record.created, record.getMessage()))


_logger = logging.getLogger("knowit_app")
_logger.addHandler(_Marks(level=logging.INFO))


def _write():
    marks["atexit"] = time.time()
    OUT.write_text(json.dumps({
        "marks": marks, "log": log_lines, "steps": steps["n"],
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


atexit.register(_write)
sys.argv = [str(Path(sys.executable).parent / "knowit-app"), *ARGS]
knowit_app.app.main()
