"""Cross-property drift: after each distinct generation prompt about the edited subject (e.g. "X's field of work
is", "X is"), the model's top-1 answer among the second property's candidates, before and after the edit; how often
it changes, and, where the subject's true value is known, how often it is right before and after.

Top-1 = the candidate with the highest summed log-probability of its tokens (ranking "sum_nll", the default, as the
upstream code ranks), or with the highest p = exp(-mean token NLL) (ranking "mean_nll", the geometric-mean token
probability); a tie goes to the candidate listed first. Prompts are matched across cases by their text with the
subject replaced by "{}".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from flextape_bench.cases import CaseScores, EditCase, Score, ScoreRequest, case_group
from flextape_bench.metrics.base import Metric, Options, Preparation, Prepared
from flextape_bench.metrics.cross_property.prepare import NAME, prepare_cross, query_of, unverified_files
from flextape_bench.tasks.spec import CrossRanking, TaskSpec

RANKINGS = get_args(CrossRanking)  # sum_nll, mean_nll


def top1(candidates: Sequence[str], scores: Sequence[Score], ranking: str = "sum_nll") -> tuple[str, Score]:
    """The candidate with the lowest summed NLL (`sum_nll`) or mean NLL (`mean_nll`), and its score; ties go to the
    earliest candidate."""
    if ranking not in RANKINGS:
        raise ValueError(f"unknown ranking {ranking!r}; known: {', '.join(RANKINGS)}")
    if not candidates or len(candidates) != len(scores):
        raise ValueError(f"{len(candidates)} candidates for {len(scores)} scores")
    loss = [s.sum_nll if ranking == "sum_nll" else s.mean_nll for s in scores]
    best = min(range(len(scores)), key=loss.__getitem__)  # min keeps the first of equal values
    return candidates[best], scores[best]


def prompt_key(prompt: str, subject: str) -> str:
    """The prompt with the subject replaced by "{}": the same generation prompt across cases."""
    return prompt.replace(subject, "{}") if subject else prompt


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


class CrossPreparation(Preparation):
    """Each case's query (candidates, distinct generation prompts, true values); the summary records the true-value
    coverage."""

    def prepare(
        self, spec: TaskSpec, cases: Sequence[EditCase], metrics: Sequence[Metric], options: Options
    ) -> Prepared:
        out, coverage = prepare_cross(spec, cases, options.data_dir, options.cache)
        return Prepared(out, summary={"cross_property_truth": coverage}, missing=tuple(unverified_files(spec)))


class CrossPropertyDrift(Metric):
    preparation = CrossPreparation()

    def score_requests(self, case: EditCase) -> list[ScoreRequest]:
        """Each distinct generation prompt with every candidate."""
        cross = query_of(case)
        if cross is None:
            return []
        return [ScoreRequest(prompt, cross.candidates, case_group(case.case_id)) for prompt in cross.prompts]

    def checked_targets(self, cases: Sequence[EditCase]) -> list[tuple[str, str, str]]:
        cross = query_of(cases[0]) if cases else None
        if cross is None or not cross.prompts:
            return []
        return [("cross_property.candidates", cross.prompts[0], candidate) for candidate in cross.candidates]

    def record(self, case: EditCase) -> dict[str, Any]:
        cross = query_of(case)
        return {"cross": dataclasses.asdict(cross)} if cross else {}  # prompts x candidates of "generation"

    def samples(self, record: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """Each distinct generation prompt with its top-1 candidate and that candidate's p, pre and post."""
        cross = record.get("cross") or {"prompts": []}
        for prompt, value in zip(cross["prompts"], record["metrics"].get(NAME, {}).get("prompts", [])):
            yield {
                "case_id": record["case_id"],
                "kind": "generation",
                "prompt": prompt,
                "property": cross["property"],
                "truth": cross["truth"],
                "pre": {"top1": value["pre"], "p": value["p_pre"]},
                "post": {"top1": value["post"], "p": value["p_post"]},
            }

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        cross = query_of(case)
        if cross is None:
            return {"property": None, "ranking": None, "truth": None, "prompts": []}
        truth = set(cross.truth) if cross.truth is not None else None
        prompts = []
        for prompt, before, after in zip(cross.prompts, pre.generation, post.generation, strict=True):
            top_pre, score_pre = top1(cross.candidates, before, cross.ranking)
            top_post, score_post = top1(cross.candidates, after, cross.ranking)
            prompts.append(
                {
                    "prompt": prompt_key(prompt, case.rewrite.subject),
                    "pre": top_pre,
                    "post": top_post,
                    "p_pre": score_pre.p,
                    "p_post": score_post.p,
                    "logprob_pre": -score_pre.sum_nll,
                    "logprob_post": -score_post.sum_nll,
                    "changed": top_pre != top_post,
                    "correct_pre": None if truth is None else top_pre in truth,
                    "correct_post": None if truth is None else top_post in truth,
                }
            )
        return {
            "property": cross.property,
            "ranking": cross.ranking,
            "truth": list(cross.truth) if cross.truth is not None else None,
            "prompts": prompts,
        }

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        by_prompt: dict[str, list[dict[str, Any]]] = {}
        for case in per_case:
            for value in case["prompts"]:
                by_prompt.setdefault(value["prompt"], []).append(value)
        prompts = []
        for prompt, values in by_prompt.items():
            known = [v for v in values if v["correct_pre"] is not None]
            changed = sum(v["changed"] for v in values)
            right_pre = sum(v["correct_pre"] for v in known)
            right_post = sum(v["correct_post"] for v in known)
            prompts.append(
                {
                    "prompt": prompt,
                    "n_cases": len(values),
                    "n_changed": changed,
                    "change_rate": _rate(changed, len(values)),
                    "n_known": len(known),
                    "n_correct_pre": right_pre,
                    "n_correct_post": right_post,
                    "accuracy_pre": _rate(right_pre, len(known)),
                    "accuracy_post": _rate(right_post, len(known)),
                }
            )
        properties = [c["property"] for c in per_case if c["property"]]
        rankings = [c["ranking"] for c in per_case if c.get("ranking")]
        return {
            "property": properties[0] if properties else None,
            "ranking": rankings[0] if rankings else None,
            "prompts": prompts,
            "n_cases": len(per_case),
            "n_known": sum(c["truth"] is not None for c in per_case),
        }
