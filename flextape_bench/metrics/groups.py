"""Group shifts: the seesaw effect per demographic group (per case, the mean over the group's probes of
d_post - d_pre; reported as the mean over cases, as the paper does, and pooled over probes)."""
from __future__ import annotations

from typing import Any, Sequence

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.metrics import METRICS
from flextape_bench.metrics.probe_delta import aggregate_shifts, probe_shift_summary

UNKNOWN = "unknown"


class GroupShift:
    """Shift per value of the probe label `attribute` (e.g. gender); probes without the label count as unknown."""

    def __init__(self, attribute: str):
        self.attribute = attribute

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        by_group: dict[str, list[tuple[float, float]]] = {}
        for probe, a, b in zip(case.probes, pre.probes, post.probes):
            by_group.setdefault(probe.groups.get(self.attribute, UNKNOWN), []).append((a.d, b.d))
        return {group: probe_shift_summary(pairs) for group, pairs in sorted(by_group.items())}

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        groups = sorted({g for c in per_case for g in c})
        return {g: aggregate_shifts([c[g] for c in per_case if g in c]) for g in groups}


METRICS.add(
    "gender_shift",
    GroupShift("gender"),
    description="seesaw shift d_post - d_pre per probe gender: mean over cases of case means, and pooled",
)
