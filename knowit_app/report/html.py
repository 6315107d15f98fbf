"""The report's ``index.html``: summary, figures and the runs table in one offline page.

Offline users may open the report on a cluster node or in an air-gapped lab, so the page
needs no network: CSS and the small table-sorting script are inline in the template
(``templates/index.html``, shipped with the package), and it links only to files written
beside it (the PNGs and CSVs of ``report/``), by relative name. Jinja2 autoescapes every
value, so run names, errors and parameter values cannot break the page.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import jinja2

from knowit_app.experiment.io import replace_atomically
from knowit_app.report.collect import SweepTable, cell
from knowit_app.report.importance import Importance

TEMPLATE = "index.html"
STATE_MARK = {"finished": "", "stopped": "\u23f9 ", "failed": "\u2717 ", "running": "\u25b6 ",
              "pending": "\u2026 "}


def _num(value: float | None, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if value is not None else ""


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("knowit_app.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["cell"] = cell
    return env


def render_html(table: SweepTable, importance: Importance,
                figures: Sequence[tuple[str, str]], downloads: Sequence[str]) -> str:
    """The page: ``figures`` are (file name, caption) and ``downloads`` file names, all beside
    the page."""
    keys = [p.key for p in table.params]
    headers = ["rank", "run", *keys, "state", table.metric, "epochs", "fit s", "error"]
    return _environment().get_template(TEMPLATE).render(
        table=table, importance=importance, figures=list(figures), downloads=list(downloads),
        keys=keys, headers=headers, runs=table.ranked(), marks=STATE_MARK,
        made=time.strftime("%Y-%m-%d %H:%M:%S"))


def write_html(text: str, path: Path) -> Path:
    """Write the page atomically."""
    return replace_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
