"""Which parameters matter: correlation with the metric and random-forest importance.

W&B's parameter-importance panel fits a random forest to (parameters -> metric) and shows its
feature importances next to each parameter's correlation with the metric; this does the same
offline, from the scored runs. Numeric parameters are one feature each (log10 of the value on
a log axis), categorical ones one 0/1 feature per category (``arch=cnn``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from knowit_app.experiment.io import replace_atomically
from knowit_app.report.collect import ParamInfo, RunRow, SweepTable, cell

MIN_RUNS = 3
TREES = 200
SEED = 0


@dataclass
class Feature:
    """One input of the forest: a numeric parameter, or one category of a categorical one."""

    name: str
    param: str
    importance: float
    correlation: float | None  # None where the feature or the metric does not vary


@dataclass
class Importance:
    """Features best first, or why there are none (``message``)."""

    metric: str
    goal: str
    runs: int
    features: list[Feature] = field(default_factory=list)
    message: str | None = None


def _same(a: object, b: object) -> bool:
    """Equality that keeps True apart from 1 (a category is a value and its type)."""
    return type(a) is type(b) and a == b


def _column(param: ParamInfo, runs: list[RunRow]) -> list[tuple[str, list[float | None]]]:
    """The feature columns of one parameter: (feature name, value per run)."""
    if param.kind == "numeric":
        values: list[float | None] = []
        for run in runs:
            value = run.params.get(param.key)
            if value is None:
                values.append(None)
            else:
                number = float(value)
                values.append(math.log10(number) if param.log and number > 0 else number)
        return [(param.label, values)] if any(v is not None for v in values) else []
    columns: list[tuple[str, list[float | None]]] = []
    for category in param.categories:
        flags: list[float | None] = [
            1.0 if param.key in run.params and _same(run.params[param.key], category) else 0.0
            for run in runs]
        if any(flags):  # a category no scored run took tells the forest nothing
            columns.append((f"{param.label}={cell(category)}", flags))
    return columns


def _correlation(xs: list[float | None], ys: list[float]) -> float | None:
    """Pearson's r over the runs that have the feature; None when either side is constant."""
    import numpy as np

    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None]
    if len(pairs) < 2:
        return None
    x, y = np.array(pairs, dtype=float).T
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def compute_importance(table: SweepTable, min_runs: int = MIN_RUNS) -> Importance:
    """Importance and correlation of every swept parameter, from the scored runs."""
    import numpy as np

    runs = [r for r in table.runs if r.scored]
    result = Importance(metric=table.metric, goal=table.goal, runs=len(runs))
    if len(runs) < min_runs:
        result.message = (f"not enough runs: {len(runs)} scored "
                          f"{'run' if len(runs) == 1 else 'runs'}; importance needs at least "
                          f"{min_runs}")
        return result
    columns = [(name, param.key, values) for param in table.swept
               for name, values in _column(param, runs)]
    if not columns:
        result.message = "no swept parameter varies between the scored runs"
        return result
    ys = [float(r.score or 0.0) for r in runs]
    matrix = np.array([[np.nan if v is None else v for v in values]
                       for _, _, values in columns], dtype=float).T
    matrix = np.where(np.isnan(matrix), np.nanmean(matrix, axis=0)[None, :], matrix)
    importances = _forest(matrix, np.array(ys))
    result.features = sorted(
        (Feature(name=name, param=key, importance=float(imp),
                 correlation=_correlation(values, ys))
         for (name, key, values), imp in zip(columns, importances, strict=True)),
        key=lambda f: (-f.importance, -abs(f.correlation or 0.0), f.name))
    return result


def _forest(matrix: object, target: object) -> list[float]:
    """Feature importances of a seeded random forest (all zero when the metric is constant)."""
    import numpy as np

    y = np.asarray(target, dtype=float)
    if np.ptp(y) == 0:
        return [0.0] * np.asarray(matrix).shape[1]
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=TREES, random_state=SEED, n_jobs=1)
    forest.fit(matrix, y)
    return [float(v) for v in forest.feature_importances_]


def write_importance_csv(result: Importance, path: Path) -> Path:
    """The figure's numbers: feature, parameter, importance, correlation."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["feature", "parameter", "importance",
                             f"correlation_with_{result.metric}"])
            for f in result.features:
                writer.writerow([f.name, f.param, f"{f.importance:.6f}",
                                 f"{f.correlation:.6f}" if f.correlation is not None else ""])

    return replace_atomically(Path(path), write)
