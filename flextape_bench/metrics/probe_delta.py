"""Probe delta: per probe d = p_new - p_true before and after the edit, and its shift d_post - d_pre."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.metrics.base import METRICS, Metric
from flextape_bench.metrics.significance import bootstrap_ci
from flextape_bench.metrics.stats import mean


def probe_shift_summary(pairs: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Case-level summary of (d_pre, d_post) pairs: means, shift, and the sums needed to pool over cases."""
    return {
        "d_pre": mean(pre for pre, _ in pairs),
        "d_post": mean(post for _, post in pairs),
        "shift": mean(post - pre for pre, post in pairs),
        "shift_sum": sum(post - pre for pre, post in pairs),
        "n_probes": len(pairs),
    }


def aggregate_shifts(per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean over cases of case means (the paper's number) and the mean pooled over all probes."""
    cases = [c for c in per_case if c["n_probes"]]
    n_probes = sum(c["n_probes"] for c in cases)
    return {
        "d_pre": mean(c["d_pre"] for c in cases),
        "d_post": mean(c["d_post"] for c in cases),
        "shift": mean(c["shift"] for c in cases),
        "shift_pooled": sum(c["shift_sum"] for c in cases) / n_probes if n_probes else None,
        "n_cases": len(cases),
        "n_probes": n_probes,
    }


class ProbeDelta(Metric):
    """The shift over all probes, with a bootstrap interval of the mean of case shifts (as the group shifts have)."""

    def __init__(self, confidence: float = 0.95, seed: int = 0):
        self.confidence, self.seed = confidence, seed

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        return probe_shift_summary([(a.d, b.d) for a, b in zip(pre.probes, post.probes)])

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        shifts = [c["shift"] for c in per_case if c["n_probes"]]
        ci = bootstrap_ci(shifts, confidence=self.confidence, seed=self.seed)
        return aggregate_shifts(per_case) | {"ci_low": ci.low, "ci_high": ci.high, "confidence": self.confidence}


METRICS.add(
    "probe_delta",
    ProbeDelta(),
    description="probe d = p_new - p_true pre and post, and the shift with a bootstrap 95% interval, over all probes",
)
