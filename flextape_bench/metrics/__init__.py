"""Metric registry. A metric (`metrics.base.Metric`) declares the requests it wants per case, turns the answers into
per-case values and aggregates them over a task; task YAMLs list metrics by name. Adding one: a module here with
its class and one `METRICS.add`, imported below."""

from __future__ import annotations

from flextape_bench.metrics import cross_property, efficacy, groups, long_form, probe_delta  # noqa: F401 (they register)
from flextape_bench.metrics.base import METRICS, Metric, Preparation, Prepared

__all__ = ["METRICS", "Metric", "Preparation", "Prepared"]
