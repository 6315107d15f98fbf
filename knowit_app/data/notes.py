"""What an import says besides its summary: rows it sorted, columns it left out.

An import must not change the user's data silently. These notes are logged as warnings on the
``knowit_app`` logger; ``knowit-app-import`` collects them (:func:`collect_notes`) and prints
them under its one-line summary, the Python API leaves them on stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("knowit_app")


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def collect_notes() -> Iterator[list[str]]:
    """The warnings an import logs (rows sorted, columns left out, a dataset replaced), as
    lines, instead of on stderr: ``knowit-app-import`` prints them under its summary."""
    notes = _Notes()
    propagate = log.propagate
    log.addHandler(notes)
    log.propagate = False
    try:
        yield notes.lines
    finally:
        log.removeHandler(notes)
        log.propagate = propagate


def note_unsorted(times: np.ndarray, inst: np.ndarray, name: str) -> None:
    """Say when rows step back in time within an instance: they are sorted, as in KnowIt."""
    by_inst = np.argsort(inst, kind="stable")
    back = (np.diff(times[by_inst]) < 0) & (inst[by_inst][1:] == inst[by_inst][:-1])
    if back.any():
        row = int(by_inst[1:][back][0])
        log.warning("dataset %r: times are not in ascending order (%d rows step back in time, "
                    "the first in row %d); rows were sorted by time", name, int(back.sum()), row)


def note_left_out(columns: list[Any], frame: pd.DataFrame) -> None:
    """Say which columns are not components because they hold text; a mostly numeric one
    (a typo in a number) is named with its first text cell."""
    plain = []
    for c in columns:
        col = frame[c]
        num = pd.to_numeric(col, errors="coerce")
        text = col.notna() & num.isna()
        if text.any() and num.notna().sum() > text.sum():
            row = int(np.flatnonzero(text.to_numpy())[0])
            log.warning("column %r is left out: it is mostly numbers but row %d holds %r; fix "
                        "it, or name the components to have it refused", str(c), row,
                        col.iloc[row])
        else:
            plain.append(str(c))
    if plain:
        log.warning("columns left out (not numeric): %s", ", ".join(plain))
