"""The small per-run result file that consolidation and reports read instead of checkpoints."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from knowit_app.experiment.io import replace_atomically
from knowit_app.experiment.layout import RESULT_FILE


@dataclass
class RunResult:
    """How one training ended and its best monitored score."""

    state: str
    monitor: str
    mode: str
    best_score: float | None
    best_checkpoint: str | None
    epochs: int
    fit_seconds: float
    started: float
    ended: float

    def write(self, out_dir: Path) -> Path:
        """Write ``run_result.json`` atomically (a reader never sees half a file)."""
        text = json.dumps(asdict(self), indent=2) + "\n"
        return replace_atomically(Path(out_dir) / RESULT_FILE, lambda tmp: tmp.write_text(text))

    @classmethod
    def read(cls, out_dir: Path) -> RunResult:
        data: dict[str, Any] = json.loads((Path(out_dir) / RESULT_FILE).read_text())
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def metric_history(out_dir: Path, metric: str) -> list[float]:
    """The per-epoch values of ``metric`` from a run's ``lightning_logs/*/metrics.csv``."""
    import csv

    values: list[float] = []
    for path in sorted(Path(out_dir).glob("lightning_logs/version_*/metrics.csv")):
        with open(path) as fh:
            values.extend(float(row[metric]) for row in csv.DictReader(fh) if row.get(metric))
    return values
