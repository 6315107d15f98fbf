"""The sweep loop behind ``hydra/sweeper=wandb``: ask -> launch -> tell, with state on disk.

One loop for every mode: a controller proposes runs (W&B's ``sweeps`` engine offline, or a W&B
server's controller online), Hydra's configured launcher runs them (in process, in parallel
processes, on Slurm), and every claim and result goes through the sweep's locked state file,
so a sweep resumes after a kill and several sweepers can share one sweep.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.layout import ERROR_FILE, SWEEP_CONFIG_FILE, ExperimentLayout
from knowit_app.sweeps.controllers import Controller, make_controller
from knowit_app.sweeps.engine import RunRecord
from knowit_app.sweeps.grammar import parameters_from_overrides
from knowit_app.sweeps.naming import override_value, overrides_for, run_name
from knowit_app.sweeps.spec import SweepSpec, load_spec
from knowit_app.sweeps.state import SweepState, find, owner_alive, owner_now

log = logging.getLogger("knowit_app.sweep")

MIN_RUNS_FOR_FAILURE_RATE = 3
MODES = ("auto", "offline", "online")


class SweepAborted(KnowitError):
    """The sweep stopped itself (too many failures)."""


@dataclass
class Claim:
    """A run this process has claimed and will launch."""

    record: RunRecord
    overrides: list[str]
    rerun: bool = False


@dataclass
class SweepPlan:
    """Everything fixed for the whole sweep, worked out before the first run."""

    spec: SweepSpec
    fixed: list[str]
    sweep_dir: Path
    app_cfg: DictConfig
    controller: Controller
    job_overrides: list[str] = field(default_factory=list)


class SweepDriver:
    """Runs one sweep invocation; picklable (submitit pickles the launcher's owner)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = dict(options)
        self.options.pop("_target_", None)
        self.job_idx = 0
        self.launcher: Any = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    # ---- planning -------------------------------------------------------------------------

    def _check_options(self) -> None:
        opt = self.options
        if opt.get("mode", "auto") not in MODES:
            raise ConfigError("hydra.sweeper.mode",
                              f"{opt['mode']!r} is not allowed; allowed: {', '.join(MODES)}")
        if int(opt.get("parallel", 1)) < 1:
            raise ConfigError("hydra.sweeper.parallel", "must be a positive integer")
        count = opt.get("count")
        if count is not None and int(count) < 1:
            raise ConfigError("hydra.sweeper.count", "must be a positive integer or null")
        rate = float(opt.get("max_failure_rate", 0.5))
        if not 0.0 <= rate <= 1.0:
            raise ConfigError("hydra.sweeper.max_failure_rate", "must lie in [0, 1]")

    def plan(self, arguments: list[str]) -> SweepPlan:
        """Validate the sweep and the app config for it; start nothing, write nothing."""
        from knowit_app.training.run import plan_training

        self._check_options()
        assert self.hydra_context is not None and self.config is not None
        grammar_args = list(arguments)
        for key, value in (self.options.get("params") or {}).items():
            grammar_args.append(f"{key}={value}")
        method = self.options.get("method")
        params, fixed = parameters_from_overrides(grammar_args,
                                                  method or _default_method(grammar_args))
        loader = self.hydra_context.config_loader
        cfg = loader.load_sweep_config(self.config, fixed)
        default_name = f"{cfg.model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        sweep_file = OmegaConf.to_container(cfg.sweep, resolve=True)
        if method is None and not sweep_file.get("method"):
            method = _default_method(grammar_args)  # parameters only from the command line
        spec = load_spec(sweep_file, cfg, default_name=default_name, method_override=method,
                         extra_parameters=params)
        if spec.method in ("random", "bayes") and self.options.get("count") is None \
                and spec.run_cap is None and self.options.get("mode") != "online":
            raise ConfigError("hydra.sweeper.count", f"a {spec.method} search never ends by "
                              "itself; set hydra.sweeper.count or the sweep's run_cap")
        # Check the training itself (data, arch, trainer) with one example run's values.
        example = loader.load_sweep_config(self.config, fixed + overrides_for(
            example_values(spec), cfg))
        with read_write(example), open_dict(example):
            del example["hydra"]  # as in a job: the task never sees the hydra node
        plan_training(example)
        sweep_dir = ExperimentLayout(cfg.exp_dir).sweep_dir(cfg.model_name, spec.name)
        controller = make_controller(spec, self.options, sweep_dir)
        return SweepPlan(spec, fixed, sweep_dir, cfg, controller)

    # ---- the loop -------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        plan = self.plan(arguments)
        state = SweepState(plan.sweep_dir)
        self._record_config(plan, state)
        self._publish_sweep_dir(plan.sweep_dir)
        count = self.options.get("count")
        parallel = int(self.options.get("parallel", 1))
        log.info("sweep %s (%s, metric %s %s) in %s", plan.spec.name, plan.spec.method,
                 plan.spec.goal, plan.spec.metric_name, plan.sweep_dir)
        returns: list[JobReturn] = []
        started = 0
        while count is None or started < int(count):
            if self._target_reached(state, plan.spec):
                log.info("metric.target %s reached; the sweep ends", plan.spec.target)
                break
            want = parallel if count is None else min(parallel, int(count) - started)
            claims = self._claim(plan, state, want)
            if not claims:
                break
            try:
                results = self.launcher.launch([c.overrides for c in claims],
                                               initial_job_idx=self.job_idx)
            except Exception as exc:  # e.g. Slurm killed a job: submitit raises for the batch
                log.error("the launcher failed for this batch: %s", one_line(exc))
                results, launch_error = None, exc
            else:
                launch_error = None
            self.job_idx += len(claims)
            self._tell(plan, state, claims, results, launch_error)
            returns.extend(results or [])
            started += len(claims)
            self._check_failures(state)
        print_best(plan, state)
        return returns

    def _record_config(self, plan: SweepPlan, state: SweepState) -> None:
        """Write ``sweep_config.yaml`` (the W&B sweep config, as resolved) once.

        A resumed sweep must ask for the same search; what else the invocation fixed is kept
        in the state file.
        """
        path = plan.sweep_dir / SWEEP_CONFIG_FILE
        if path.exists():
            old = yaml.safe_load(path.read_text()) or {}
            keys = ("method", "metric", "parameters", "early_terminate")
            if any(old.get(k) != plan.spec.raw.get(k) for k in keys):
                raise ConfigError("sweep.name", f"sweep {plan.spec.name!r} in {plan.sweep_dir} "
                                  "was started with another search; choose another sweep.name")
        else:
            plan.sweep_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(yaml.safe_dump(plan.spec.raw, sort_keys=False))
            tmp.replace(path)
        with state.locked() as data:
            previous = data.get("fixed_overrides")
            if previous is not None and previous != plan.fixed:
                log.warning("resuming sweep %s with other fixed overrides: %s (was %s)",
                            plan.spec.name, plan.fixed, previous)
            data["fixed_overrides"] = plan.fixed
            data["sweeper"] = {k: self.options.get(k) for k in ("method", "seed", "mode")}

    def _publish_sweep_dir(self, sweep_dir: Path) -> None:
        """Tell Hydra's callbacks (consolidation) where this sweep's runs are."""
        assert self.config is not None
        with read_write(self.config), open_dict(self.config):
            self.config.hydra.sweep.dir = str(sweep_dir)
        # Launchers resolve paths such as submitit's log folder when they are set up.
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=self.hydra_context, task_function=self.task_function,
            config=self.config)

    def _claim(self, plan: SweepPlan, state: SweepState, want: int) -> list[Claim]:
        """Under the lock: rerun interrupted runs first, then ask the controller for more."""
        stale = float(self.options.get("stale_after_min", 30.0)) * 60.0
        claims: list[Claim] = []
        with state.locked() as data:
            for run in data["runs"]:
                if len(claims) >= want:
                    break
                if run["state"] != "running" or owner_alive(data["owners"].get(run["name"]),
                                                             stale):
                    continue
                if adopt_finished(plan, run):
                    continue
                set_aside(plan.sweep_dir / run["name"])
                run.update(started=time.time(), ended=None, error=None, score=None, history=[])
                data["owners"][run["name"]] = owner_now()
                log.info("rerunning interrupted run %s", run["name"])
                claims.append(Claim(RunRecord.from_dict(run), run["overrides"], rerun=True))
            cap = plan.spec.run_cap
            while len(claims) < want and (cap is None or len(data["runs"]) < cap):
                history = [RunRecord.from_dict(r) for r in data["runs"]]
                proposal = plan.controller.propose(history)
                if proposal is None:
                    break
                params, extra = proposal
                name = run_name(params, taken={r["name"] for r in data["runs"]})
                overrides = [*plan.fixed, *overrides_for(params, plan.app_cfg),
                             *self._job_overrides(plan, name), *extra]
                record = RunRecord(name=name, params=params, state="running", score=None,
                                   history=[], overrides=overrides, started=time.time(),
                                   ended=None, error=None)
                data["runs"].append(record.to_dict())
                data["owners"][name] = owner_now()
                claims.append(Claim(record, overrides))
        return claims

    def _threads_per_run(self, plan: SweepPlan) -> int | None:
        """Torch threads for each run so that parallel runs do not oversubscribe the cores.

        Slurm-style launchers give each run ``cpus_per_task`` cores; local parallel runs share
        this machine's cores. ``trainer.num_threads`` set by the user always wins.
        """
        if plan.app_cfg.trainer.num_threads is not None:
            return None
        assert self.config is not None
        cpus = OmegaConf.select(self.config, "hydra.launcher.cpus_per_task", default=None)
        if cpus:
            return int(cpus)
        parallel = int(self.options.get("parallel", 1))
        return max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None

    def _job_overrides(self, plan: SweepPlan, name: str) -> list[str]:
        """Where the job writes, which W&B run it logs into, how many threads it uses."""
        spec = plan.spec
        threads = self._threads_per_run(plan)
        extra = [f"trainer.num_threads={threads}"] if threads else []
        return [*extra, f"hydra.sweep.dir={override_value(str(plan.sweep_dir))}",
                f"hydra.sweep.subdir={override_value(name)}",
                f"wandb.mode={plan.controller.wandb_mode}",
                f"wandb.group={override_value(spec.name)}",
                f"wandb.dir={override_value(str(plan.sweep_dir))}",
                f"wandb.project={override_value(plan.controller.project)}"]

    def _tell(self, plan: SweepPlan, state: SweepState, claims: Sequence[Claim],
              results: Sequence[JobReturn] | None, launch_error: Exception | None) -> None:
        """Record each launched run's outcome; failures keep their traceback on disk.

        Without results (the launcher raised for the whole batch) each run's outcome is read
        from its run dir: a run that finished there counts, any other is failed, none is lost.
        """
        from knowit_app.training.result import metric_history

        for i, claim in enumerate(claims):
            run_dir = plan.sweep_dir / claim.record.name
            update: dict[str, Any] = {"ended": time.time()}
            ret = results[i] if results is not None else None
            finished_on_disk = ret is None and (run_dir / "run_result.json").exists()
            if (ret is not None and ret.status == JobStatus.COMPLETED) or finished_on_disk:
                update.update(read_outcome(run_dir))
                update["history"] = metric_history(run_dir, plan.spec.metric_name)
            elif ret is not None:
                exc = ret._return_value
                update.update(state="failed", score=None, error=one_line(exc))
                write_error(run_dir, exc)
            else:
                assert launch_error is not None
                update.update(state="failed", score=None,
                              error=f"the launcher lost this job: {one_line(launch_error)}")
                write_error(run_dir, launch_error)
            with state.locked() as data:
                run = find(data, claim.record.name)
                run.update(update)
                data["owners"].pop(claim.record.name, None)
            plan.controller.tell(claim.record, update)
            shown = f"{update['score']:.4g}" if update.get("score") is not None else "-"
            log.info("run %s: %s (%s=%s)", claim.record.name, update["state"],
                     plan.spec.metric_name, shown)

    def _target_reached(self, state: SweepState, spec: SweepSpec) -> bool:
        if spec.target is None:
            return False
        return any(r.state == "finished" and r.score is not None and spec.reached_target(r.score)
                   for r in state.records())

    def _check_failures(self, state: SweepState) -> None:
        records = [r for r in state.records() if r.state in ("finished", "failed", "stopped")]
        failed = sum(r.state == "failed" for r in records)
        rate = float(self.options.get("max_failure_rate", 0.5))
        if len(records) >= MIN_RUNS_FOR_FAILURE_RATE and failed / len(records) > rate:
            from knowit_app.sweeps.callback import write_report_safely

            write_report_safely(state.sweep_dir)  # Hydra's end-of-sweep callback won't run
            raise SweepAborted(f"max_failure_rate: {failed} of {len(records)} runs failed "
                               f"(more than {rate:.0%}); see error.txt in their run dirs")


def _default_method(arguments: Sequence[str]) -> str:
    """Grid unless a Hydra-grammar parameter is continuous (an interval)."""
    return "random" if any("interval(" in a for a in arguments) else "grid"


def example_values(spec: SweepSpec) -> dict[str, Any]:
    """One plausible value per parameter, to check the training config before the sweep."""
    values: dict[str, Any] = {}
    for key, p in spec.parameters.items():
        if "values" in p:
            values[key] = p["values"][0]
        elif "value" in p:
            values[key] = p["value"]
        elif "min" in p:
            values[key] = p["min"]
        elif "mu" in p:
            values[key] = p["mu"]
    return values


def read_outcome(run_dir: Path) -> dict[str, Any]:
    """State and score of a run that returned normally, from its run_result.json."""
    from knowit_app.training.result import RunResult

    try:
        result = RunResult.read(run_dir)
    except FileNotFoundError:
        return {"state": "failed", "score": None, "error": "no run_result.json was written"}
    score = result.best_score
    if score is None or not math.isfinite(score):
        error_file = run_dir / ERROR_FILE
        lines = error_file.read_text().strip().splitlines() if error_file.exists() else []
        return {"state": "failed", "score": None,
                "error": lines[-1] if lines else f"no finite score ({score})"}
    return {"state": result.state, "score": score}


def adopt_finished(plan: SweepPlan, run: dict[str, Any]) -> bool:
    """A run whose sweeper died after the job finished keeps its result: no rerun."""
    from knowit_app.training.result import metric_history

    run_dir = plan.sweep_dir / run["name"]
    outcome = read_outcome(run_dir) if (run_dir / "run_result.json").exists() else None
    if not outcome or outcome["state"] not in ("finished", "stopped"):
        return False
    run.update(outcome, ended=time.time(),
               history=metric_history(run_dir, plan.spec.metric_name))
    return True


def set_aside(run_dir: Path) -> None:
    """Move an interrupted run's partial files out of the way (kept, not deleted)."""
    if run_dir.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = run_dir.parent / ".interrupted" / f"{run_dir.name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        run_dir.rename(target)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for the state file and the log."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def write_error(run_dir: Path, exc: BaseException) -> None:
    """Keep a failed run's traceback in its run dir (the job writes one first if it can)."""
    path = run_dir / ERROR_FILE
    if path.exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def print_best(plan: SweepPlan, state: SweepState, limit: int = 10) -> None:
    """Log a table of the best runs so far, best first."""
    records = state.records()
    done = [r for r in records if r.score is not None and r.state in ("finished", "stopped")]
    done.sort(key=lambda r: r.score if plan.spec.goal == "minimize" else -r.score)
    counts = {s: sum(r.state == s for r in records) for s in ("finished", "stopped", "failed",
                                                               "running")}
    lines = [f"sweep {plan.spec.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    width = max([len(r.name) for r in done[:limit]] + [3])
    lines.append(f"  {'run':<{width}}  {plan.spec.metric_name:>12}  state     epochs")
    for r in done[:limit]:
        lines.append(f"  {r.name:<{width}}  {r.score:>12.5g}  {r.state:<8}  {len(r.history):>6}")
    log.info("\n".join(lines))
