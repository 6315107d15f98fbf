"""The one text-table layout of every command and report: ``tabulate``, cells shown as given.

A leaf module (imports only tabulate) so every layer may print a table without importing cli/.

Callers format their numbers (``f"{x:.6g}"``) before handing rows over, so a table never
reformats a score; lines carry no trailing blanks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tabulate import tabulate


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                 align: Sequence[str] | None = None, rule: bool = True) -> str:
    """Aligned columns under ``headers``; ``rule`` draws dashes under the header row.

    ``align`` gives each column's ``"left"`` or ``"right"`` (default: all left).
    """
    rows = [[str(cell) for cell in row] for row in rows]
    text = tabulate(rows, headers=list(headers), tablefmt="simple" if rule else "plain",
                    disable_numparse=True, colalign=list(align or ["left"] * len(headers)))
    return "\n".join(line.rstrip() for line in text.splitlines())
