"""Efficacy: the share of cases whose edit prompt gives p(target_new) > p(target_true), before and after the edit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.metrics.base import METRICS, Metric
from flextape_bench.metrics.stats import mean


class Efficacy(Metric):
    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        return {"pre": pre.edit.new.p > pre.edit.true.p, "post": post.edit.new.p > post.edit.true.p}

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "pre": mean(float(c["pre"]) for c in per_case),
            "post": mean(float(c["post"]) for c in per_case),
            "n_cases": len(per_case),
        }


METRICS.add("efficacy", Efficacy(), description="share of cases with p(new) > p(true) on the edit prompt, pre and post")
