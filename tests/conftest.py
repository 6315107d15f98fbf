"""Shared test setup: every test session gets its own dataset cache, never ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _knowit_cache(tmp_path_factory: pytest.TempPathFactory):
    old = os.environ.get("KNOWIT_APP_CACHE")
    os.environ["KNOWIT_APP_CACHE"] = str(tmp_path_factory.mktemp("knowit_cache"))
    yield
    if old is None:
        os.environ.pop("KNOWIT_APP_CACHE", None)
    else:
        os.environ["KNOWIT_APP_CACHE"] = old
