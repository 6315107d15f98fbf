"""Consolidation of a sweep, the atomic model swap under it, and ``knowit-app-consolidate``.

Sweeps are built with the production writers (run_result.json, model_args.yaml, error.txt,
sweep_config.yaml; metrics.csv by Lightning's CSVLogger) and a small fake checkpoint:
consolidation reads files and renames directories, it never trains or loads.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import snapshot, write_metrics

from knowit_app.api import KnowIt
from knowit_app.cli import consolidate as consolidate_cli
from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment import model_dir as swap
from knowit_app.experiment.consolidate import (
    consolidate_sweep,
    rank_runs,
    write_consolidation_record,
)
from knowit_app.experiment.model_dir import publish
from knowit_app.experiment.model_record import save_model_args
from knowit_app.experiment.runs import (
    RunResult,
    failed_result,
    write_error,
    write_sweep_config,
)
from knowit_app.experiment.sweep_state import SweepState
from knowit_app.sweeps.tables import format_table

MODEL_FILES_EXCLUDED = ("sweeps", ".replaced", swap.LOCK_FILE)


def make_run(sweep_dir: Path, name: str, score: float | None, *, state: str = "finished",
             monitor: str = "valid_loss", mode: str = "min", checkpoint: bool = True,
             args: bool = True, result: bool = True, error: bool = False) -> Path:
    """One run directory as a sweep leaves it."""
    run = sweep_dir / name
    run.mkdir(parents=True)
    write_metrics(run, [{"epoch": 0, "step": 10, monitor: score}] if score is not None else [])
    ckpt = None
    if checkpoint:
        ckpt = f"bestmodel-epoch=2-{monitor}={score if score is not None else 0:.2f}.ckpt"
        (run / ckpt).write_bytes(f"weights of {name}".encode())  # a stand-in for torch's file
    if args:
        save_model_args(run, {"run": name})
    if result:
        RunResult(state=state, monitor=monitor, mode=mode, best_score=score,
                  best_checkpoint=ckpt, epochs=3, fit_seconds=1.5, started=0.0,
                  ended=1.5).write(run)
    if error:
        write_error(run, RuntimeError("boom"))
    return run


def make_sweep(exp: Path, runs: dict[str, float | None], *, model: str = "m",
               sweep: str = "s", goal: str | None = None) -> Path:
    sweep_dir = exp / "models" / model / "sweeps" / sweep
    sweep_dir.mkdir(parents=True)
    if goal is not None:
        write_sweep_config(sweep_dir, {"method": "grid", "parameters": {},
                                       "metric": {"name": "valid_loss", "goal": goal}})
    with SweepState(sweep_dir).locked():
        pass  # an empty sweep state, as a sweep starts with
    for name, score in runs.items():
        make_run(sweep_dir, name, score)
    return sweep_dir


def model_files(model_dir: Path) -> dict[str, bytes]:
    """The model's own files (sweeps, backups and the lock excluded), with their bytes."""
    return {k: v for k, v in snapshot(model_dir).items()
            if k.split("/")[0] not in MODEL_FILES_EXCLUDED}


def promoted_weights(model_dir: Path) -> str:
    (ckpt,) = model_dir.glob("bestmodel-*.ckpt")
    return ckpt.read_text()


# --- choosing the run ----------------------------------------------------------------------

def test_best_run_by_minimize_is_copied_and_the_sweep_keeps_it(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"r1": 0.3, "r2": 0.1, "r3": 0.2}, goal="minimize")
    before = snapshot(sweep_dir)
    res = consolidate_sweep(tmp_path, "m", "s")
    model_dir = tmp_path / "models" / "m"
    assert (res.run, res.score, res.monitor, res.goal) == ("r2", 0.1, "valid_loss", "minimize")
    assert res.replaced is None and res.model_dir == model_dir.resolve()
    assert promoted_weights(model_dir) == "weights of r2"
    assert (model_dir / "model_args.yaml").read_text() == "run: r2\n"
    assert (model_dir / "lightning_logs/version_0/metrics.csv").is_file()
    assert json.loads((model_dir / "run_result.json").read_text())["best_score"] == 0.1
    record = json.loads((model_dir / "consolidated_from.json").read_text())
    assert record["sweep"] == "s" and record["run"] == "r2" and record["score"] == 0.1
    assert record["metric"] == "valid_loss" and record["goal"] == "minimize" and record["time"]
    assert snapshot(sweep_dir) == before  # copied, not moved
    # Nothing of the swap's machinery is left behind.
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".")) == [
        swap.LOCK_FILE]


def test_best_run_by_maximize_from_the_sweep_config_and_the_goal_argument(tmp_path):
    make_sweep(tmp_path, {"r1": 0.3, "r2": 0.1, "r3": 0.2}, goal="maximize")
    assert consolidate_sweep(tmp_path, "m", "s").run == "r1"
    res = consolidate_sweep(tmp_path, "m", "s", goal="minimize")  # overrides the config
    assert res.run == "r2" and res.goal == "minimize"


def test_knowits_consolidate_arguments_through_the_api(tmp_path, caplog):
    """KnowIt's ``selection_by_min`` picks the goal; ``wipe_after`` warns and deletes nothing."""
    sweep_dir = make_sweep(tmp_path, {"r1": 0.3, "r2": 0.1, "r3": 0.2})
    before = snapshot(sweep_dir)
    ki = KnowIt(tmp_path)
    assert ki.consolidate_sweep("m", "s", selection_by_min=False).run == "r1"
    with caplog.at_level("WARNING"):
        assert ki.consolidate_sweep("m", "s", True, False, True).run == "r2"
    assert "wipe_after" in caplog.text and snapshot(sweep_dir) == before
    with pytest.raises(ConfigError, match="selection_by_min"):  # a run given by position
        ki.consolidate_sweep("m", "s", "r3")


def test_goal_without_sweep_config_follows_the_checkpoint_mode(tmp_path):
    sweep_dir = make_sweep(tmp_path, {})
    for name, acc in (("a", 0.7), ("b", 0.9), ("c", 0.8)):
        make_run(sweep_dir, name, acc, monitor="valid_acc", mode="max")
    res = consolidate_sweep(tmp_path, "m", "s")
    assert (res.run, res.goal, res.monitor) == ("b", "maximize", "valid_acc")


def test_failed_scoreless_and_unfinished_runs_never_win(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"ok-2": 0.5, "ok-1": 0.4})
    make_run(sweep_dir, "failed", 0.0, state="failed", error=True)
    make_run(sweep_dir, "no-score", None)
    make_run(sweep_dir, "nan-score", math.nan)
    make_run(sweep_dir, "no-ckpt", 0.01, checkpoint=False)
    make_run(sweep_dir, "no-args", 0.01, args=False)
    make_run(sweep_dir, "running", None, result=False)
    make_run(sweep_dir, "killed", None, result=False, error=True)
    (sweep_dir / "wandb" / "offline-run-1").mkdir(parents=True)
    (sweep_dir / "report").mkdir()
    (sweep_dir / ".submitit" / "1").mkdir(parents=True)
    ranking = rank_runs(sweep_dir, "minimize")
    assert [r.name for r in ranking[:2]] == ["ok-1", "ok-2"]
    assert {r.name for r in ranking} == {"ok-1", "ok-2", "failed", "no-score", "nan-score",
                                         "no-ckpt", "no-args", "running", "killed"}
    states = {r.name: r.state for r in ranking}
    assert states["killed"] == "failed" and states["running"] == "unfinished"
    assert consolidate_sweep(tmp_path, "m", "s").run == "ok-1"
    assert rank_runs(sweep_dir, "maximize")[0].name == "ok-2"


def test_ties_go_to_the_first_run_name(tmp_path):
    make_sweep(tmp_path, {"run-b": 0.2, "run-c": 0.2, "run-a": 0.2, "run-d": 0.3})
    assert consolidate_sweep(tmp_path, "m", "s").run == "run-a"


def test_a_run_named_by_the_user_is_promoted(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"r1": 0.3, "r2": 0.1})
    make_run(sweep_dir, "bad", 0.0, state="failed", error=True)
    res = consolidate_sweep(tmp_path, "m", "s", run="r1")
    assert res.run == "r1" and res.score == 0.3
    assert promoted_weights(tmp_path / "models/m") == "weights of r1"
    record = json.loads((tmp_path / "models/m/consolidated_from.json").read_text())
    assert record["chosen_by"] == "user"
    with pytest.raises(ConfigError, match=r"^run: no run 'r9'.*promotable runs: r2, r1$"):
        consolidate_sweep(tmp_path, "m", "s", run="r9")
    with pytest.raises(ConfigError, match=r"^run: run 'bad' .*cannot be promoted: failed"):
        consolidate_sweep(tmp_path, "m", "s", run="bad")


def test_replaced_model_is_kept_and_sweeps_are_untouched(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"r1": 0.3})
    model_dir = tmp_path / "models" / "m"
    consolidate_sweep(tmp_path, "m", "s")
    # What the old model's companion commands left (predictions, interpretations and their
    # pictures) describes the old model: it must leave with it, not sit beside the new one.
    derived = ("predictions", "interpretations", "visualizations")
    for name in derived:
        (model_dir / name).mkdir()
        (model_dir / name / "notes.txt").write_text(f"{name} of r1")
    old = model_files(model_dir)
    make_run(sweep_dir, "r2", 0.05)
    sweeps_before = snapshot(model_dir / "sweeps")
    res = consolidate_sweep(tmp_path, "m", "s")
    assert res.run == "r2" and res.replaced is not None
    for name in derived:
        assert not (model_dir / name).exists()
        assert (res.replaced / name / "notes.txt").read_text() == f"{name} of r1"
    assert res.replaced.parent == (model_dir / ".replaced").resolve()
    assert model_files(res.replaced) == old  # the whole old model, byte for byte
    assert promoted_weights(model_dir) == "weights of r2"
    assert len(list(model_dir.glob("bestmodel-*.ckpt"))) == 1  # no mix of the two
    assert snapshot(model_dir / "sweeps") == sweeps_before


def test_consolidating_again_changes_nothing(tmp_path):
    make_sweep(tmp_path, {"r1": 0.3, "r2": 0.1})
    consolidate_sweep(tmp_path, "m", "s")
    before = snapshot(tmp_path / "models/m")
    res = consolidate_sweep(tmp_path, "m", "s")
    assert not res.changed and res.replaced is None and res.run == "r2"
    assert snapshot(tmp_path / "models/m") == before


def test_missing_sweep_lists_the_sweeps_that_exist(tmp_path):
    make_sweep(tmp_path, {"r1": 0.3}, sweep="first")
    make_sweep(tmp_path, {"r1": 0.3}, sweep="second")
    with pytest.raises(ConfigError, match=r"^sweep: no sweep 'nope' .*sweeps there: first, "
                                          r"second$"):
        consolidate_sweep(tmp_path, "m", "nope")
    with pytest.raises(ConfigError, match=r"^model_name: no model 'x' .*with sweeps: m$"):
        consolidate_sweep(tmp_path, "x", "first")
    with pytest.raises(ConfigError, match="^goal:"):
        consolidate_sweep(tmp_path, "m", "first", goal="best")


def test_a_sweep_with_no_finished_run_is_an_error(tmp_path):
    sweep_dir = make_sweep(tmp_path, {})
    make_run(sweep_dir, "a", 0.1, state="failed", error=True)
    make_run(sweep_dir, "b", None, result=False)
    with pytest.raises(KnowitError, match=r"no finished run .*\(2 runs; 1 run: failed; 1 run: "
                                          r"unfinished\)") as info:
        consolidate_sweep(tmp_path, "m", "s")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "models/m/model_args.yaml").exists()


def test_a_thousand_runs_rank_every_one_and_the_failed_never_win(tmp_path):
    runs = {f"run-{i:04d}": 1.0 + ((i * 7919) % 1000) / 1000 for i in range(1000)}
    sweep_dir = make_sweep(tmp_path, runs)
    for i in range(0, 1000, 50):  # the best score of all, 1.0 at run-0000, is among these
        failed_result(0.0, 0.0).write(sweep_dir / f"run-{i:04d}")
    best = min((s, n) for n, s in runs.items() if int(n[4:]) % 50)[1]
    res = consolidate_sweep(tmp_path, "m", "s")
    assert res.run == best and len(res.ranking) == 1000
    assert [r.state for r in res.ranking[-20:]] == ["failed"] * 20


def test_format_table_shows_the_best_rows_and_counts_the_rest(tmp_path):
    sweep_dir = make_sweep(tmp_path, {f"r{i:02d}": i / 100 for i in range(12)})
    make_run(sweep_dir, "zz-failed", None, state="failed")
    text = format_table(rank_runs(sweep_dir, "minimize"), limit=3)
    lines = text.splitlines()
    assert lines[0].split() == ["rank", "run", "state", "valid_loss", "epochs", "fit_s"]
    assert [ln.split()[:2] for ln in lines[1:4]] == [["1", "r00"], ["2", "r01"], ["3", "r02"]]
    assert lines[-1] == "... 10 more; 12 of 13 runs can be promoted"


# --- the command ---------------------------------------------------------------------------

def test_cli_prints_ranking_promotion_and_backup(tmp_path, capsys, monkeypatch):
    make_sweep(tmp_path / "outputs", {f"r{i:02d}": (i + 1) / 100 for i in range(15)})
    monkeypatch.chdir(tmp_path)  # exp_dir defaults to outputs, relative to the working directory
    assert consolidate_cli.main(["model_name=m", "sweep=s", "run=r05"]) == 0
    assert consolidate_cli.main(["model_name=m", "sweep=s"]) == 0
    out = capsys.readouterr().out.split("sweep 's'")[-1]
    assert ": 15 runs, ranked by valid_loss (minimize)" in out
    rows = [ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0].isdigit()]
    assert [r[1] for r in rows] == [f"r{i:02d}" for i in range(10)]  # the top 10 only
    assert "promoted run 'r00' (valid_loss=0.01) into outputs/models/m" in out
    assert "the model it replaced is kept in outputs/models/m/.replaced/" in out


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys):
    make_sweep(tmp_path, {"r1": 0.1}, sweep="real")
    cases = [
        (["model_name=m", "sweep=nope", f"exp_dir={tmp_path}"], "error: sweep: no sweep 'nope'"),
        (["model_name=m", "sweep=real", f"exp_dir={tmp_path}", "run=r2"], "error: run: no run"),
        (["model_name=m"], "error: sweep: missing"),
        (["model_name=m", "sweep=real", "colour=red"], "error: colour: unknown argument"),
        (["model_name=m", "sweep=real", f"exp_dir={tmp_path}", "goal=up"], "error: goal:"),
    ]
    for argv, expected in cases:
        assert consolidate_cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(expected) and err.count("\n") == 1, err
    assert consolidate_cli.main(["--help"]) == 0
    assert "usage: knowit-app-consolidate" in capsys.readouterr().out


def test_console_script_runs_without_torch(tmp_path):
    make_sweep(tmp_path, {"r1": 0.2, "r2": 0.1})
    code = ("import sys; from knowit_app.cli.consolidate import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules and 'lightning' not in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "model_name=m", "sweep=s",
                           f"exp_dir={tmp_path}", "goal=max"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "promoted run 'r1'" in proc.stdout


# --- the atomic swap -----------------------------------------------------------------------

def write_model(directory: Path, tag: str, ckpt: str) -> None:
    """A full model directory's files; every file's bytes name ``tag``."""
    directory.mkdir(parents=True, exist_ok=True)
    write_metrics(directory, [{"epoch": 0, f"{tag}_loss": 0.5}])
    (directory / ".hydra").mkdir(exist_ok=True)
    (directory / ".hydra" / "config.yaml").write_text(f"tag: {tag}\n")  # Hydra's file
    (directory / ckpt).write_text(f"{tag} weights")
    save_model_args(directory, {"tag": tag})
    RunResult(state="finished", monitor=f"{tag}_loss", mode="min", best_score=0.5,
              best_checkpoint=ckpt, epochs=1, fit_seconds=1.0, started=0.0,
              ended=1.0).write(directory)
    (directory / "app.log").write_text(f"{tag} log\n")


@pytest.fixture()
def swap_scene(tmp_path):
    """A model dir with an old model and a sweep, and a staged new model beside it."""
    model_dir = tmp_path / "models" / "m"
    write_model(model_dir, "old", "bestmodel-epoch=1-valid_loss=0.50.ckpt")
    write_consolidation_record(model_dir, {"run": "old"})
    make_run(model_dir / "sweeps" / "s", "r1", 0.2)
    staged = tmp_path / "models" / ".staging" / "m-1"
    write_model(staged, "new", "bestmodel-epoch=3-valid_loss=0.10.ckpt")
    return model_dir, staged, model_files(model_dir), snapshot(staged), \
        snapshot(model_dir / "sweeps")


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from knowit_app.experiment import model_dir as swap
    mode, model_dir, staged, kill_at = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    def hook(step, what):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    swap.step_hook = hook
    if mode == "swap":
        swap.swap_in(model_dir, Path(staged))
    elif mode == "consolidate":
        from knowit_app.experiment.consolidate import consolidate_sweep
        consolidate_sweep(model_dir.parent.parent, model_dir.name, "s")
    else:
        swap.recover(model_dir)
""")


def run_killed(mode: str, model_dir: Path, staged: Path | str, kill_at: int) -> bool:
    """Run a swap (or a recovery) in a child killed before its step ``kill_at``; killed?"""
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, mode, str(model_dir), str(staged),
                           str(kill_at)], capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, -9), proc.stderr
    return proc.returncode == -9


def assert_old_or_new(model_dir, staged, old, new, sweeps) -> str:
    """The model dir holds exactly the old model or exactly the new one; nothing is lost."""
    assert not (model_dir / swap.JOURNAL).exists()
    assert not [p for p in model_dir.iterdir() if p.name.startswith((".incoming", ".staging"))]
    assert snapshot(model_dir / "sweeps") == sweeps
    now = model_files(model_dir)
    if now == old:
        assert snapshot(staged) == new  # the new model is back where it was staged
        assert not (model_dir / ".replaced").exists() or not any(
            (model_dir / ".replaced").iterdir())
        return "old"
    assert now == new, sorted(now)
    assert not staged.exists()
    (kept,) = (model_dir / ".replaced").iterdir()
    assert model_files(kept) == old
    return "new"


@pytest.mark.slow
def test_a_kill_at_any_step_of_a_swap_leaves_the_old_or_the_new_model(swap_scene, tmp_path):
    model_dir, staged, old, new, sweeps = swap_scene
    outcomes = []
    work = tmp_path / "work"
    for kill_at in range(1, 200):
        # A fresh copy of the scene for every kill point.
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(tmp_path / "models", work, symlinks=True)
        m, st = work / "m", work / ".staging" / "m-1"
        killed = run_killed("swap", m, st, kill_at)
        swap.recover(m)
        outcomes.append(assert_old_or_new(m, st, old, new, sweeps))
        if not killed:
            break
    else:
        pytest.fail("the swap never finished")
    print(f"\nkilled at {len(outcomes) - 1} steps: {outcomes}")
    assert outcomes[0] == "old" and outcomes[-1] == "new" and len(outcomes) > 15


@pytest.mark.slow
def test_a_kill_during_recovery_is_recovered_too(swap_scene, tmp_path):
    model_dir, staged, old, new, sweeps = swap_scene
    assert run_killed("swap", model_dir, staged, 10)  # in the middle of moving old entries
    for kill_at in range(1, 100):
        if not run_killed("recover", model_dir, "-", kill_at):
            break
    assert assert_old_or_new(model_dir, staged, old, new, sweeps) == "new"


@pytest.mark.slow
def test_a_kill_at_any_step_of_a_consolidation(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"r1": 0.3})
    model_dir = tmp_path / "models" / "m"
    consolidate_sweep(tmp_path, "m", "s")
    old = model_files(model_dir)
    make_run(sweep_dir, "r2", 0.1)
    sweeps = snapshot(model_dir / "sweeps")
    seen = set()
    for kill_at in range(1, 200):
        killed = run_killed("consolidate", model_dir, "-", kill_at)
        swap.recover(model_dir)
        now = model_files(model_dir)
        assert now == old or promoted_weights(model_dir) == "weights of r2"
        assert snapshot(model_dir / "sweeps") == sweeps
        assert not [p for p in model_dir.iterdir()
                    if p.name.startswith((".incoming", ".staging", ".swap.json"))]
        seen.add("old" if now == old else "new")
        if not killed:
            break
        if now != old:  # rolled forward: put the old model back for the next kill point
            (kept,) = (model_dir / ".replaced").iterdir()
            for p in list(model_dir.iterdir()):
                if p.name not in MODEL_FILES_EXCLUDED:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            for p in kept.iterdir():
                os.replace(p, model_dir / p.name)
            kept.rmdir()
    assert seen == {"old", "new"}
    (kept,) = (model_dir / ".replaced").iterdir()
    assert model_files(kept) == old


def test_publish_swaps_in_a_training_and_keeps_the_old_model(swap_scene):
    model_dir, staged, old, new, sweeps = swap_scene
    kept = publish(staged, model_dir, overwrite=True)
    assert model_files(model_dir) == new and not staged.exists()
    assert kept is not None and model_files(kept) == old
    assert snapshot(model_dir / "sweeps") == sweeps
    fresh = model_dir.parent / ".staging" / "m-2"
    write_model(fresh, "newer", "bestmodel-epoch=0-valid_loss=0.90.ckpt")
    first_dir = model_dir.parent / "first"
    assert publish(fresh, first_dir, overwrite=False) is None  # a new model name
    assert model_files(first_dir)["model_args.yaml"] == b"tag: newer\n"


def test_swap_refuses_a_staged_dir_that_would_clobber_the_model_dir(tmp_path):
    model_dir = tmp_path / "m"
    write_model(model_dir, "old", "bestmodel-epoch=1-valid_loss=0.50.ckpt")
    staged = tmp_path / "staged"
    (staged / "sweeps").mkdir(parents=True)
    before = snapshot(model_dir)
    with pytest.raises(KnowitError, match="sweeps"):
        swap.swap_in(model_dir, staged)
    (tmp_path / "empty").mkdir()
    with pytest.raises(KnowitError, match="empty"):
        swap.swap_in(model_dir, tmp_path / "empty")
    assert snapshot(model_dir) == before
