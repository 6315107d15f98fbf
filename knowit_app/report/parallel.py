"""Parallel coordinates: one axis per swept parameter and one for the metric, a line per run.

W&B's parallel-coordinates panel, offline. Grid sweeps send many runs through each value, so
lines fan out around a shared value (best on top) instead of hiding one another; categorical
parameters get one slot per category, numeric ones a linear or log axis.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from knowit_app.report.collect import ParamInfo, RunRow, SweepTable, cell
from knowit_app.report.plots import (
    SPREAD,
    STYLES,
    UNSCORED,
    log_worthy,
    new_figure,
    score_colormap,
    score_text,
    short,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class _Axis:
    """One vertical axis: where a value lies on it (0..1) and its tick labels."""

    def __init__(self, label: str, ticks: list[tuple[float, str]], log: bool = False) -> None:
        self.label = label
        self.ticks = ticks
        self.log = log
        self.place: Any = lambda value: None
        self.spread = 0.0  # how far runs through one value fan out (discrete axes)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _numeric_axis(label: str, values: list[float], bounds: tuple[float, float] | None,
                  log: bool, grid: list[float] | None = None, fan_out: bool = True) -> _Axis:
    """A linear or log axis over ``bounds``; ticks at the values when there are few of them
    (a grid), else at round numbers."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    lo, hi = bounds if bounds is not None else (min(values), max(values))
    lo, hi = min([lo, *values]), max([hi, *values])
    log = log and lo > 0

    def scale(v: float) -> float:
        return math.log10(v) if log else v

    a, b = scale(lo), scale(hi)

    def place(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if log and value <= 0:
            return None
        return 0.5 if b == a else (scale(float(value)) - a) / (b - a)

    distinct = sorted(set(values) | set(grid or ()) | ({lo, hi} if b != a else set()))
    if len(distinct) <= 8:
        marks = distinct
    elif log:
        marks = [t for t in LogLocator(numticks=8).tick_values(lo, hi) if lo <= t <= hi]
        marks = sorted(set(marks) | {lo, hi})
    else:
        marks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]
    axis = _Axis(label, [], log)
    axis.place = place
    axis.ticks = [(p, _fmt(m)) for m in marks if (p := place(m)) is not None]
    if fan_out and len(distinct) <= 8 and len(values) > len(set(values)):
        axis.spread = _spread(sorted(p for p, _ in axis.ticks))
    return axis


def _spread(spots: list[float]) -> float:
    """A fan-out that keeps runs through neighbouring values apart."""
    gaps = [b - a for a, b in zip(spots, spots[1:], strict=False) if b > a]
    return min([SPREAD, *(g / 4 for g in gaps)])


def _categorical_axis(label: str, categories: list[Any]) -> _Axis:
    count = len(categories)
    spots = [0.5 if count == 1 else i / (count - 1) for i in range(count)]

    def place(value: Any) -> float | None:
        for spot, category in zip(spots, categories, strict=True):
            if type(category) is type(value) and category == value:
                return spot
        return None

    axis = _Axis(label, [(spot, short(cell(c) or '""', 24))
                         for spot, c in zip(spots, categories, strict=True)])
    axis.place = place
    axis.spread = _spread(spots) if count > 1 else SPREAD
    return axis


def _param_axis(param: ParamInfo, runs: list[RunRow]) -> _Axis:
    if param.kind == "categorical":
        return _categorical_axis(param.label, param.categories)
    values = [float(r.params[param.key]) for r in runs
              if isinstance(r.params.get(param.key), (int, float))
              and not isinstance(r.params.get(param.key), bool)]
    bounds = param.bounds or ((min(values), max(values)) if values else (0.0, 1.0))
    return _numeric_axis(param.label, values, bounds, param.log, param.grid)


def plot_parallel(table: SweepTable) -> Figure:
    """One axis per swept parameter and one for the metric; a line per run, coloured by score.

    Runs without a score (failed, running) end in a "no score" slot under the metric axis,
    grey and dashed; early-stopped runs are dotted; the best run is thick.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.lines import Line2D

    runs = table.runs
    scores = [float(r.score) for r in runs if r.scored and r.score is not None]
    param_axes = [_param_axis(p, runs) for p in table.swept]
    metric_log = log_worthy(scores)
    if scores:
        metric_axis = _numeric_axis(table.metric, scores, None, metric_log, fan_out=False)
    else:
        metric_axis = _Axis(table.metric, [])
    axes = [*param_axes, metric_axis]
    unscored = [r for r in runs if not r.scored]
    no_score = -0.12
    if unscored:
        metric_axis.ticks.append((no_score, "no score"))

    figure = new_figure(max(7.5, 2.4 * len(axes) + 3.0), 6.2)
    ax = figure.add_subplot()
    cmap = score_colormap(table.goal)
    norm: Any = None
    if scores:
        lo, hi = min(scores), max(scores)
        norm = LogNorm(lo, hi) if metric_log else Normalize(lo, hi)
    xs = list(range(len(axes)))

    sign = 1.0 if table.goal == "minimize" else -1.0
    order = unscored + sorted((r for r in runs if r.scored),
                              key=lambda r: -sign * float(r.score or 0.0))
    # Grid sweeps send many runs through each value: fan them out by score (best on top),
    # so that lines which share a segment stay apart and do not cross on the way.
    fan = {r.name: (i / (len(order) - 1) - 0.5 if len(order) > 1 else 0.0)
           for i, r in enumerate(order)}

    def points(run: RunRow) -> list[float]:
        ys = []
        for axis, param in zip(param_axes, table.swept, strict=True):
            y = axis.place(run.params.get(param.key))
            ys.append(math.nan if y is None else y + axis.spread * fan[run.name])
        ys.append(metric_axis.place(run.score) if run.scored
                  else no_score + 0.02 * fan[run.name])
        return [math.nan if y is None else y for y in ys]

    for z, run in enumerate(order):  # unscored first, then worst to best: best on top
        best = run.rank == 1
        colour = cmap(norm(run.score)) if run.scored else UNSCORED
        ax.plot(xs, points(run), color=colour, linestyle=STYLES.get(run.state, "-"),
                linewidth=4.0 if best else 1.4, alpha=1.0 if best else 0.85,
                marker="o", markersize=5 if best else 3, zorder=10 + z + (1000 if best else 0),
                label=run.name, gid=run.name)

    for x, axis in zip(xs, axes, strict=True):
        ax.plot([x, x], [0, 1], color="black", linewidth=1.2, zorder=5)
        for y, text in axis.ticks:
            ax.plot([x - 0.02, x], [y, y], color="black", linewidth=1, zorder=5)
            ax.text(x - 0.035, y, text, ha="right", va="center", fontsize=8, zorder=2000,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                          "edgecolor": "none", "alpha": 0.8})
        title = axis.label + ("\n(log scale)" if axis.log else "")
        ax.text(x, 1.04, title, ha="center", va="bottom", fontsize=10, fontweight="bold")
    ax.set_xlim(-0.45, len(axes) - 1 + 0.25)
    ax.set_ylim(no_score - 0.06 if unscored else -0.04, 1.02)
    ax.set_axis_off()

    handles, labels = [], []
    best = table.best
    if best is not None:
        handles.append(Line2D([], [], color=cmap(norm(best.score)), linewidth=4.0))
        labels.append(f"best: {short(best.name)} ({table.metric} {score_text(best.score)})")
    for state in ("stopped", "failed", "running"):
        count = sum(r.state == state for r in runs)
        if count:
            handles.append(Line2D([], [], color=UNSCORED if state != "stopped" else "black",
                                  linestyle=STYLES[state], linewidth=1.4))
            labels.append(f"{state} ({count})")
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=len(handles), frameon=False, fontsize=8)
    if scores and max(scores) > min(scores):  # one score needs no colour scale
        bar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.85,
                              pad=0.02)
        bar.set_label(f"{table.metric} ({table.goal}; dark = best)")
    figure.suptitle(f"Sweep {table.name}: {len(scores)} of {len(runs)} "
                    f"{'run' if len(runs) == 1 else 'runs'} scored, coloured by {table.metric}",
                    fontsize=12)
    return figure
