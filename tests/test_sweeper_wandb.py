"""The W&B boundary: a W&B server (faked at the narrowest seam), `wandb agent`, the tutorial.

No W&B server runs here. The online path is tested with ``FakeServer`` standing in for the
three server calls of :class:`knowit_app.sweeps.controllers.ServerApi` (create the sweep,
register an agent, heartbeat for commands); it proposes runs with W&B's own ``sweeps`` engine,
as the server's controller does. Everything else is real: Hydra, training, and W&B offline
runs on disk (``WANDB_MODE=offline``).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from helpers import checkpoints

TINY = ["data.limit=5", "arch.width=16", "trainer.max_epochs=1"]


class FakeServer:
    """Stands in for a W&B server's sweep API; records every call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.config: dict = {}
        self.assigned: list[tuple[str, dict]] = []

    def create_sweep(self, config, project, entity):
        self.calls.append(("create_sweep", project, entity))
        self.config = config
        return "fakesweep1"

    def register_agent(self, sweep_id, project, entity):
        self.calls.append(("register_agent", sweep_id, project))
        return "agent-7"

    def heartbeat(self, agent_id, run_states):
        import sweeps

        self.calls.append(("heartbeat", agent_id, dict(run_states)))
        runs = [sweeps.SweepRun(name=rid, config={k: {"value": v} for k, v in p.items()},
                                state=sweeps.RunState.finished, summary_metrics={})
                for rid, p in self.assigned]
        nxt = sweeps.next_run(self.config, runs, validate=False)
        if nxt is None:
            return [{"type": "exit"}]
        params = {k: v["value"] for k, v in nxt.config.items()}
        run_id = f"srv{len(self.assigned)}"
        self.assigned.append((run_id, params))
        return [{"type": "run", "run_id": run_id,
                 "args": {k: {"value": v} for k, v in params.items()}}]


def run_app_in_process(argv: list[str], cwd: Path, monkeypatch) -> int:
    """Run ``knowit-app <argv>`` in this process (so that a fake can be patched in)."""
    from hydra.core.global_hydra import GlobalHydra

    from knowit_app.app import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["knowit-app", *argv])
    GlobalHydra.instance().clear()
    try:
        main()
        return 0
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        GlobalHydra.instance().clear()


def test_online_mode_takes_runs_from_the_server(tmp_path, monkeypatch):
    from knowit_app.sweeps import controllers

    fake = FakeServer()
    monkeypatch.setattr(controllers, "server_api", lambda: fake)
    monkeypatch.setenv("WANDB_MODE", "offline")  # no server to upload to: keep runs on disk
    monkeypatch.setenv("WANDB_SILENT", "true")
    code = run_app_in_process(["-m", "model_name=online", "sweep=tutorial_grid",
                               "hydra.sweeper.mode=online", "hydra.sweeper.project=proj",
                               "hydra.sweeper.entity=team", "hydra.sweeper.count=2", *TINY],
                              tmp_path, monkeypatch)
    assert code == 0
    assert fake.calls[0] == ("create_sweep", "proj", "team")
    assert fake.config["parameters"]["arch.dropout"] == {"values": [0.0, 0.2, 0.5]}
    assert ("register_agent", "fakesweep1", "proj") in fake.calls
    sweep_dir = tmp_path / "outputs/models/online/sweeps/my_sweep_name"
    offline = sorted((sweep_dir / "wandb").glob("offline-run-*"))
    assert sorted(p.name.rsplit("-", 1)[1] for p in offline) == ["srv0", "srv1"]
    for _run_id, params in fake.assigned:
        name = (f"batch_size_{params['data.batch_size']}-dropout_{params['arch.dropout']}-"
                f"learning_rate_{params['trainer.learning_rate']}")
        assert len(checkpoints(sweep_dir / name)) == 1
    assert "WANDB_SWEEP_ID" not in os.environ


def test_continuing_a_server_sweep_does_not_create_one(tmp_path, monkeypatch):
    from knowit_app.sweeps import controllers

    fake = FakeServer()
    fake.config = yaml.safe_load((Path(__file__).parents[1] / "conf/sweep/tutorial_grid.yaml")
                                 .read_text())
    monkeypatch.setattr(controllers, "server_api", lambda: fake)
    monkeypatch.setenv("WANDB_MODE", "offline")
    code = run_app_in_process(["-m", "model_name=cont", "sweep=tutorial_grid",
                               "hydra.sweeper.sweep_id=existing9", "hydra.sweeper.count=1",
                               *TINY], tmp_path, monkeypatch)
    assert code == 0
    assert not any(c[0] == "create_sweep" for c in fake.calls)
    assert ("register_agent", "existing9", "knowit-app") in fake.calls


@pytest.mark.slow
def test_wandb_agent_command_writes_the_sweep_layout(tmp_path):
    """What `wandb agent` runs for `command: [knowit-app, ${args_no_hyphens}]`."""
    params = {"arch.dropout": 0.2, "data.batch_size": 64, "trainer.learning_rate": 0.01}
    param_path = tmp_path / "params.yaml"
    param_path.write_text(yaml.safe_dump({k: {"value": v} for k, v in params.items()}))
    env = {**os.environ, "WANDB_SWEEP_ID": "agentsweep", "WANDB_RUN_ID": "agentrun1",
           "WANDB_SWEEP_PARAM_PATH": str(param_path), "WANDB_MODE": "offline",
           "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    args = [f"{k}={v}" for k, v in params.items()]
    proc = subprocess.run([sys.executable, "-m", "knowit_app", "model_name=agent_model",
                           "sweep.name=my_sweep", *args, "data.limit=5", "trainer.max_epochs=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "outputs/models/agent_model/sweeps/my_sweep" / \
        "batch_size_64-dropout_0.2-learning_rate_0.01"
    assert len(checkpoints(run_dir)) == 1 and (run_dir / "model_args.yaml").is_file()
    offline = list((tmp_path / "wandb").glob("offline-run-*-agentrun1"))
    assert len(offline) == 1
    data = next(offline[0].glob("*.wandb")).read_bytes()
    assert b"valid_loss" in data and b"epoch" in data


@pytest.mark.slow
def test_knowit_tutorial_runner_recipe(tmp_path, monkeypatch):
    """The KnowIt tutorial's runner(), verbatim in shape, under a W&B agent's environment."""
    import wandb

    from knowit_app import KnowIt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_SWEEP_ID", "tutsweep")
    KI = KnowIt("sweep_exp_dir")
    model_name, sweep_name = "some_sweeped_model", "my_sweep_name"

    def runner(run_id: str, hps: dict, log_to_local: bool) -> str:
        path = tmp_path / f"{run_id}.yaml"
        path.write_text(yaml.safe_dump({k: {"value": v} for k, v in hps.items()}))
        monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(path))
        monkeypatch.setenv("WANDB_RUN_ID", run_id)
        run = wandb.init()
        run.define_metric("*", step_metric="epoch")
        hp_dict = {k: v for k, v in wandb.config.as_dict().items() if not k.startswith("_")}
        run_name = "-".join(f"{key}_{hp_dict[key]}" for key in hp_dict)
        run.name = run_name
        data_args = {'name': 'synth_2', 'task': 'regression',
                     'in_components': ['x1', 'x2', 'x3', 'x4'], 'out_components': ['x5'],
                     'in_chunk': [-32, 0], 'out_chunk': [0, 0],
                     'split_portions': [0.6, 0.2, 0.2], 'batch_size': hp_dict['batch_size'],
                     'split_method': 'instance-random', 'scaling_tag': 'full', 'limit': 5}
        arch_args = {'task': 'regression', 'name': 'MLP',
                     'arch_hps': {'dropout': hp_dict['dropout'], 'width': 16}}
        trainer_args = {'loss_fn': 'mse_loss', 'optim': 'Adam', 'max_epochs': 1,
                        'learning_rate': hp_dict['learning_rate'], 'task': 'regression'}
        sweep_kwargs = {'sweep_name': sweep_name, 'run_name': run_name,
                        'log_to_local': log_to_local}
        KI.train_model(model_name=model_name,
                       kwargs={'data': data_args, 'arch': arch_args, 'trainer': trainer_args},
                       sweep_kwargs=sweep_kwargs)
        run.finish()
        wandb.teardown()
        return run_name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = runner("tut1", {"dropout": 0.2, "batch_size": 64, "learning_rate": 0.01}, True)
        runner("tut2", {"dropout": 0.5, "batch_size": 128, "learning_rate": 0.1}, False)
    sweep_dir = tmp_path / "sweep_exp_dir/models" / model_name / "sweeps" / sweep_name
    assert sorted(p.name for p in sweep_dir.iterdir()) == [kept]
    offline = {p.name.rsplit("-", 1)[1]: p for p in (tmp_path / "wandb").glob("offline-run-*")}
    assert set(offline) == {"tut1", "tut2"}
    assert b"valid_loss" in next(offline["tut2"].glob("*.wandb")).read_bytes()
    result = KI.consolidate_sweep(model_name, sweep_name)
    assert result.run == kept
    model_dir = tmp_path / "sweep_exp_dir/models" / model_name
    assert checkpoints(model_dir)[0].read_bytes() == checkpoints(sweep_dir / kept)[0].read_bytes()


@pytest.mark.slow
def test_hyperband_stops_a_bad_run_and_records_it_stopped(tmp_path):
    """A run far worse than its peers at the first band is stopped, not failed."""
    from knowit_app.api import compose_config
    from knowit_app.experiment.runs import RunResult, write_sweep_config
    from knowit_app.experiment.sweep_state import RunRecord, SweepState
    from knowit_app.sweeps.job import run_sweep_job

    sweep_dir = tmp_path / "sweep"
    write_sweep_config(sweep_dir, {
        "name": "hb", "method": "random", "metric": {"name": "valid_loss", "goal": "minimize"},
        "parameters": {"trainer.learning_rate": {"min": 1e-6, "max": 1e-2}},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2}})
    with SweepState(sweep_dir).locked() as data:
        for i in range(6):
            data["runs"].append(RunRecord(
                name=f"good{i}", params={"trainer.learning_rate": 0.01}, state="finished",
                score=0.01, history=[0.02, 0.01], started=0.0, ended=1.0).to_dict())
    cfg = compose_config([f"exp_dir={tmp_path / 'exp'}", *TINY, "trainer.max_epochs=4",
                          "trainer.learning_rate=1e-7"])
    run_dir = sweep_dir / "bad"
    returned = run_sweep_job(cfg, run_dir)
    result = RunResult.read(run_dir)
    assert result.state == "stopped" and returned == result  # the sweeper's score and state
    assert result.epochs < 4


def test_sweeper_plugin_is_import_safe_and_discovered():
    code = ("import sys\n"
            "from hydra.core.plugins import Plugins\n"
            "from hydra.plugins.sweeper import Sweeper\n"
            "names = [p.__name__ for p in Plugins.instance().discover(Sweeper)]\n"
            "assert 'WandbSweeper' in names, names\n"
            "heavy = [m for m in ('wandb', 'torch', 'lightning', 'sweeps') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert "HEAVY []" in proc.stdout


def test_sweeper_pickles_after_setup(tmp_path, monkeypatch):
    """submitit pickles the launcher and what holds it: the set-up sweeper must pickle."""
    import cloudpickle
    from hydra.core.global_hydra import GlobalHydra

    from knowit_app.sweeps import driver

    captured = {}
    original = driver.SweepDriver.sweep

    def sweep(self, arguments):
        captured["blob"] = cloudpickle.dumps(self)
        return original(self, arguments)

    monkeypatch.setattr(driver.SweepDriver, "sweep", sweep)
    code = run_app_in_process(["-m", "model_name=p", "sweep.name=pk", "arch.dropout=0.1,0.2",
                               "hydra.sweeper.count=1",
                               "hydra.sweeper.mode=offline", *TINY], tmp_path, monkeypatch)
    assert code == 0
    clone = pickle.loads(captured["blob"])
    assert clone.options.mode == "offline" and clone.launcher is not None
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _no_agent_env(monkeypatch):
    for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        monkeypatch.delenv(key, raising=False)
