"""The report's figures: learning curves and parameter importance, and what all figures share.

The figures W&B's web UI would show, drawn with matplotlib's object API on an Agg canvas
(no pyplot: no global figure state, no display needed, safe inside a Hydra callback). Each
``plot_*`` function returns the Figure, so tests can look at what was drawn before
:func:`save` writes it. Colours mean the same in every figure: dark is a good score, light a
poor one; failed runs are grey and dashed, early-stopped runs dotted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowit_app.experiment.io import replace_atomically
from knowit_app.report.collect import LOG_SPAN, RunRow, SweepTable

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from knowit_app.report.importance import Importance

DPI = 110
CMAP = "plasma"
CMAP_END = 0.85  # plasma's last 15% is a yellow too pale to read on white
LEGEND_MAX = 30  # more runs than this: the legend lists the best ones only
NAME_MAX = 64
FEATURES_MAX = 25
SPREAD = 0.05  # runs through one grid value fan out over this much of an axis (of 1)
UNSCORED = "#8c8c8c"
STYLES = {"finished": "-", "stopped": ":", "failed": "--", "running": "-.", "pending": "-."}
STYLE_NAMES = {"-": "solid", ":": "dotted", "--": "dashed", "-.": "dash-dot"}
BETTER, WORSE = "#2166ac", "#d6604d"


# --------------------------------------------------------------------------- shared helpers

def new_figure(width: float, height: float) -> Figure:
    """A Figure on its own Agg canvas, with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, path: Path) -> Path:
    """Write a PNG atomically (a reader never sees half an image)."""
    return replace_atomically(Path(path), lambda tmp: figure.savefig(tmp, dpi=DPI, format="png"))


def score_colormap(goal: str) -> Colormap:
    """Dark for the best scores, light for the worst, whichever way the goal points."""
    import matplotlib
    import numpy as np
    from matplotlib.colors import ListedColormap

    colours = matplotlib.colormaps[CMAP](np.linspace(0.0, CMAP_END, 256))
    cmap = ListedColormap(colours, name="score")
    return cmap if goal == "minimize" else cmap.reversed()


def short(name: str, limit: int = NAME_MAX) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def score_text(score: float | None) -> str:
    return f"{score:.4g}" if score is not None else "-"


def _rank_colour(run: RunRow, ranked: int) -> Any:
    """A run's colour from its rank among ``ranked`` scored runs (dark = best)."""
    import matplotlib

    if run.rank is None:
        return UNSCORED
    return matplotlib.colormaps[CMAP](CMAP_END * (run.rank - 1) / max(ranked - 1, 1))


def _message(figure: Figure, text: str) -> None:
    ax = figure.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, wrap=True,
            transform=ax.transAxes)


def _note(ax: Any, lines: list[str]) -> None:
    """Small text under the axes (counted by the constrained layout)."""
    if lines:
        ax.annotate("\n".join(lines), xy=(0, 0), xycoords="axes fraction", xytext=(0, -34),
                    textcoords="offset points", ha="left", va="top", fontsize=8,
                    color="#444444")


def log_worthy(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_SPAN


# --------------------------------------------------------------------------- learning curves

def _curve_label(run: RunRow) -> str:
    if run.rank is None:
        return f"{short(run.name)}  ({run.state})"
    label = f"{run.rank}. {short(run.name)}  {score_text(run.score)}"
    if run.rank == 1:
        label += "  \u2605 best"
    if run.state != "finished":
        label += f"  ({run.state})"
    return label


def plot_curves(table: SweepTable, metric: str) -> Figure:
    """``metric`` against epoch: one line per run that logged it, best run thick and on top.

    Colour is the run's rank by the sweep's score (dark = best); the legend lists runs best
    first with their score. Runs that never logged ``metric`` are named under the axes.
    """
    from matplotlib.ticker import MaxNLocator

    order = table.ranked()
    drawn = [r for r in order if r.curves.get(metric)]
    missing = [r for r in order if not r.curves.get(metric)]
    ranked = sum(r.rank is not None for r in table.runs)
    figure = new_figure(13.0, 6.5)
    ax = figure.add_subplot()
    if not drawn:
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no run logged {metric}", ha="center", va="center", fontsize=12,
                transform=ax.transAxes)
        return figure

    lines: dict[str, Any] = {}
    for z, run in enumerate(reversed(drawn)):  # worst first: the best is drawn on top
        epochs = [e + 1 for e, _ in run.curves[metric]]  # from 1, as the training log counts
        values = [v for _, v in run.curves[metric]]
        best = run.rank == 1
        few = len(epochs) <= 25
        (lines[run.name],) = ax.plot(
            epochs, values, color=_rank_colour(run, ranked),
            linestyle=STYLES.get(run.state, "-"), linewidth=3.2 if best else 1.3,
            alpha=1.0 if best or run.rank is not None else 0.8,
            marker="o" if few else None, markersize=4 if best else 2.5,
            label=_curve_label(run), gid=run.name,
            # best on top; failed and stopped runs above the finished ones (their line style
            # tells them apart, and they are few)
            zorder=1000 if best else (500 if run.state != "finished" else 10) + z)
        if best and metric == table.metric:
            pick = min if table.goal == "minimize" else max
            epoch, value = pick(run.curves[metric], key=lambda p: p[1])
            ax.plot([epoch + 1], [value], marker="*", markersize=16, color="black",
                    linestyle="none", zorder=1001, label="_best epoch")

    values = [v for r in drawn for _, v in r.curves[metric]]
    if log_worthy(values):
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric + ("  (log scale)" if ax.get_yscale() == "log" else ""))
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{metric} per epoch: {len(drawn)} of {len(table.runs)} "
                 f"{'run' if len(table.runs) == 1 else 'runs'} of sweep {table.name}",
                 fontsize=12)

    notes = []
    shown = drawn if len(drawn) <= LEGEND_MAX else drawn[: LEGEND_MAX - 5]
    if len(shown) < len(drawn):
        notes.append(f"legend: the best {len(shown)} of {len(drawn)} runs; colour = rank by "
                     f"{table.metric} (dark = best)")
    if missing:
        names = ", ".join(short(r.name, 40) for r in missing[:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        notes.append(f"no {metric} logged by {len(missing)} "
                     f"{'run' if len(missing) == 1 else 'runs'}: {names}{more}")
    styles = sorted({r.state for r in drawn} - {"finished"})
    if styles:
        notes.append("line style: " + ", ".join(
            f"{s} {STYLE_NAMES.get(STYLES.get(s, '-'), 'solid')}" for s in styles))
    ax.legend([lines[r.name] for r in shown], [_curve_label(r) for r in shown],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
              title=f"rank. run  {table.metric} ({table.goal})", title_fontsize=8,
              alignment="left", borderaxespad=0.0, handlelength=2.5)
    _note(ax, notes)
    return figure


# --------------------------------------------------------------------------- importance

def plot_importance(result: Importance) -> Figure:
    """Random-forest importance and correlation with the metric, one bar pair per feature."""
    from matplotlib.patches import Patch

    if result.message is not None or not result.features:
        figure = new_figure(9.0, 3.0)
        _message(figure, f"Parameter importance for {result.metric}\n\n"
                         f"{result.message or 'no features'}")
        return figure
    features = result.features[:FEATURES_MAX]
    figure = new_figure(12.0, 2.6 + 0.38 * len(features))
    left, right = figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1, 1]})
    ys = list(range(len(features)))
    names = [short(f.name, 40) for f in features]

    left.barh(ys, [f.importance for f in features], color="#4d4d4d", height=0.6)
    for y, f in zip(ys, features, strict=True):
        left.text(f.importance, y, f" {f.importance:.2f}", va="center", fontsize=8)
    left.set_yticks(ys, names, fontsize=9)
    left.invert_yaxis()
    top = max([f.importance for f in features] + [0.05])
    left.set_xlim(0, top * 1.2)
    left.set_xlabel("importance (random forest, sums to 1)")
    left.set_title("importance", fontsize=11)

    minimize = result.goal == "minimize"
    colours = []
    for f in features:
        if f.correlation is None:
            colours.append(UNSCORED)
        else:
            colours.append(BETTER if (f.correlation < 0) == minimize else WORSE)
    right.barh(ys, [f.correlation or 0.0 for f in features], color=colours, height=0.6)
    for y, f in zip(ys, features, strict=True):
        text = "n/a" if f.correlation is None else f"{f.correlation:+.2f}"
        x = f.correlation or 0.0
        right.text(x, y, f" {text} ", va="center", fontsize=8, ha="left" if x >= 0 else "right")
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlim(-1.3, 1.3)
    right.set_title("correlation", fontsize=11)
    right.set_xlabel(f"correlation with {result.metric} (Pearson's r; log10 of log-scaled "
                     "parameters)")
    figure.legend([Patch(color=BETTER), Patch(color=WORSE)],
                  [f"higher value (or this category) \u2192 better {result.metric}",
                   f"higher value (or this category) \u2192 worse {result.metric}"],
                  loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    for ax in (left, right):
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    more = (f"; showing the top {len(features)} of {len(result.features)} features"
            if len(result.features) > len(features) else "")
    figure.suptitle(f"Parameter importance for {result.metric} ({result.goal}), from "
                    f"{result.runs} scored runs{more}", fontsize=12)
    return figure
