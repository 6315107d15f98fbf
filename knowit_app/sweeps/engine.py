"""The offline sweep controller: W&B's own ``sweeps`` engine, asked what to run next.

W&B's server runs the same open-source engine (``sweeps.next_run``, ``sweeps.stop_runs``), so
a local sweep proposes the same kind of runs as a W&B one, with no server and no API key. What
the server adds is done here: ``run_cap`` and ``metric.target`` end the search, and the random
state is seeded from (seed, number of runs so far), so a sweep is reproducible and a resumed
sweep proposes what the interrupted one would have.

Engine quirks handled here: values come back as numpy scalars (converted with
:func:`to_plain`); bayes reads ``False``, ``0``, ``""`` and ``None`` in a categorical as the
first value, so categorical values reach the engine as tokens (``v0``, ``v1``, ...) and are
mapped back; grid never proposes a point it has seen, failed or not; random and bayes never
end by themselves (give ``run_cap``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import random
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from knowit_app.experiment.runs import SWEEP_STATES, RunState
from knowit_app.experiment.sweep_state import RunRecord
from knowit_app.sweeps.spec import SweepSpec, distribution_of, to_plain

__all__ = ["LocalEngine", "RunRecord", "as_record"]

# Our run states -> W&B's. A run stopped early by hyperband is "killed" in W&B's terms: bayes
# then scores it by ``metric.impute`` (default: the worst score seen).
_WANDB_STATE = {s: ("killed" if s == RunState.STOPPED else s.value) for s in SWEEP_STATES}


RunRecordLike = RunRecord | Mapping[str, Any] | Any


def as_record(run: RunRecordLike) -> RunRecord:
    """A :class:`RunRecord` from a record, a dict, or any object with the same attributes."""
    if isinstance(run, RunRecord):
        return run
    if isinstance(run, Mapping):
        return RunRecord.from_dict(run)
    return RunRecord(name=run.name, params=dict(run.params), state=run.state, score=run.score,
                     history=list(run.history or []))


def _import_sweeps() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warnings about the package's v1-style models
        import sweeps
    return sweeps


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed ``random`` and ``numpy.random`` (all the engine draws from); restore them after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 and 0 apart from False (unlike ``==``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


class LocalEngine:
    """Proposes runs and early stops with W&B's ``sweeps`` engine, given every run so far."""

    def __init__(self, spec: SweepSpec, seed: int) -> None:
        self.spec = spec
        self.seed = int(seed)
        self._categorical = {k: list(p["values"]) for k, p in spec.parameters.items()
                             if "values" in p}
        self._config = spec.wandb_config()
        for key, values in self._categorical.items():  # tokens, see the module docstring
            self._config["parameters"][key]["values"] = [f"v{i}" for i in range(len(values))]
        self._searched = [k for k, p in spec.parameters.items()
                          if distribution_of(p) != "constant"]

    # ---------------------------------------------------------------- proposals

    def propose(self, history: Sequence[RunRecordLike]) -> dict[str, Any] | None:
        """The next run's parameter values, or None when the sweep is done.

        ``history`` is every run of the sweep so far, including pending and running ones:
        proposing several runs at once means adding each proposal (state ``pending``) before
        asking for the next, or the same seed yields the same proposal again.
        """
        records = [as_record(r) for r in history]
        if self._limit_reason(records) is not None:
            return None
        return self._next(records)

    def done_reason(self, history: Sequence[RunRecordLike]) -> str | None:
        """Why :meth:`propose` returns None for this history (for the log), else None."""
        records = [as_record(r) for r in history]
        reason = self._limit_reason(records)
        if reason is None and self._next(records) is None:
            reason = "every grid point has been run"
        return reason

    def _limit_reason(self, records: list[RunRecord]) -> str | None:
        cap = self.spec.run_cap
        if cap is not None and len(records) >= cap:
            return f"run_cap {cap} reached"
        for record in records:
            if self.spec.reached_target(record.score):
                return (f"run {record.name} reached the target {self.spec.metric_name} "
                        f"{self.spec.target}")
        return None

    def _next(self, records: list[RunRecord]) -> dict[str, Any] | None:
        sweeps = _import_sweeps()
        runs = [run for run in (self._engine_run(r) for r in records) if run is not None]
        digest = hashlib.sha256(f"{self.seed}:{len(records)}".encode()).digest()
        with _seeded(int.from_bytes(digest[:4], "big")), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's convergence chatter in bayes
            proposal = sweeps.next_run(self._config, runs, validate=False)
        if proposal is None:
            return None
        return {key: self._decode(key, proposal.config[key]["value"])
                for key in self.spec.parameters}

    def _decode(self, key: str, value: Any) -> Any:
        value = to_plain(value)
        if key in self._categorical:
            return copy.deepcopy(self._categorical[key][int(str(value)[1:])])
        return value

    def _encode(self, record: RunRecord) -> dict[str, Any] | None:
        """The run's config as the engine knows it, or None if it lies outside this search."""
        config = {}
        for key in self.spec.parameters:
            if key not in record.params:
                if key in self._searched:
                    return None
                continue
            value = to_plain(record.params[key])
            if key in self._categorical:
                index = next((i for i, v in enumerate(self._categorical[key])
                              if _same(v, value)), None)
                if index is None:
                    return None
                value = f"v{index}"
            config[key] = {"value": value}
        return config

    def _engine_run(self, record: RunRecord, *, as_running: bool = False,
                    keep_outside: bool = False) -> Any:
        """A ``sweeps.SweepRun`` for a record: its config, state, score and metric history."""
        sweeps = _import_sweeps()
        config = self._encode(record)
        if config is None:
            if not keep_outside:
                return None
            config = {}
        if record.state not in _WANDB_STATE:
            raise ValueError(f"run {record.name}: unknown state {record.state!r}; states: "
                             f"{', '.join(SWEEP_STATES)}")
        metric = self.spec.metric_name
        summary = {} if record.score is None else {metric: float(record.score)}
        return sweeps.SweepRun(
            name=record.name, config=config, summary_metrics=summary,
            state="running" if as_running else _WANDB_STATE[record.state],
            history=[{metric: float("nan") if v is None else float(v)} for v in record.history])

    # ---------------------------------------------------------------- early termination

    def should_stop_early(self, history: Sequence[RunRecordLike],
                          current: RunRecordLike) -> bool:
        """Whether hyperband (``early_terminate``) stops ``current`` now, given all runs.

        ``current.history`` is its metric per epoch so far; ``history`` may include an older
        copy of it, which is replaced by ``current``.
        """
        if self.spec.early_terminate is None:
            return False
        sweeps = _import_sweeps()
        now = as_record(current)
        others = [as_record(r) for r in history]
        runs = [self._engine_run(r, keep_outside=True) for r in others if r.name != now.name]
        runs.append(self._engine_run(now, as_running=True, keep_outside=True))
        if not any(math.isfinite(v) for v in now.history if v is not None):
            return False
        stopped = sweeps.stop_runs(self._config, runs, validate=False)
        return any(run.name == now.name for run in stopped)
