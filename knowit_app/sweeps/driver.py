"""The sweep loop behind ``hydra/sweeper=wandb``: ask -> launch -> tell, with state on disk.

One loop for every mode: a controller proposes runs (W&B's ``sweeps`` engine offline, or a W&B
server's controller online), Hydra's configured launcher runs them (in process, in parallel
processes, on Slurm), and every claim and result goes through the sweep's locked state file,
so a sweep resumes after a kill and several sweepers can share one sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.knowit_wandb_sweeper.config import WandbSweeperConf
from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.layout import ERROR_FILE
from knowit_app.experiment.runs import (
    SCORED_STATES,
    RunState,
    has_sweep_config,
    qualifies,
    read_sweep_config,
    write_sweep_config,
)
from knowit_app.experiment.sweep_state import RunRecord, rebuild_records
from knowit_app.sweeps.controllers import ServerController
from knowit_app.sweeps.job_config import ReusingConfigLoader
from knowit_app.sweeps.naming import override_value, overrides_for, run_name
from knowit_app.sweeps.outcomes import adopt_finished, job_outcome, one_line, set_aside
from knowit_app.sweeps.plan import SweepPlan, plan_sweep, size_line
from knowit_app.sweeps.progress import quiet_overrides, start_progress
from knowit_app.sweeps.spec import SweepSpec
from knowit_app.sweeps.state import (
    SweepState,
    find,
    heartbeat,
    owner_alive,
    owner_now,
    params_from_overrides,
)
from knowit_app.sweeps.tables import format_best
from knowit_app.sweeps.workers import (
    local_launcher,
    resolve_parallel,
    run_workers,
    take_budget,
    usable_cores,
)

log = logging.getLogger("knowit_app.sweep")

MIN_RUNS_FOR_FAILURE_RATE = 3


class SweepAborted(KnowitError):
    """The sweep stopped itself (too many failures)."""


class SweepFailed(KnowitError):
    """The sweep ended without one run that counts (every run failed)."""


@dataclass
class Claim:
    """A run this process has claimed and will launch."""

    record: RunRecord
    overrides: list[str]


class SweepDriver:
    """Runs one sweep invocation; picklable (submitit pickles the launcher's owner)."""

    def __init__(self, options: WandbSweeperConf) -> None:
        self.options = options
        self.job_idx = 0
        self.launcher: Any = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.invocation: str | None = None  # set when worker processes share a count
        self.progress: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config
        self.launcher = self._launcher()

    def plan(self, arguments: list[str]) -> SweepPlan:
        """Validate the sweep and the app config for it; start nothing, write nothing."""
        assert self.hydra_context is not None and self.config is not None
        return plan_sweep(self.options, self.hydra_context, self.config, arguments)

    # ---- the loop -------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None
        automatic = str(self.options.parallel).strip().lower() == "auto"
        self.options.parallel = resolve_parallel(self.options.parallel, self.config)
        plan = self.plan(arguments)
        online = isinstance(plan.controller, ServerController)
        if online and automatic:
            # A W&B server hands runs to agents; forked workers would share one agent id and be
            # handed the same run. Online sweeps keep one run at a time unless asked otherwise.
            self.options.parallel = 1
        state = SweepState(plan.sweep_dir)
        self._check_config(plan)
        self._recover_state(plan, state)
        self._record_config(plan, state)
        self._publish_sweep_dir(plan.sweep_dir)
        count = self.options.count
        parallel = int(self.options.parallel)
        log.info("sweep %s (%s, metric %s %s) in %s", plan.spec.name, plan.spec.method,
                 plan.spec.goal, plan.spec.metric_name, plan.sweep_dir)
        log.info(size_line(plan.spec, count, state.records()))
        self.progress = start_progress(self.options, plan, count, parallel, state.records())
        if parallel > 1 and local_launcher(self.config) and not online:  # workers share the sweep
            returns = run_workers(self, plan, state, count, parallel)
        else:
            returns = self._loop(plan, state, count, parallel)
        self.progress.finish(self.config)
        records = state.records()
        log.info(format_best(plan.spec.name, plan.spec.metric_name, plan.spec.goal, records))
        self._check_some_run_counts(plan, state, records)
        return returns

    def _loop(self, plan: SweepPlan, state: SweepState, count: int | None,
              parallel: int) -> list[JobReturn]:
        """Claim, launch and tell, ``parallel`` runs a batch, until ``count``, the
        controller or the metric's target ends it."""
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
            for claim in claims:
                self.progress.started(claim.record.name)
            try:
                with heartbeat(state, [c.record.name for c in claims],
                               float(self.options.stale_after_min) * 60.0):
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
        return returns

    def _check_config(self, plan: SweepPlan) -> None:
        """A resumed sweep must ask for the same search as its ``sweep_config.yaml``; a
        damaged one is a KnowitError naming it (it defines the sweep: never guessed)."""
        old = read_sweep_config(plan.sweep_dir)
        keys = ("method", "metric", "parameters", "early_terminate")
        if old and any(old.get(k) != plan.spec.raw.get(k) for k in keys):
            raise ConfigError("sweep.name", f"sweep {plan.spec.name!r} in {plan.sweep_dir} "
                              "was started with another search; choose another sweep.name")

    def _recover_state(self, plan: SweepPlan, state: SweepState) -> None:
        """A damaged ``sweep_state.json`` is rebuilt from the run dirs, with one warning."""
        keys = set(plan.spec.parameters)
        recovered = state.recover(lambda: rebuild_records(
            plan.sweep_dir, plan.spec.metric_name,
            lambda overrides: params_from_overrides(overrides, keys)))
        if recovered is not None:
            kept, why = recovered
            runs = state.records()
            done = sum(r.state in SCORED_STATES for r in runs)
            log.warning("%s was damaged (%s): rebuilt from its %d run dirs (%d finished, "
                        "not rerun); the damaged file is kept as %s", state.path, why,
                        len(runs), done, kept.name)

    def _record_config(self, plan: SweepPlan, state: SweepState) -> None:
        """Write ``sweep_config.yaml`` (the W&B sweep config, as resolved) once; what else the
        invocation fixed is kept in the state file.

        The check and the write are one step under the sweep's lock: of two sweepers started
        at the same instant with different searches, the second sees the first one's config.
        """
        with state.lock():
            self._check_config(plan)
            if not has_sweep_config(plan.sweep_dir):
                write_sweep_config(plan.sweep_dir, plan.spec.raw)
        with state.locked() as data:
            previous = data.get("fixed_overrides")
            if previous is not None and previous != plan.fixed:
                log.warning("resuming sweep %s with other fixed overrides: %s (was %s)",
                            plan.spec.name, plan.fixed, previous)
            data["fixed_overrides"] = plan.fixed
            data["sweeper"] = {"method": self.options.method, "seed": self.options.seed,
                               "mode": self.options.mode}

    def _publish_sweep_dir(self, sweep_dir: Path) -> None:
        """Tell Hydra's callbacks (consolidation) where this sweep's runs are."""
        assert self.config is not None
        with read_write(self.config), open_dict(self.config):
            self.config.hydra.sweep.dir = str(sweep_dir)
        # Launchers resolve paths such as submitit's log folder when they are set up.
        self.launcher = self._launcher()

    def _launcher(self) -> Any:
        """Hydra's configured launcher; a local one composes value-only jobs from the last."""
        assert self.hydra_context is not None and self.config is not None
        context = self.hydra_context
        if local_launcher(self.config):
            context = HydraContext(config_loader=ReusingConfigLoader(context.config_loader),
                                   callbacks=context.callbacks)
        return Plugins.instance().instantiate_launcher(
            hydra_context=context, task_function=self.task_function, config=self.config)

    def _claim(self, plan: SweepPlan, state: SweepState, want: int) -> list[Claim]:
        """Under the lock: rerun interrupted runs first, then ask the controller for more."""
        stale = float(self.options.stale_after_min) * 60.0
        claims: list[Claim] = []
        with state.locked() as data:
            for run in data["runs"]:
                if len(claims) >= want:
                    break
                owner = data["owners"].get(run["name"])
                if run["state"] != RunState.RUNNING or owner_alive(owner, stale):
                    continue
                if adopt_finished(plan.sweep_dir / run["name"], run, plan.spec.metric_name):
                    continue
                # count is shared by the workers; a run this invocation already paid for (its
                # worker was killed) is rerun without paying again.
                paid = bool(owner) and self.invocation is not None and \
                    owner.get("invocation") == self.invocation
                if not paid and not take_budget(data, self.invocation):
                    break
                set_aside(plan.sweep_dir / run["name"])
                run.update(started=time.time(), ended=None, error=None, score=None, history=[])
                data["owners"][run["name"]] = self._owner()
                log.info("rerunning interrupted run %s", run["name"])
                claims.append(Claim(RunRecord.from_dict(run), run["overrides"]))
            cap = plan.spec.run_cap
            while len(claims) < want and (cap is None or len(data["runs"]) < cap):
                history = [RunRecord.from_dict(r) for r in data["runs"]]
                proposal = plan.controller.propose(history)
                if proposal is None or not take_budget(data, self.invocation):
                    break
                params, extra = proposal
                name = run_name(params, taken={r["name"] for r in data["runs"]})
                overrides = [*plan.fixed, *overrides_for(params, plan.app_cfg),
                             *self._job_overrides(plan, name), *extra]
                record = RunRecord(name=name, params=params, state=RunState.RUNNING, score=None,
                                   history=[], overrides=overrides, started=time.time(),
                                   ended=None, error=None)
                data["runs"].append(record.to_dict())
                data["owners"][name] = self._owner()
                claims.append(Claim(record, overrides))
        return claims

    def _owner(self) -> dict[str, Any]:
        """This process as a run's owner, with the invocation whose count paid for the run."""
        owner = owner_now()
        if self.invocation is not None:
            owner["invocation"] = self.invocation
        return owner

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
        parallel = int(self.options.parallel)
        return max(1, usable_cores() // parallel) if parallel > 1 else None

    def _job_overrides(self, plan: SweepPlan, name: str) -> list[str]:
        """Where the job writes, which W&B run it logs into, how many threads it uses."""
        spec = plan.spec
        threads = self._threads_per_run(plan)
        extra = [f"trainer.num_threads={threads}"] if threads else []
        if local_launcher(self.config):  # a Slurm job's console is its log file: keep it full
            extra += quiet_overrides(bool(self.options.verbose))
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
        for i, claim in enumerate(claims):
            update = job_outcome(results[i] if results is not None else None,
                                 plan.sweep_dir / claim.record.name, plan.spec.metric_name,
                                 launch_error)
            with state.locked() as data:
                run = find(data, claim.record.name)
                run.update(update)
                data["owners"].pop(claim.record.name, None)
            plan.controller.tell(claim.record, update)
            self.progress.ended(claim.record.name, update)

    def _target_reached(self, state: SweepState, spec: SweepSpec) -> bool:
        if spec.target is None:
            return False
        return any(r.state == RunState.FINISHED and spec.reached_target(r.score)
                   for r in state.records())

    def _check_some_run_counts(self, plan: SweepPlan, state: SweepState,
                               records: list[RunRecord]) -> None:
        """A sweep whose every run failed is a failed command (exit status 1), not "no
        consolidation" and 0: raised here because Hydra's callbacks (consolidation) run after
        the sweeper and swallow their exceptions, so only the sweeper can set the status."""
        ended = [r for r in records if r.state in (*SCORED_STATES, RunState.FAILED)]
        if not ended or any(qualifies(r.state, r.score) for r in ended):
            return
        from knowit_app.sweeps.callback import write_report_safely

        write_report_safely(state.sweep_dir)  # Hydra's end-of-sweep callback won't run
        raise SweepFailed(f"every run of sweep {plan.spec.name} failed ({len(ended)} of "
                          f"{len(records)} runs); nothing was consolidated; see {ERROR_FILE} in "
                          f"their run dirs under {plan.sweep_dir}")

    def _check_failures(self, state: SweepState) -> None:
        records = [r for r in state.records()
                   if r.state in (*SCORED_STATES, RunState.FAILED)]
        failed = sum(r.state == RunState.FAILED for r in records)
        rate = float(self.options.max_failure_rate)
        if len(records) >= MIN_RUNS_FOR_FAILURE_RATE and failed / len(records) > rate:
            if self.invocation is None:  # a worker leaves the report to the sweeper process
                from knowit_app.sweeps.callback import write_report_safely

                write_report_safely(state.sweep_dir)  # Hydra's end-of-sweep callback won't run
            raise SweepAborted(f"max_failure_rate: {failed} of {len(records)} runs failed "
                               f"(more than {rate:.0%}); see {ERROR_FILE} in their run dirs")
