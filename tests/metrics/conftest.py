"""Fixtures of the metric tests whose preparations read task specs and data."""

from __future__ import annotations

import pytest

from flextape_bench.tasks.data import DATA_DIR_ENV


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metric tests never see the user's $FLEXTAPE_DATA_DIR."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
