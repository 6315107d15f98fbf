"""The report's ``index.html``: summary, figures and the runs table in one offline page.

Offline users may open the report on a cluster node or in an air-gapped lab, so the page
needs no network: CSS and the small table-sorting script are inline, and it links only to
files written beside it (the PNGs and CSVs of ``report/``), by relative name.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path

from knowit_app.experiment.io import replace_atomically
from knowit_app.report.collect import RunRow, SweepTable, cell
from knowit_app.report.importance import Importance

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em;
       color: #222; max-width: 1500px; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.where { color: #666; font-size: 0.9em; margin-top: 0; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.25em 1.2em; }
dl.summary dt { font-weight: 600; } dl.summary dd { margin: 0; }
.badge { display: inline-block; padding: 0.05em 0.5em; border-radius: 0.7em;
         font-size: 0.85em; margin-right: 0.3em; background: #e8e8e8; }
.badge.finished { background: #d9f0d3; } .badge.failed { background: #f4c7c3; }
.badge.stopped { background: #fde6b0; } .badge.running, .badge.pending { background: #d6e4f5; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e4e4e4; text-align: left;
         white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: 700; background: #eef5ff; }
tr.failed td { background: #fdf0ef; color: #8a1f11; }
tr.stopped td { background: #fff8e6; }
td.error { white-space: normal; max-width: 40em; font-family: monospace; font-size: 0.95em; }
.wrap { overflow-x: auto; }
"""

# Click a column header to sort by it (numbers as numbers); inline, so no network is needed.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.from(body.rows);
    var up = th.dataset.dir !== "asc";
    th.dataset.dir = up ? "asc" : "desc";
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent;
      var y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

STATE_MARK = {"finished": "", "stopped": "\u23f9 ", "failed": "\u2717 ", "running": "\u25b6 ",
              "pending": "\u2026 "}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if value is not None else ""


def _summary(table: SweepTable) -> str:
    counts = " ".join(f'<span class="badge {_e(s)}">{n} {_e(s)}</span>'
                      for s, n in table.counts().items()) or "none"
    best = table.best
    best_text = (f"<code>{_e(best.name)}</code>: {_e(table.metric)} = {_e(_num(best.score))}"
                 if best is not None else "none (no run finished with a score)")
    swept = ", ".join(f"<code>{_e(p.key)}</code>" + (" (log)" if p.log else "")
                      + (" (categorical)" if p.kind == "categorical" else "")
                      for p in table.swept) or "none"
    rows = [("sweep", f"<code>{_e(table.name)}</code>"),
            ("method", _e(table.method or "unknown")),
            ("metric", f"<code>{_e(table.metric)}</code> ({_e(table.goal)})"),
            ("runs", f"{len(table.runs)} &nbsp; {counts}"),
            ("best run", best_text),
            ("swept parameters", swept)]
    items = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="summary">\n{items}\n</dl>'


def _run_row(run: RunRow, keys: list[str]) -> str:
    classes = [run.state] + (["best"] if run.rank == 1 else [])
    name = _e(run.name) + (" \u2605" if run.rank == 1 else "")
    mark = STATE_MARK.get(run.state, "? ")
    cells = [f'<td class="num" data-v="{run.rank if run.rank is not None else 1e18}">'
             f'{run.rank if run.rank is not None else "-"}</td>',
             f"<td>{name}</td>"]
    cells += [f"<td>{_e(cell(run.params[k]) if k in run.params else '')}</td>" for k in keys]
    cells += [f'<td><span class="badge {_e(run.state)}">{_e(mark + run.state)}</span></td>',
              f'<td class="num">{_e(_num(run.score))}</td>',
              f'<td class="num">{run.epochs if run.epochs is not None else ""}</td>',
              f'<td class="num">{_num(run.fit_seconds, 4)}</td>',
              f'<td class="error">{_e(run.error or "")}</td>']
    return f'<tr class="{" ".join(_e(c) for c in classes)}">{"".join(cells)}</tr>'


def _runs_table(table: SweepTable) -> str:
    keys = [p.key for p in table.params]
    head = ["rank", "run", *keys, "state", f"{table.metric}", "epochs", "fit s", "error"]
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "\n".join(_run_row(r, keys) for r in table.ranked())
    return (f'<div class="wrap"><table class="sortable">\n<thead><tr>{header}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table></div>")


def _importance_table(result: Importance) -> str:
    if not result.features:
        return f"<p>{_e(result.message or 'no features')}</p>"
    rows = "\n".join(
        f"<tr><td>{_e(f.name)}</td><td class=\"num\">{f.importance:.3f}</td>"
        f"<td class=\"num\">{'' if f.correlation is None else f'{f.correlation:+.3f}'}</td></tr>"
        for f in result.features)
    return ("<table><thead><tr><th>feature</th><th>importance</th>"
            f"<th>correlation with {_e(result.metric)}</th></tr></thead>\n"
            f"<tbody>\n{rows}\n</tbody></table>")


def render_html(table: SweepTable, importance: Importance,
                figures: Sequence[tuple[str, str]], downloads: Sequence[str]) -> str:
    """The page: ``figures`` are (file name, caption) and ``downloads`` file names, all beside
    the page."""
    shown = "\n".join(f'<figure><a href="{_e(name)}"><img src="{_e(name)}" '
                      f'alt="{_e(caption)}"></a><figcaption>{_e(caption)}</figcaption></figure>'
                      for name, caption in figures)
    links = " &middot; ".join(f'<a href="{_e(name)}">{_e(name)}</a>' for name in downloads)
    made = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sweep {_e(table.name)}: report</title>
<style>{CSS}</style>
</head>
<body>
<h1>Sweep {_e(table.name)}</h1>
<p class="where">{_e(table.sweep_dir)} &middot; report written {made}</p>
{_summary(table)}
<h2>Figures</h2>
{shown}
<h2>Parameter importance</h2>
{_importance_table(importance)}
<h2>Runs</h2>
<p>Best first; failed runs in red, early-stopped runs in amber. Click a header to sort.
Data: {links}</p>
{_runs_table(table)}
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_html(text: str, path: Path) -> Path:
    """Write the page atomically."""
    return replace_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
