"""The offline sweep report: what W&B's web UI would show, written to ``<sweep>/report/``.

Offline sweeps have no web UI, so :func:`write_report` puts the same insight on disk: learning
curves of every run, a parallel-coordinates figure, parameter importance, ``runs.csv`` and an
``index.html`` that ties them together without any network access.

Importing this package is cheap (no torch, no Lightning; matplotlib and scikit-learn are
imported when a report is written), so the sweep callback and the command line can use it.
"""

from __future__ import annotations

import re
from pathlib import Path

from knowit_app.report.collect import SweepTable, collect_sweep, write_runs_csv

__all__ = ["REPORT_DIR", "SweepTable", "collect_sweep", "write_report"]

REPORT_DIR = "report"
CURVES = ("train_loss", "valid_loss")


def _png_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", metric) + ".png"


def write_report(sweep_dir: Path, out_dir: Path | None = None) -> Path:
    """Write the report of a sweep directory; return the path of its ``index.html``.

    ``out_dir`` defaults to ``<sweep_dir>/report/``. Files are replaced one by one, each
    atomically. Raises ConfigError when ``sweep_dir`` is not a sweep directory.
    """
    from knowit_app.report.html import render_html, write_html
    from knowit_app.report.importance import compute_importance, write_importance_csv
    from knowit_app.report.parallel import plot_parallel
    from knowit_app.report.plots import plot_curves, plot_importance, save

    table = collect_sweep(Path(sweep_dir))
    out = Path(out_dir) if out_dir is not None else table.sweep_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)

    figures: list[tuple[str, str]] = []
    metrics = list(CURVES) + ([table.metric] if table.metric not in CURVES else [])
    for metric in metrics:
        name = _png_name(metric)
        save(plot_curves(table, metric), out / name)
        figures.append((name, f"{metric} per epoch, one line per run; colour = rank by "
                              f"{table.metric} (dark = best), best run thick"))
    save(plot_parallel(table), out / "parallel_coordinates.png")
    figures.append(("parallel_coordinates.png", "parallel coordinates: one axis per swept "
                    f"parameter and {table.metric}; lines coloured by {table.metric}"))
    importance = compute_importance(table)
    save(plot_importance(importance), out / "importance.png")
    figures.append(("importance.png", f"which parameters matter for {table.metric}: random "
                    "forest importance and correlation"))

    write_runs_csv(table, out / "runs.csv")
    write_importance_csv(importance, out / "importance.csv")
    page = render_html(table, importance, figures, ["runs.csv", "importance.csv"])
    return write_html(page, out / "index.html")
