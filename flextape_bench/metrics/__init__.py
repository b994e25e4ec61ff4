"""Metric registry. A metric reads one case's pre- and post-edit scores and the case's fields, and aggregates
per-case values over a task; task YAMLs list metrics by name."""
from __future__ import annotations

from typing import Any, Protocol, Sequence

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.registry import Registry


class Metric(Protocol):
    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        """JSON-ready values for one case."""

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Task-level values from every case's values."""


METRICS: Registry[Metric] = Registry("metric")

# Registration happens on import of each metric module.
from flextape_bench.metrics import cross_property, efficacy, groups, long_form, probe_delta  # noqa: E402,F401

__all__ = ["METRICS", "Metric"]
