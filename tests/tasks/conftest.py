"""Shared fixtures of the task tests."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parents[2].parent / "shared" / "seesaw_cf"


@pytest.fixture
def data_dir() -> Path:
    """The read-only local copy of the Seesaw-CF data (`../shared/seesaw_cf` from the repository root)."""
    return DATA_DIR
