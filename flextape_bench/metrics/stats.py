"""Small statistics shared by metrics: means that skip empty inputs."""

from __future__ import annotations

from collections.abc import Iterable


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean, or None for no values."""
    values = list(values)
    return sum(values) / len(values) if values else None
