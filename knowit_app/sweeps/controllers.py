"""Who proposes the next run: W&B's open-source engine offline, or a W&B server online.

Both answer ``propose(history)`` with the next run's values (plus the overrides that make the
job log into the right W&B run), or None when the search is over.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from knowit_app.errors import ConfigError
from knowit_app.sweeps.engine import LocalEngine, RunRecord
from knowit_app.sweeps.naming import override_value
from knowit_app.sweeps.spec import SweepSpec

if TYPE_CHECKING:
    from hydra_plugins.knowit_wandb_sweeper.config import WandbSweeperConf

log = logging.getLogger("knowit_app.sweep")


class Controller(Protocol):
    wandb_mode: str
    project: str

    def propose(self, history: Sequence[RunRecord]) -> tuple[dict[str, Any], list[str]] | None:
        ...

    def tell(self, record: RunRecord, update: dict[str, Any]) -> None:
        ...


class LocalController:
    """W&B's ``sweeps`` engine in this process; every run is a W&B offline run."""

    wandb_mode = "offline"

    def __init__(self, spec: SweepSpec, seed: int, project: str) -> None:
        self.engine = LocalEngine(spec, seed)
        self.project = project

    def propose(self, history: Sequence[RunRecord]) -> tuple[dict[str, Any], list[str]] | None:
        params = self.engine.propose(history)
        if params is None:
            log.info("the search is over: %s", self.engine.done_reason(history))
            return None
        return params, []

    def tell(self, record: RunRecord, update: dict[str, Any]) -> None:
        """The engine reads results from the state file; nothing to push."""


class ServerApi(Protocol):
    """The three W&B server calls a sweep needs: the seam tests replace with a fake."""

    def create_sweep(self, config: dict[str, Any], project: str, entity: str | None) -> str:
        ...

    def register_agent(self, sweep_id: str, project: str, entity: str | None) -> str:
        ...

    def heartbeat(self, agent_id: str, run_states: dict[str, bool]) -> list[dict[str, Any]]:
        ...


class WandbServerApi:
    """:class:`ServerApi` over wandb's own client (needs a W&B server and an API key).

    The only module that calls W&B's private API: ``wandb.apis.public.sweeps._upsert_sweep``,
    ``_register_agent`` and ``_agent_heartbeat``. wandb 0.31 has no public equivalent that
    works without ``wandb.agent`` (which runs trials in threads and owns the process); these are
    the calls ``wandb.sweep`` and the agent make themselves.
    """

    def __init__(self) -> None:
        import wandb

        self.api = wandb.Api()

    def create_sweep(self, config: dict[str, Any], project: str, entity: str | None) -> str:
        from wandb.apis.public.sweeps import _upsert_sweep

        sweep, warnings = _upsert_sweep(self.api, config, project=project, entity=entity)
        for warning in warnings:
            log.warning("W&B: %s", warning)
        return str(sweep["name"])

    def register_agent(self, sweep_id: str, project: str, entity: str | None) -> str:
        from wandb.apis.public.sweeps import _register_agent

        agent = _register_agent(self.api, socket.gethostname(), sweep_id=sweep_id,
                                project=project, entity=entity)
        return str(agent["id"])

    def heartbeat(self, agent_id: str, run_states: dict[str, bool]) -> list[dict[str, Any]]:
        from wandb.apis.public.sweeps import _agent_heartbeat

        return list(_agent_heartbeat(self.api, agent_id, {}, run_states))


def server_api() -> ServerApi:
    """The W&B server client; tests swap this function for a fake server."""
    return WandbServerApi()


class ServerController:
    """A W&B server's sweep controller proposes runs; each job logs into the run it assigned."""

    wandb_mode = "online"

    def __init__(self, spec: SweepSpec, project: str, entity: str | None,
                 sweep_id: str | None, api: ServerApi, poll_s: float = 2.0,
                 wait_s: float = 120.0) -> None:
        self.api = api
        self.project = project
        self.entity = entity
        self.sweep_id = sweep_id or api.create_sweep(spec.wandb_config(), project, entity)
        self.agent_id = api.register_agent(self.sweep_id, project, entity)
        self.running: dict[str, bool] = {}
        self.poll_s = poll_s
        self.wait_s = wait_s
        log.info("W&B sweep %s (project %s), agent %s", self.sweep_id, project, self.agent_id)

    def propose(self, history: Sequence[RunRecord]) -> tuple[dict[str, Any], list[str]] | None:
        deadline = time.monotonic() + self.wait_s
        while True:
            for command in self.api.heartbeat(self.agent_id, dict(self.running)):
                kind = command.get("type")
                if kind in ("run", "resume"):
                    run_id = str(command["run_id"])
                    params = {k: v.get("value") if isinstance(v, dict) else v
                              for k, v in (command.get("args") or {}).items()}
                    self.running[run_id] = True
                    return params, [f"wandb.run_id={override_value(run_id)}",
                                    f"wandb.sweep_id={override_value(self.sweep_id)}",
                                    f"wandb.entity={override_value(self.entity)}"]
                if kind == "exit":
                    return None
            if time.monotonic() > deadline:
                log.warning("the W&B server proposed no run for %.0f s; stopping", self.wait_s)
                return None
            time.sleep(self.poll_s)

    def tell(self, record: RunRecord, update: dict[str, Any]) -> None:
        """Finished runs report to the server themselves; stop announcing them as running."""
        for override in record.overrides:
            if override.startswith("wandb.run_id="):
                self.running.pop(override.split("=", 1)[1].strip("'\""), None)


def has_wandb_credentials() -> bool:
    """Whether this user could reach a W&B server (an API key in the env or netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        hosts = netrc.netrc().hosts
    except (FileNotFoundError, OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def make_controller(spec: SweepSpec, options: WandbSweeperConf, sweep_dir: Path) -> Controller:
    """Pick the controller for ``hydra.sweeper.mode`` (auto: online with credentials)."""
    from knowit_app.training.wandb_run import DEFAULT_PROJECT

    mode = options.mode
    project = options.project or DEFAULT_PROJECT
    if mode == "auto":
        mode = "online" if has_wandb_credentials() or options.sweep_id else "offline"
    if mode == "offline":
        if options.sweep_id:
            raise ConfigError("hydra.sweeper.sweep_id", "continuing a W&B server sweep needs "
                              "mode=online (or auto with W&B credentials)")
        return LocalController(spec, int(options.seed), project)
    return ServerController(spec, project, options.entity, options.sweep_id, server_api())
