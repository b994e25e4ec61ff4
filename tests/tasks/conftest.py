"""Shared fixtures of the task tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from flextape_bench.tasks.data import DATA_DIR_ENV

DATA_DIR = Path(__file__).parents[2].parent / "shared" / "seesaw_cf"


@pytest.fixture
def data_dir() -> Path:
    """The read-only local copy of the Seesaw-CF data (`../shared/seesaw_cf` from the repository root)."""
    return DATA_DIR


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Task tests never see the user's $FLEXTAPE_DATA_DIR."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
