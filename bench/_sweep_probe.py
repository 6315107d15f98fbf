"""Runs ``knowit-app`` as its console script does, recording each run's first optimizer step.

Used by ``sweep_wall.py``: ``python bench/_sweep_probe.py <steps.jsonl> <knowit-app arguments>``.
What it adds to the app's own run, through public hooks only:

- ``torch.optim.optimizer.register_optimizer_step_post_hook`` (a global hook, inherited by the
  sweep's forked workers) appends one line per optimizer to ``<steps.jsonl>`` at its first
  step: the time, the process id, and the run (the Hydra job's output directory, from
  ``HydraConfig``);
- torch's optimizer module is therefore imported before the app (the app imports it later
  anyway; only the moment moves, not the total).
"""

import json
import os
import sys
import time
from pathlib import Path

OUT = Path(sys.argv[1])
sys.argv = ["knowit-app", *sys.argv[2:]]

from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: E402


def _first_step(optimizer, args, kwargs):
    if getattr(optimizer, "_bench_first_step_seen", False):
        return
    optimizer._bench_first_step_seen = True
    run = None
    try:
        from hydra.core.hydra_config import HydraConfig

        run = Path(HydraConfig.get().runtime.output_dir).name
    except Exception:  # not inside a Hydra job
        pass
    with OUT.open("a") as f:
        f.write(json.dumps({"run": run, "t": time.time(), "pid": os.getpid()}) + "\n")


register_optimizer_step_post_hook(_first_step)

from knowit_app.app import main  # noqa: E402  (the console script's entry point)

main()
