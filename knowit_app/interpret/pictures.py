"""Pictures of an interpretation, in ``<model_dir>/visualizations/``.

- ``<stem>-heatmap.png``: mean |attribution| per input component (rows) and time lag (columns);
- ``<stem>-bars.png``: the same summed per component and per lag;
- ``<stem>.gif``: one frame per selected point (at most MAX_FRAMES): the input window, that
  point's attributions, and target vs prediction over the selected block.

For regression the attributions of all outputs are averaged; for classification each point
contributes its attributions towards the class the model predicted for it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import VISUALIZATIONS_DIR

log = logging.getLogger("knowit_app")

MAX_FRAMES = 60
MAX_LINES = 6  # input components drawn as lines in the animation


def explained(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> np.ndarray:
    """(points, in_steps, in_components): the attributions the pictures show."""
    values = np.asarray(arrays["attributions"], dtype=np.float64)
    if meta["task"] == "classification":
        classes = list(np.asarray(arrays["classes"]))
        chosen = [classes.index(p) for p in np.asarray(arrays["predictions"])]
        return values[np.arange(len(values)), chosen]
    return values.reshape(len(values), -1, *values.shape[-2:]).mean(axis=1)


def importance(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> np.ndarray:
    """(in_steps, in_components): mean |attribution| over the selected points."""
    return np.abs(explained(arrays, meta)).mean(axis=0)


def _title(meta: Mapping[str, Any], n_points: int) -> str:
    args = meta["arguments"]
    return (f"{meta['model_name']}: {meta['method']} over {n_points} {args['set']}-set points "
            f"(selection={args['selection']})")


def _what(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """What the attributions explain, in words, with their units."""
    if meta["task"] == "classification":
        return "to the logit of the predicted class"
    steps, comps = np.asarray(arrays["out_steps"]), [str(c) for c in arrays["out_components"]]
    units = meta["attribution_units"]
    if len(steps) * len(comps) == 1:
        return f"to {comps[0]} at step {int(steps[0]):+d} (in {units} units)"
    return f"averaged over the {len(steps) * len(comps)} outputs (in {units} units)"


def _headline(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    return (f"{_title(meta, len(arrays['attributions']))}\n"
            f"mean |attribution| {_what(arrays, meta)}")


def _save(fig: Any, path: Path) -> Path:
    return replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def draw_heatmap(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], path: Path) -> Path:
    """Components down, lags across: where in the window the model looks, per component."""
    from matplotlib.figure import Figure

    imp = importance(arrays, meta).T  # (components, lags)
    lags, comps = np.asarray(arrays["in_lags"]), [str(c) for c in arrays["in_components"]]
    fig = Figure(figsize=(max(6.0, 0.22 * len(lags) + 3), 1.0 + 0.45 * len(comps) + 1.4),
                 layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(imp, aspect="auto", cmap="viridis", interpolation="nearest",
                      extent=(lags[0] - 0.5, lags[-1] + 0.5, len(comps) - 0.5, -0.5))
    ax.set_yticks(range(len(comps)), comps)
    ax.set_xlabel("input time lag (steps relative to the prediction point)")
    ax.set_ylabel("input component")
    fig.colorbar(image, ax=ax, label="mean |attribution|", shrink=0.9)
    ax.set_title(_headline(arrays, meta), fontsize=10)
    return _save(fig, path)


def draw_bars(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], path: Path) -> Path:
    """Total mean |attribution| per component and per lag, for a quick ranking."""
    from matplotlib.figure import Figure

    imp = importance(arrays, meta)
    lags, comps = np.asarray(arrays["in_lags"]), [str(c) for c in arrays["in_components"]]
    fig = Figure(figsize=(11, max(3.2, 0.35 * len(comps) + 1.5)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    per_comp = imp.sum(axis=0)
    left.barh(range(len(comps)), per_comp, color="tab:blue")
    left.set_yticks(range(len(comps)), comps)
    left.invert_yaxis()
    left.set_xlabel("sum over lags of mean |attribution|")
    left.set_title("per input component", fontsize=10)
    right.bar(lags, imp.sum(axis=1), color="tab:orange", width=0.8)
    right.set_xlabel("input time lag (steps relative to the prediction point)")
    right.set_ylabel("sum over components")
    right.set_title("per time lag", fontsize=10)
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="x" if ax is left else "y")
    fig.suptitle(_headline(arrays, meta), fontsize=10)
    return _save(fig, path)


def _outcome_series(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                    ) -> tuple[np.ndarray, np.ndarray, str]:
    """Target and prediction per point for the animation's bottom panel, and its label."""
    if meta["task"] == "classification":
        classes = list(np.asarray(arrays["classes"]))
        index = np.vectorize(classes.index)
        return index(arrays["targets"]), index(arrays["predictions"]), "class"
    comp = str(arrays["out_components"][0])
    step = int(arrays["out_steps"][0])
    label = f"{comp} at step {step:+d} (original units)"
    return arrays["targets"][:, 0, 0], arrays["predictions"][:, 0, 0], label


def draw_animation(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], path: Path,
                   fps: int = 4) -> Path:
    """A GIF running over the selected points: input window, its attributions, the outcome."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from PIL import Image

    attr = explained(arrays, meta)  # (points, lags, comps)
    inputs = np.asarray(arrays["inputs"], dtype=np.float64)
    lags, comps = np.asarray(arrays["in_lags"]), [str(c) for c in arrays["in_components"]]
    times = np.asarray(arrays["timestamps"]).astype("datetime64[ns]")
    target, prediction, outcome_label = _outcome_series(arrays, meta)
    frames = np.unique(np.linspace(0, len(attr) - 1, min(MAX_FRAMES, len(attr))).astype(int))
    shown = comps[:MAX_LINES]
    fig = Figure(figsize=(9, 8.2), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    ax_in, ax_attr, ax_out = fig.subplots(3, 1, height_ratios=[2, 1.6, 1.6])
    lines = [ax_in.plot(lags, inputs[0, :, j], lw=1.4, label=name)[0]
             for j, name in enumerate(shown)]
    lo, hi = np.nanmin(inputs[:, :, :len(shown)]), np.nanmax(inputs[:, :, :len(shown)])
    pad = 0.05 * (hi - lo or 1.0)
    ax_in.set_ylim(lo - pad, hi + pad)
    ax_in.set_xlim(lags[0] - 0.5, lags[-1] + 0.5)
    units = "original units" if meta["inputs_units"] == "original" else "scaled units"
    ax_in.set_ylabel(f"input ({units})")
    ax_in.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=8,
                 title="component" if len(shown) == len(comps) else f"first {len(shown)}")
    ax_in.grid(alpha=0.3)
    limit = float(np.nanmax(np.abs(attr[frames]))) or 1.0
    image = ax_attr.imshow(attr[0].T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                           interpolation="nearest",
                           extent=(lags[0] - 0.5, lags[-1] + 0.5, len(comps) - 0.5, -0.5))
    ax_attr.set_yticks(range(len(comps)), comps)
    ax_attr.set_xlabel("input time lag (steps relative to the prediction point)")
    fig.colorbar(image, ax=ax_attr, label="attribution")
    step = "steps-mid" if meta["task"] == "classification" else "default"
    ax_out.plot(times, target, color="black", lw=2.0 if step != "default" else 1.2,
                label="target", drawstyle=step)
    ax_out.plot(times, prediction, color="tab:orange", lw=1.2, ls="--", label="prediction",
                drawstyle=step)
    if meta["task"] == "classification":
        classes = [str(c) for c in np.asarray(arrays["classes"])]
        ax_out.set_yticks(range(len(classes)), classes)
        ax_out.set_ylim(-0.5, len(classes) - 0.5)
    locator = AutoDateLocator()
    ax_out.xaxis.set_major_locator(locator)
    ax_out.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    marker = ax_out.axvline(times[0], color="tab:red", lw=1.0, label="this point")
    ax_out.set_ylabel(outcome_label)
    ax_out.set_xlabel("time of the prediction point")
    ax_out.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=3,
                  frameon=False)
    ax_out.grid(alpha=0.3)
    title = fig.suptitle("", fontsize=10)

    def show(i: int) -> None:
        for j, line in enumerate(lines):
            line.set_ydata(inputs[i, :, j])
        image.set_data(attr[i].T)
        marker.set_xdata([times[i], times[i]])
        ax_in.set_title(f"input window of point {int(arrays['point_ids'][i])} "
                        f"(instance {arrays['instances'][i]}, {str(times[i])[:19]})", fontsize=10)
        ax_attr.set_title(f"this point's attributions {_what(arrays, meta)}", fontsize=10)
        title.set_text(f"{_title(meta, len(attr))}; frame {i + 1} of {len(attr)}")

    dynamic = [*lines, image, marker, ax_in.title, title]
    for artist in dynamic:
        artist.set_animated(True)  # drawn per frame over a background rendered once
    show(int(frames[0]))
    canvas = fig.canvas
    canvas.draw()
    fig.set_layout_engine("none")  # keep the first frame's layout for all of them
    background = canvas.copy_from_bbox(fig.bbox)
    images = []
    for i in frames:
        show(int(i))
        canvas.restore_region(background)
        for artist in dynamic:
            fig.draw_artist(artist)
        rgb = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
        images.append(rgb.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE))

    def write(tmp: Path) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 / fps), loop=0, optimize=False)

    return replace_atomically(path, write)


def draw_all(model_dir: str | Path, stem: str, arrays: Mapping[str, np.ndarray],
             meta: Mapping[str, Any]) -> list[Path]:
    """The three pictures of interpretation ``stem``; returns their paths."""
    out = Path(model_dir) / VISUALIZATIONS_DIR
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = [draw_heatmap(arrays, meta, out / f"{stem}-heatmap.png"),
                 draw_bars(arrays, meta, out / f"{stem}-bars.png"),
                 draw_animation(arrays, meta, out / f"{stem}.gif")]
    # Matplotlib warns once per character its font lacks, at every save: one line instead.
    glyphs = [w for w in caught if "missing from font" in str(w.message)]
    if glyphs:
        log.warning("some names hold characters the plotting font lacks; they show as boxes "
                    "in the pictures")
    for w in caught:
        if w not in glyphs:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return drawn
