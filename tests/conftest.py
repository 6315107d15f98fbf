"""Fixtures shared by the test modules (pytest finds them here; nothing imports them).

Tests marked ``slow`` (real subprocess sweeps, Slurm, kill loops, anything over ~10 s) are left
out by ``pytest -m "not slow"``, the quick loop; a plain ``pytest`` runs them all.
"""

from __future__ import annotations

import pytest
from slurm_utils import accounting_available, require, slurm_available


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running Slurm cluster (skip without one; fail under CI)."""
    require(slurm_available)


@pytest.fixture(scope="session")
def slurm_accounting(slurm: None) -> None:
    """A running Slurm cluster whose ``sacct`` works (skip without; fail under CI)."""
    require(accounting_available)
