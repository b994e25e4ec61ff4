"""Efficacy: the share of cases whose edit prompt gives p(target_new) > p(target_true), before and after the edit;
the cases where it does not after the edit are edits that did not take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.metrics.base import METRICS, Metric
from flextape_bench.metrics.stats import mean

SHOWN = 10  # case ids a warning lists


class Efficacy(Metric):
    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        return {
            "pre": pre.edit.new.p > pre.edit.true.p,
            "post": post.edit.new.p > post.edit.true.p,
            "case_id": case.case_id,
        }

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "pre": mean(float(c["pre"]) for c in per_case),
            "post": mean(float(c["post"]) for c in per_case),
            "n_cases": len(per_case),
            "not_taken": [c["case_id"] for c in per_case if not c["post"] and "case_id" in c],
        }

    def warnings(self, values: dict[str, Any]) -> list[str]:
        missed = values.get("not_taken") or []
        if not missed:
            return []
        shown = ", ".join(str(i) for i in missed[:SHOWN]) + (", ..." if len(missed) > SHOWN else "")
        return [
            f"{len(missed)} of {values['n_cases']} edits did not take (after the edit, p(new) <= p(true) on the "
            f"edit prompt): cases {shown}"
        ]


METRICS.add("efficacy", Efficacy(), description="share of cases with p(new) > p(true) on the edit prompt, pre and post")
