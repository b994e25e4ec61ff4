"""Group shifts: the seesaw effect per demographic group. Per case, the mean over the group's probes of
d_post - d_pre; across cases, the mean of case means (the paper's number) and the pooled mean over probes, with a
one-sample t-test of the case means against 0, a bootstrap confidence interval and effect sizes per group (Holm
correction over the groups), and a test between every two labelled groups: paired over the cases that have both
(the groups share cases: e.g. both genders' probes of a pair-task case), Welch's where no case has both."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.demographics.labels import ATTRIBUTES, label_task_cases
from flextape_bench.metrics.base import METRICS, Metric, Options, Preparation, Prepared
from flextape_bench.metrics.probe_delta import aggregate_shifts, probe_shift_summary
from flextape_bench.metrics.significance import summarize_groups
from flextape_bench.tasks.spec import TaskSpec

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
TEST_FIELDS = ("t", "df", "p", "p_adj", "ci_low", "ci_high", "d", "g")


class DemographicLabels(Preparation):
    """The probes' demographic labels, from the local Wikidata cache, for the attributes of the task's group-shift
    metrics; gender combines the construction order with Wikidata P21 as the spec's probes.gender_wikidata says
    (`off`: the construction order alone, nothing to label). The summary records the label coverage."""

    def prepare(
        self, spec: TaskSpec, cases: Sequence[EditCase], metrics: Sequence[Metric], options: Options
    ) -> Prepared:
        gender_wikidata = spec.probes.gender_wikidata if spec.probes else "off"
        wanted = {getattr(metric, "attribute", None) for metric in metrics}
        attributes = [a for a in ATTRIBUTES if a in wanted and (a != "gender" or gender_wikidata != "off")]
        if not attributes:
            return Prepared(list(cases))
        labelled, summary = label_task_cases(
            cases,
            data_dir=options.data_dir,
            cache_root=options.cache,
            attributes=attributes,
            gender_wikidata=gender_wikidata,
        )
        for line in summary.lines():
            logger.info(f"{spec.task}: {line}")
        missing: tuple[str, ...] = ()
        if summary.probes and not summary.cached:
            missing = (
                f"no probe's Wikidata claims are cached, so no {'/'.join(attributes)} label comes from Wikidata "
                "(probes without one count as unknown); fetch them once with `flextape-bench demographics` and "
                "the same --tasks",
            )
        return Prepared(labelled, summary={"labels": summary.to_json()}, missing=missing)


LABELS = DemographicLabels()


class GroupShift(Metric):
    """Shift per value of the probe label `attribute` (e.g. gender). Probes without the label count as unknown:
    its shift is reported, but it is not a group, so it is left out of the tests and their correction."""

    preparation = LABELS

    def __init__(self, attribute: str, correction: str = "holm", confidence: float = 0.95, seed: int = 0):
        self.attribute, self.correction, self.confidence, self.seed = attribute, correction, confidence, seed

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        by_group: dict[str, list[tuple[float, float]]] = {}
        for probe, a, b in zip(case.probes, pre.probes, post.probes):
            by_group.setdefault(probe.groups.get(self.attribute, UNKNOWN), []).append((a.d, b.d))
        return {group: probe_shift_summary(pairs) for group, pairs in sorted(by_group.items())}

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        names = sorted({g for c in per_case for g in c})
        groups = {g: aggregate_shifts([c[g] for c in per_case if g in c]) for g in names}
        shifts = {
            g: [c[g]["shift"] if g in c and c[g]["n_probes"] else None for c in per_case] for g in names if g != UNKNOWN
        }  # aligned by case: None where a case has no probe of the group
        tests = summarize_groups(
            shifts, correction=self.correction, seed=self.seed, confidence=self.confidence, pairwise="auto"
        )
        for g in shifts:
            groups[g].update({k: tests["groups"][g][k] for k in TEST_FIELDS})
        return {
            "groups": groups,
            "pairwise": tests["pairwise"],
            "correction": self.correction,
            "confidence": self.confidence,
            "unlabelled_probes": groups.get(UNKNOWN, {}).get("n_probes", 0),
        }


for _attribute, _what in (
    ("gender", "probe gender (construction order and Wikidata P21: probes.gender_wikidata)"),
    ("race", "racial group of the probe's ethnic group (Wikidata P172, upstream tables)"),
    ("geography", "geographic group of the probe's ethnic group (Wikidata P172, upstream tables)"),
    ("continent", "continent of the probe's birthplace, else citizenship (Wikidata P19/P27)"),
):
    METRICS.add(
        f"{_attribute}_shift",
        GroupShift(_attribute),
        description=f"seesaw shift d_post - d_pre per {_what}: mean of case means with t-test, bootstrap "
        "CI and effect size; paired tests between groups sharing cases, else Welch",
    )
