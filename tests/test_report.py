"""The offline sweep report: tables, figures, runs.csv, index.html and ``knowit-app-report``.

Sweeps are built by hand (sweep_config.yaml, sweep_state.json through the state module,
metrics.csv and run_result.json per run), so these tests never train; one test runs a real
tiny sweep and checks that its report is written at the end.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import run_cli

from knowit_app.cli import report as report_cli
from knowit_app.report import collect_sweep, write_report
from knowit_app.report.importance import compute_importance
from knowit_app.report.parallel import plot_parallel
from knowit_app.report.plots import FEATURES_MAX, plot_curves, plot_importance
from knowit_app.sweeps.engine import RunRecord
from knowit_app.sweeps.naming import run_name
from knowit_app.sweeps.state import SweepState

GRID = {"data.batch_size": [64, 128, 256], "arch.dropout": [0.0, 0.2, 0.5],
        "trainer.learning_rate": [0.001, 0.01, 0.1]}
FILES = ("train_loss.png", "valid_loss.png", "parallel_coordinates.png", "importance.png",
         "runs.csv", "index.html")


def write_run(sweep_dir: Path, record: RunRecord, *, epochs: int, metrics: bool = True,
              train: list[float] | None = None, valid: list[float] | None = None) -> None:
    """One run directory: metrics.csv (train and valid on separate rows), run_result.json."""
    run = sweep_dir / record.name
    run.mkdir(parents=True)
    if metrics:
        logs = run / "lightning_logs" / "version_0"
        logs.mkdir(parents=True)
        lines = ["epoch,step,train_loss,valid_loss"]
        for e in range(epochs):
            lines.append(f"{e},{10 * e + 9},,{valid[e] if valid else ''}")
            lines.append(f"{e},{10 * e + 9},{train[e] if train else ''},")
        (logs / "metrics.csv").write_text("\n".join(lines) + "\n")
    if record.state == "failed":
        (run / "error.txt").write_text("Traceback (most recent call last):\n  File x\n"
                                       "RuntimeError: CUDA out of memory\n")
    (run / "run_result.json").write_text(json.dumps({
        "state": record.state, "monitor": "valid_loss", "mode": "min",
        "best_score": record.score, "best_checkpoint": None,
        "epochs": epochs if record.state != "failed" else 0,
        "fit_seconds": 12.5 if record.state != "failed" else 0.0, "started": 0, "ended": 1}))


def make_sweep(root: Path, grid: dict[str, list] | None = None, *, name: str = "s",
               goal: str = "minimize", specs: dict[str, dict] | None = None,
               failed: tuple[int, ...] = (), stopped: tuple[int, ...] = (),
               no_metrics: tuple[int, ...] = (), epochs: int = 8) -> Path:
    """A finished sweep over ``grid`` (or ``specs``); runs by index may fail, stop, lack logs."""
    import itertools

    grid = GRID if grid is None and specs is None else (grid or {})
    specs = specs or {k: {"values": v} for k, v in grid.items()}
    sweep_dir = root / "outputs" / "models" / "m" / "sweeps" / name
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep_config.yaml").write_text(yaml.safe_dump({
        "name": name, "method": "grid", "metric": {"name": "valid_loss", "goal": goal},
        "parameters": specs}, sort_keys=False))
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    records, taken = [], set()
    for i, params in enumerate(points):
        lr = float(params.get("trainer.learning_rate", 0.01))
        base = 0.2 + 0.3 * abs(math.log10(lr) + 2) + 0.2 * float(params.get("arch.dropout", 0))
        base += 0.0005 * float(params.get("data.batch_size", 64)) + 0.01 * i / len(points)
        n = 3 if i in stopped else (2 if i in failed else epochs)
        valid = [base * (1 + 2.0 * math.exp(-0.6 * e)) for e in range(n)]
        train = [v * 1.3 + 0.05 for v in valid]
        state = "failed" if i in failed else "stopped" if i in stopped else "finished"
        score = None if state == "failed" else min(valid)
        name_i = run_name(params, taken)
        taken.add(name_i)
        record = RunRecord(name=name_i, params=params, state=state, score=score,
                           history=valid if state != "failed" else [],
                           error="RuntimeError: CUDA out of memory" if state == "failed"
                           else None, started=float(i), ended=float(i) + 1)
        records.append(record)
        write_run(sweep_dir, record, epochs=n, metrics=i not in no_metrics, train=train,
                  valid=valid)
    with SweepState(sweep_dir).locked() as data:
        data["runs"] = [r.to_dict() for r in records]
    return sweep_dir


def labelled_lines(figure) -> list:
    return [line for ax in figure.axes for line in ax.get_lines()
            if not line.get_label().startswith("_")]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory) -> Path:
    """The tutorial's 27-run grid: two failed runs (one without logs), two stopped."""
    root = tmp_path_factory.mktemp("grid")
    return make_sweep(root, failed=(5, 20), stopped=(9, 14), no_metrics=(20,))


@pytest.fixture(scope="module")
def grid_report(grid_sweep) -> Path:
    return write_report(grid_sweep)


# --- the files --------------------------------------------------------------------------------

def test_every_file_is_written_beside_index_html(grid_sweep, grid_report):
    assert grid_report == grid_sweep / "report" / "index.html"
    for name in FILES:
        path = grid_sweep / "report" / name
        assert path.is_file() and path.stat().st_size > 0, name
    for png in grid_report.parent.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(grid_report.parent.glob(".*tmp"))


def test_runs_csv_matches_the_sweep_state(grid_sweep, grid_report):
    records = SweepState(grid_sweep).records()
    rows = read_rows(grid_report.parent / "runs.csv")
    assert [r["name"] for r in rows] == [r.name for r in records]
    for row, record in zip(rows, records, strict=True):
        assert row["state"] == record.state
        if record.score is None:
            assert row["score"] == "" and row["rank"] == ""
        else:
            assert float(row["score"]) == record.score
        for key, value in record.params.items():
            assert float(row[key]) == value
        if record.state == "failed":
            assert row["error"] == "RuntimeError: CUDA out of memory"
        else:
            assert row["error"] == "" and row["fit_seconds"] == "12.500"
            assert int(row["epochs"]) == len(record.history)
    scored = sorted((r for r in records if r.score is not None), key=lambda r: r.score)
    assert [row["name"] for row in sorted((r for r in rows if r["rank"]),
                                          key=lambda r: int(r["rank"]))] == \
        [r.name for r in scored]


def test_html_is_offline_and_links_only_files_beside_it(grid_report):
    text = grid_report.read_text()
    links = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)["\']', text)
    assert {"train_loss.png", "valid_loss.png", "parallel_coordinates.png",
            "importance.png", "runs.csv"} <= set(links)
    for link in links:
        assert "//" not in link and ":" not in link and not link.startswith("/"), link
        assert (grid_report.parent / link).is_file(), link
    assert not re.search(r"https?://", text)
    assert "<link" not in text and not re.search(r"<script[^>]*src", text)


def test_html_summary_and_marked_runs(grid_sweep, grid_report):
    text = grid_report.read_text()
    table = collect_sweep(grid_sweep)
    best = table.best
    assert best is not None and best.name in text
    assert f"{best.score:.6g}" in text
    assert "<h1>Sweep s</h1>" in text
    assert "grid" in text and "valid_loss</code> (minimize)" in text
    assert "23 finished" in text and "2 failed" in text and "2 stopped" in text
    rows = re.findall(r'<tr class="([^"]*)">(.*?)</tr>', text, re.S)
    classes = [c for c, _ in rows]
    assert classes.count("failed") == 2 and classes.count("stopped") == 2
    assert sum("best" in c.split() for c in classes) == 1
    assert rows[0][0] == "finished best" and best.name in rows[0][1]  # best first
    assert all("CUDA out of memory" in body for c, body in rows if c == "failed")


# --- the figures ------------------------------------------------------------------------------

def test_curves_have_one_line_per_run_with_the_best_on_top(grid_sweep):
    table = collect_sweep(grid_sweep)
    for metric in ("train_loss", "valid_loss"):
        lines = labelled_lines(plot_curves(table, metric))
        assert sorted(line.get_gid() for line in lines) == \
            sorted(r.name for r in table.runs if r.name != table.runs[20].name)
        best = next(line for line in lines if line.get_gid() == table.best.name)
        # epochs from 1, as the training log counts them (metrics.csv counts from 0)
        assert list(best.get_xdata()) == [e + 1 for e, _ in table.best.curves[metric]]
        assert best.get_linewidth() > max(line.get_linewidth() for line in lines
                                          if line is not best)
        assert best.get_zorder() == max(line.get_zorder() for line in lines)
        styles = {line.get_gid(): line.get_linestyle() for line in lines}
        assert styles[table.runs[5].name] == "--"  # failed: dashed
        assert styles[table.runs[9].name] == ":"  # stopped: dotted
        figure = plot_curves(table, metric)
        legend = figure.axes[0].get_legend()
        assert len(legend.get_texts()) == 26
        assert "best" in legend.get_texts()[0].get_text()
        notes = " ".join(t.get_text() for t in figure.axes[0].texts)
        assert table.runs[20].name[:30] in notes  # the run without metrics.csv is named


def test_parallel_coordinates_axes_and_scales(grid_sweep):
    table = collect_sweep(grid_sweep)
    by_key = {p.key: p for p in table.params}
    assert by_key["trainer.learning_rate"].log and by_key["trainer.learning_rate"].kind == \
        "numeric"
    assert not by_key["data.batch_size"].log and not by_key["arch.dropout"].log
    figure = plot_parallel(table)
    texts = [t.get_text() for t in figure.axes[0].texts]
    for title in ("batch_size", "dropout", "learning_rate\n(log scale)", "valid_loss"):
        assert title in texts
    for tick in ("64", "128", "256", "0.001", "0.01", "0.1", "no score"):
        assert tick in texts
    lines = [line for line in figure.axes[0].get_lines() if line.get_gid()]
    assert len(lines) == 27
    ys = {line.get_gid(): list(line.get_ydata()) for line in lines}
    lr = [ys[r.name][2] for r in table.runs if r.params["trainer.learning_rate"] == 0.01]
    # the middle of a log axis; runs through one value fan out a little, best on top
    assert lr and all(y == pytest.approx(0.5, abs=0.03) for y in lr)
    assert ys[table.best.name][2] == max(lr)
    assert len(figure.axes) == 2  # and the colorbar


def test_categorical_and_log_distribution_parameters(tmp_path):
    specs = {"arch": {"values": ["mlp", "cnn", "lstm"]}, "trainer.use_bias": {"values": [True,
                                                                                       False]},
             "trainer.learning_rate": {"distribution": "log_uniform_values", "min": 1e-4,
                                       "max": 1e-2},
             "arch.width": {"value": 16}, "trainer.clip": {"values": [None, 1.0]}}
    grid = {"arch": ["mlp", "cnn", "lstm"], "trainer.use_bias": [True, False],
            "trainer.learning_rate": [0.0002, 0.003], "arch.width": [16],
            "trainer.clip": [None, 1.0]}
    sweep_dir = make_sweep(tmp_path, grid, specs=specs, failed=(1,))
    table = collect_sweep(sweep_dir)
    by_key = {p.key: p for p in table.params}
    assert by_key["arch"].kind == "categorical" and by_key["arch"].categories == \
        ["mlp", "cnn", "lstm"]
    assert by_key["trainer.use_bias"].kind == "categorical"
    assert by_key["trainer.learning_rate"].log  # its distribution, not its values' span
    assert not by_key["arch.width"].swept
    assert by_key["trainer.clip"].kind == "categorical"  # null is a category of its own
    assert by_key["trainer.clip"].categories == [None, 1.0]
    assert [p.key for p in table.swept] == ["arch", "trainer.use_bias", "trainer.learning_rate",
                                            "trainer.clip"]
    texts = [t.get_text() for t in plot_parallel(table).axes[0].texts]
    assert {"mlp", "cnn", "lstm", "true", "false", "null", "1.0", "no score"} <= set(texts)
    result = compute_importance(table)
    assert result.message is None
    names = {f.name for f in result.features}
    assert {"arch=mlp", "arch=cnn", "arch=lstm", "use_bias=true", "learning_rate"} <= names
    assert sum(f.importance for f in result.features) == pytest.approx(1.0)
    index = write_report(sweep_dir)
    rows = read_rows(index.parent / "runs.csv")
    assert rows[0]["arch"] == "mlp" and rows[0]["trainer.use_bias"] == "true"
    assert rows[0]["arch.width"] == "16" and rows[0]["trainer.clip"] == "null"
    assert rows[1]["trainer.clip"] == "1.0"


def test_importance_is_seeded_and_follows_the_metric(grid_sweep):
    table = collect_sweep(grid_sweep)
    first, second = compute_importance(table), compute_importance(table)
    assert [(f.name, f.importance) for f in first.features] == \
        [(f.name, f.importance) for f in second.features]
    assert first.runs == 25 and first.features[0].name == "learning_rate"
    figure = plot_importance(first)
    importance_ax, correlation_ax = figure.axes[:2]
    shown = first.features[:len(importance_ax.patches)]
    assert len(shown) == min(len(first.features), FEATURES_MAX) == 3  # a bar per feature
    assert [t.get_text() for t in importance_ax.get_yticklabels()] == [f.name for f in shown]
    assert [bar.get_width() for bar in importance_ax.patches] == \
        pytest.approx([f.importance for f in shown])
    assert [bar.get_width() for bar in correlation_ax.patches] == \
        pytest.approx([f.correlation or 0.0 for f in shown])
    assert importance_ax.patches[0].get_width() == max(b.get_width()
                                                       for b in importance_ax.patches)


def test_a_single_run_and_too_few_runs_for_importance(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.1]},
                           specs={"arch.dropout": {"values": [0.1, 0.3]}})
    index = write_report(sweep_dir)
    for name in FILES:
        assert (index.parent / name).is_file()
    table = collect_sweep(sweep_dir)
    assert len(labelled_lines(plot_curves(table, "valid_loss"))) == 1
    result = compute_importance(table)
    assert result.features == [] and "not enough runs" in result.message
    texts = [t.get_text() for ax in plot_importance(result).axes for t in ax.texts]
    assert any("not enough runs" in t for t in texts)
    assert [p.key for p in table.swept] == ["arch.dropout"]  # two values in the spec


def test_all_runs_failed_and_maximize(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.1, 0.2]}, goal="maximize",
                           failed=(0, 1), no_metrics=(0, 1))
    index = write_report(sweep_dir)
    table = collect_sweep(sweep_dir)
    assert table.best is None and table.goal == "maximize"
    assert "none (no run finished with a score)" in index.read_text()
    assert labelled_lines(plot_curves(table, "valid_loss")) == []
    assert [r["state"] for r in read_rows(index.parent / "runs.csv")] == ["failed", "failed"]


def test_maximize_ranks_the_highest_score_first(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.0, 0.2, 0.5]}, goal="maximize")
    table = collect_sweep(sweep_dir)
    assert table.best.name == max(table.runs, key=lambda r: r.score).name


def test_runs_missing_from_the_state_are_read_from_their_files(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.0, 0.2]})
    (sweep_dir / "sweep_state.json").write_text("{}")  # a lost state
    args = sweep_dir / "dropout_0.0" / "model_args.yaml"
    args.write_text("arch:\n  dropout: 0.0\n")
    table = collect_sweep(sweep_dir)
    assert [(r.name, r.state, r.params) for r in table.runs] == \
        [("dropout_0.0", "finished", {"arch.dropout": 0.0}),
         ("dropout_0.2", "finished", {})]
    assert table.runs[0].curves["valid_loss"]


def test_import_is_light():
    code = ("import sys, knowit_app.report, knowit_app.cli.report; "
            "print(sorted(m for m in ('torch', 'lightning', 'matplotlib', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --- the command line -------------------------------------------------------------------------

def test_cli_writes_the_report(tmp_path, monkeypatch, capsys):
    make_sweep(tmp_path, {"arch.dropout": [0.0, 0.2, 0.5]}, name="small")
    monkeypatch.chdir(tmp_path)
    assert report_cli.main(["model_name=m", "sweep=small"]) == 0
    out = capsys.readouterr().out
    assert "outputs/models/m/sweeps/small/report/index.html" in out
    assert (tmp_path / "outputs/models/m/sweeps/small/report/index.html").is_file()


@pytest.mark.parametrize("argv, key", [
    (["model_name=m", "sweep=nope"], "sweep: no sweep 'nope'"),
    (["model_name=other", "sweep=small"], "model_name: no sweeps of model 'other'"),
    (["model_name=m"], "sweep: missing"),
    (["model_name=m", "sweep=small", "colour=red"], "unknown argument 'colour=red'"),
    (["model_name=m", "sweep=../x"], "is not a usable directory name"),
])
def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, key):
    make_sweep(tmp_path, {"arch.dropout": [0.0, 0.2]}, name="small")
    monkeypatch.chdir(tmp_path)
    assert report_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and key in err and "\n" not in err
    if "nope" in key:
        assert "sweeps there: small" in err


def test_cli_refuses_a_directory_that_is_no_sweep(tmp_path, capsys):
    (tmp_path / "outputs/models/m/sweeps/empty").mkdir(parents=True)
    assert report_cli.main([f"exp_dir={tmp_path / 'outputs'}", "model_name=m",
                            "sweep=empty"]) == 2
    assert "is not a sweep directory" in capsys.readouterr().err


# --- the end of a sweep -----------------------------------------------------------------------

def _end_of_sweep(sweep_dir: Path, **options) -> None:
    from omegaconf import OmegaConf

    from knowit_app.sweeps.callback import ConsolidateSweep

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}},
                               "exp_dir": str(sweep_dir.parents[3]), "model_name": "m"})
    ConsolidateSweep(**options).on_multirun_end(config)


def test_the_callback_reports_a_sweep_whose_runs_all_failed(tmp_path, caplog):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.1, 0.2]}, failed=(0, 1))
    with caplog.at_level("INFO", logger="knowit_app.sweep"):
        _end_of_sweep(sweep_dir)
    assert "no consolidation" in caplog.text and "sweep report: " in caplog.text
    assert (sweep_dir / "report" / "index.html").is_file()


def test_a_failing_report_is_a_warning_not_a_failed_sweep(tmp_path, caplog):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.1, 0.2]})
    (sweep_dir / "sweep_config.yaml").write_text("metric: [unclosed\n")
    with caplog.at_level("WARNING", logger="knowit_app.sweep"):
        _end_of_sweep(sweep_dir, enabled=False)
    assert "no sweep report: KnowitError" in caplog.text
    assert "knowit-app-report" in caplog.text
    assert not (sweep_dir / "report" / "index.html").exists()


def test_the_report_can_be_switched_off(tmp_path):
    sweep_dir = make_sweep(tmp_path, {"arch.dropout": [0.1, 0.2]})
    _end_of_sweep(sweep_dir, enabled=False, report=False)
    assert not (sweep_dir / "report").exists()


@pytest.mark.slow
def test_a_real_sweep_ends_with_its_report_and_evaluation(tmp_path):
    """With hydra.callbacks.consolidate.evaluate=true the consolidated model is also scored."""
    proc = run_cli(["-m", "sweep=tutorial_grid", "model_name=m", "hydra.sweeper.count=1",
                    "data.limit=5", "arch.width=16", "trainer.max_epochs=1",
                    "hydra.callbacks.consolidate.evaluate=true"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    evaluation = tmp_path / "outputs/models/m/lightning_logs/evaluation/metrics.csv"
    header = evaluation.read_text().splitlines()[0].split(",")
    assert {"result_train_loss", "result_valid_loss", "result_eval_loss"} <= set(header)
    report = tmp_path / "outputs/models/m/sweeps/my_sweep_name/report"
    for name in FILES:
        assert (report / name).is_file(), name
    rows = read_rows(report / "runs.csv")
    assert len(rows) == 1 and rows[0]["state"] == "finished" and rows[0]["rank"] == "1"
    assert "sweep report" in proc.stderr + proc.stdout
    proc = run_cli(["model_name=m", "sweep=my_sweep_name"], cwd=tmp_path,
                   module="knowit_app.cli.report")
    assert proc.returncode == 0 and "report/index.html" in proc.stdout, proc.stderr
