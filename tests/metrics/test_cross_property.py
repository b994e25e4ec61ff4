"""cross_property against hand-computed values on synthetic scores (p = exp(-sum NLL / n tokens)); top-1 by summed
log-probability (the default) or by p."""

import math

import pytest

from flextape_bench.cases import CaseScores, EditCase, PairScore, Rewrite, Score
from flextape_bench.metrics import METRICS
from flextape_bench.metrics.cross_property import CrossQuery, prompt_key, top1

CANDIDATES = ("physics", "medicine", "law")
EDIT = PairScore(Score(1, 1.0), Score(1, 1.0))


def score(p: float, n: int = 1) -> Score:
    """A Score of n tokens whose geometric-mean probability is p."""
    return Score(n, -n * math.log(p))


def case(case_id: int, subject: str, truth: tuple[str, ...] | None, ranking: str = "sum_nll") -> EditCase:
    prompts = (f"{subject}'s field of work is", f"{subject} is")
    return EditCase(
        case_id,
        Rewrite("{} was born in", subject, "P19", "Clunie", "Paris"),
        generation_prompts=(prompts[0],) * 5 + (prompts[1],) * 5,
        queries={"cross_property": CrossQuery("P101", prompts, CANDIDATES, truth, ranking)},
    )


def scores(*per_prompt: tuple[float, float, float]) -> CaseScores:
    return CaseScores(EDIT, (), tuple(tuple(score(p) for p in ps) for ps in per_prompt))


# physics: 3 tokens, sum NLL 0.9 -> log-probability -0.9, p = exp(-0.3) = 0.7408; medicine: 1 token, sum NLL 0.5 ->
# log-probability -0.5, p = exp(-0.5) = 0.6065; law: 2 tokens, sum NLL 4.0 -> -4.0, p = exp(-2) = 0.1353
LONG_VS_SHORT = (Score(3, 0.9), Score(1, 0.5), Score(2, 4.0))


def test_top1_by_summed_log_probability_and_by_p():
    best, top = top1(CANDIDATES, LONG_VS_SHORT)  # the default: highest total, -0.5 > -0.9
    assert best == "medicine" and top.sum_nll == 0.5
    best, top = top1(CANDIDATES, LONG_VS_SHORT, "mean_nll")  # highest per-token probability, 0.7408 > 0.6065
    assert best == "physics" and top.p == pytest.approx(math.exp(-0.3))
    with pytest.raises(ValueError, match="unknown ranking 'max_p'"):
        top1(CANDIDATES, LONG_VS_SHORT, "max_p")


def test_top1_tie_goes_to_the_first_candidate():
    # by p: medicine and law both have mean NLL 0.5 (p = exp(-0.5)), above physics (mean NLL 2.0)
    tied = (Score(1, 2.0), Score(2, 1.0), Score(1, 0.5))
    assert tied[1].p == tied[2].p
    assert top1(CANDIDATES, tied, "mean_nll")[0] == "medicine"
    assert top1(("law", "medicine"), (tied[2], tied[1]), "mean_nll")[0] == "law"
    same_sum = (Score(1, 1.0), Score(4, 1.0), Score(2, 3.0))  # physics and medicine both sum to 1.0
    assert top1(CANDIDATES, same_sum)[0] == "physics"
    assert top1(("medicine", "physics"), (same_sum[1], same_sum[0]))[0] == "medicine"
    with pytest.raises(ValueError):
        top1(CANDIDATES, tied[:2])


def test_the_ranking_changes_the_case_values():
    before = CaseScores(EDIT, (), (LONG_VS_SHORT, LONG_VS_SHORT))
    after = CaseScores(EDIT, (), ((Score(3, 0.9), Score(1, 0.95), Score(2, 4.0)), LONG_VS_SHORT))
    metric = METRICS.get("cross_property")
    by_sum = metric.case(case(4, "Di", ("physics",)), before, after)
    # pre: medicine (0.5 < 0.9); post of prompt 1: physics (0.9 < 0.95), a change; prompt 2 unchanged
    assert by_sum["ranking"] == "sum_nll"
    assert [(v["pre"], v["post"], v["changed"]) for v in by_sum["prompts"]] == [
        ("medicine", "physics", True),
        ("medicine", "medicine", False),
    ]
    first = by_sum["prompts"][0]
    assert (first["logprob_pre"], first["logprob_post"]) == (-0.5, -0.9)
    assert first["p_post"] == pytest.approx(math.exp(-0.3)) and (first["correct_pre"], first["correct_post"]) == (
        False,
        True,
    )
    by_mean = metric.case(case(4, "Di", ("physics",), "mean_nll"), before, after)
    # by p physics wins every time (0.7408 against exp(-0.5) and exp(-0.95)): nothing changes, always correct
    assert by_mean["ranking"] == "mean_nll"
    assert [(v["pre"], v["post"], v["changed"], v["correct_pre"]) for v in by_mean["prompts"]] == [
        ("physics", "physics", False, True)
    ] * 2
    assert metric.aggregate([by_sum])["ranking"] == "sum_nll" and metric.aggregate([by_mean])["ranking"] == "mean_nll"


def test_prompt_key_replaces_the_subject():
    assert prompt_key("Ada Lovelace's field of work is", "Ada Lovelace") == "{}'s field of work is"
    assert prompt_key("Someone is", "Ada") == "Someone is"


def test_case_values():
    metric = METRICS.get("cross_property")
    value = metric.case(
        case(1, "Ada", ("physics",)), scores((0.5, 0.2, 0.1), (0.3, 0.4, 0.1)), scores((0.2, 0.6, 0.1), (0.3, 0.2, 0.1))
    )
    assert value["property"] == "P101" and value["truth"] == ["physics"]
    first, second = value["prompts"]
    assert first == {
        "prompt": "{}'s field of work is",
        "pre": "physics",
        "post": "medicine",
        "p_pre": pytest.approx(0.5),
        "p_post": pytest.approx(0.6),
        "logprob_pre": pytest.approx(math.log(0.5)),
        "logprob_post": pytest.approx(math.log(0.6)),
        "changed": True,
        "correct_pre": True,
        "correct_post": False,
    }
    assert second == {
        "prompt": "{} is",
        "pre": "medicine",
        "post": "physics",
        "p_pre": pytest.approx(0.4),
        "p_post": pytest.approx(0.3),
        "logprob_pre": pytest.approx(math.log(0.4)),
        "logprob_post": pytest.approx(math.log(0.3)),
        "changed": True,
        "correct_pre": False,
        "correct_post": True,
    }


def test_unknown_truth_gives_no_correctness():
    value = METRICS.get("cross_property").case(
        case(2, "Bo", None), scores((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)), scores((0.1, 0.2, 0.3), (0.3, 0.2, 0.1))
    )
    assert value["truth"] is None
    assert [(v["pre"], v["post"], v["changed"], v["correct_pre"], v["correct_post"]) for v in value["prompts"]] == [
        ("law", "law", False, None, None),
        ("law", "physics", True, None, None),
    ]


def test_case_without_cross_query_has_no_prompts():
    plain = EditCase(3, Rewrite("{} was born in", "Cy", "P19", "Clunie", "Paris"))
    value = METRICS.get("cross_property").case(plain, CaseScores(EDIT, ()), CaseScores(EDIT, ()))
    assert value == {"property": None, "ranking": None, "truth": None, "prompts": []}


def test_aggregate_per_prompt():
    metric = METRICS.get("cross_property")
    per_case = [
        # known (physics): prompt 1 physics -> medicine (right -> wrong), prompt 2 medicine -> physics
        metric.case(
            case(1, "Ada", ("physics",)),
            scores((0.5, 0.2, 0.1), (0.3, 0.4, 0.1)),
            scores((0.2, 0.6, 0.1), (0.3, 0.2, 0.1)),
        ),
        # known (law or medicine): prompt 1 law -> law (right, right), prompt 2 law -> law
        metric.case(
            case(2, "Bo", ("medicine", "law")),
            scores((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)),
            scores((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)),
        ),
        # unknown: prompt 1 physics -> physics, prompt 2 physics -> law
        metric.case(
            case(3, "Cy", None), scores((0.9, 0.2, 0.1), (0.9, 0.2, 0.1)), scores((0.9, 0.2, 0.1), (0.1, 0.2, 0.9))
        ),
    ]
    agg = metric.aggregate(per_case)
    assert agg["property"] == "P101" and agg["n_cases"] == 3 and agg["n_known"] == 2
    first, second = agg["prompts"]
    # prompt 1: changed in 1 of 3 cases; over the 2 known: right before 2 (Ada, Bo), after 1 (Bo)
    assert first == {
        "prompt": "{}'s field of work is",
        "n_cases": 3,
        "n_changed": 1,
        "change_rate": pytest.approx(1 / 3),
        "n_known": 2,
        "n_correct_pre": 2,
        "n_correct_post": 1,
        "accuracy_pre": 1.0,
        "accuracy_post": 0.5,
    }
    # prompt 2: changed for Ada and Cy; known: right before only Bo (law), after Ada (physics) and Bo
    assert first["prompt"] != second["prompt"] == "{} is"
    assert (second["n_changed"], second["change_rate"]) == (2, pytest.approx(2 / 3))
    assert (second["accuracy_pre"], second["accuracy_post"]) == (0.5, 1.0)


def test_aggregate_of_nothing():
    agg = METRICS.get("cross_property").aggregate([])
    assert agg == {"property": None, "ranking": None, "prompts": [], "n_cases": 0, "n_known": 0}
    unknown = METRICS.get("cross_property").aggregate(
        [
            {
                "property": "P21",
                "truth": None,
                "prompts": [
                    {
                        "prompt": "{} is",
                        "pre": "male",
                        "post": "male",
                        "p_pre": 0.5,
                        "p_post": 0.5,
                        "changed": False,
                        "correct_pre": None,
                        "correct_post": None,
                    }
                ],
            }
        ]
    )
    (only,) = unknown["prompts"]
    assert only["n_known"] == 0 and only["accuracy_pre"] is None and only["accuracy_post"] is None
    assert only["change_rate"] == 0.0
