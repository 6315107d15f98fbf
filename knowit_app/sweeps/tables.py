"""The two text tables of a sweep: the consolidation ranking and the sweeper's best runs.

Both read runs through :mod:`knowit_app.experiment.runs` and rank them with its one ranking;
the layout is the commands' one table (:func:`knowit_app.text_table.format_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

from knowit_app.experiment.runs import Run, RunState, qualifies, rank
from knowit_app.experiment.sweep_state import RunRecord
from knowit_app.text_table import format_table as _format


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str]) -> str:
    return _format(headers, rows, align=align, rule=False)


def format_table(rows: list[Run], limit: int = 10) -> str:
    """The first ``limit`` rows of a consolidation ranking, with a line counting the rest."""
    monitors = {r.monitor for r in rows if r.promotable and r.monitor}
    score_head = monitors.pop() if len(monitors) == 1 else "score"
    table = []
    position = 0
    for r in rows[:limit]:
        position += r.promotable
        table.append((str(position) if r.promotable else "-", r.name,
                      str(r.state) if r.promotable else str(r.why_not),
                      f"{r.score:.6g}" if r.score is not None else "-",
                      str(r.epochs) if r.epochs is not None else "-",
                      f"{r.fit_seconds:.1f}" if r.fit_seconds is not None else "-"))
    text = _table(("rank", "run", "state", score_head, "epochs", "fit_s"), table,
                  ("right", "left", "left", "right", "right", "right"))
    promotable = sum(r.promotable for r in rows)
    summary = f"{promotable} of {len(rows)} runs can be promoted"
    if len(rows) > limit:
        summary = f"... {len(rows) - limit} more; " + summary
    return "\n".join([text, summary])


def format_best(name: str, metric: str, goal: str, records: list[RunRecord],
                limit: int = 10) -> str:
    """A sweep's run counts and its best runs so far, best first (the sweeper's last words)."""
    counted = (RunState.FINISHED, RunState.STOPPED, RunState.FAILED, RunState.RUNNING)
    counts = {s: sum(r.state == s for r in records) for s in counted}
    head = f"sweep {name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    best = [r for r in rank(records, goal, lambda r: qualifies(r.state, r.score))
            if qualifies(r.state, r.score)][:limit]
    if not best:
        return head
    rows = [(r.name, f"{r.score:.5g}", str(r.state), str(len(r.history))) for r in best]
    table = _table(("run", metric, "state", "epochs"), rows, ("left", "right", "left", "right"))
    return "\n".join([head, *("  " + line for line in table.splitlines())])
