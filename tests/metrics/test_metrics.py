"""Metrics against hand-computed values on synthetic scores (p = exp(-mean NLL))."""
import math

import pytest

from flextape_bench.cases import CaseScores, EditCase, PairScore, Probe, Rewrite, Score
from flextape_bench.metrics import METRICS


def pair(p_new: float, p_true: float) -> PairScore:
    return PairScore(Score(1, -math.log(p_new)), Score(1, -math.log(p_true)))


REWRITE = Rewrite("{} was born in", "X", "P19", "Clunie", "New York City")
CASE = EditCase(1, REWRITE, (Probe("A was born in", groups={"gender": "female"}),
                             Probe("B was born in", groups={"gender": "male"}),
                             Probe("C was born in", groups={"gender": "male"}),
                             Probe("D was born in")))
PRE = CaseScores(pair(0.1, 0.5), (pair(0.2, 0.1), pair(0.3, 0.3), pair(0.1, 0.2), pair(0.5, 0.5)))
POST = CaseScores(pair(0.6, 0.2), (pair(0.4, 0.1), pair(0.3, 0.2), pair(0.3, 0.2), pair(0.5, 0.5)))
# d_pre = [0.1, 0.0, -0.1, 0.0], d_post = [0.3, 0.1, 0.1, 0.0], shifts = [0.2, 0.1, 0.2, 0.0]


def test_efficacy():
    value = METRICS.get("efficacy").case(CASE, PRE, POST)
    assert value == {"pre": False, "post": True}
    assert METRICS.get("efficacy").aggregate([value, {"pre": True, "post": True}]) == {"pre": 0.5, "post": 1.0, "n_cases": 2}


def test_probe_delta_case_and_aggregate():
    value = METRICS.get("probe_delta").case(CASE, PRE, POST)
    assert value["d_pre"] == pytest.approx(0.0)
    assert value["d_post"] == pytest.approx(0.125)
    assert value["shift"] == pytest.approx(0.125)
    other = {"d_pre": 0.0, "d_post": 0.5, "shift": 0.5, "shift_sum": 1.0, "n_probes": 2}
    agg = METRICS.get("probe_delta").aggregate([value, other])
    assert agg["shift"] == pytest.approx((0.125 + 0.5) / 2)  # mean of case means
    assert agg["shift_pooled"] == pytest.approx((0.5 + 1.0) / 6)  # pooled over the 6 probes
    assert agg["n_cases"] == 2 and agg["n_probes"] == 6


def test_gender_shift_per_group_and_unknown():
    value = METRICS.get("gender_shift").case(CASE, PRE, POST)
    assert value["female"]["shift"] == pytest.approx(0.2) and value["female"]["n_probes"] == 1
    assert value["male"]["shift"] == pytest.approx(0.15) and value["male"]["n_probes"] == 2
    assert value["unknown"]["shift"] == pytest.approx(0.0)
    agg = METRICS.get("gender_shift").aggregate([value, {"male": {"d_pre": 0, "d_post": 0.05, "shift": 0.05, "shift_sum": 0.05, "n_probes": 1}}])
    groups = agg["groups"]
    assert groups["male"]["shift"] == pytest.approx(0.1) and groups["male"]["n_cases"] == 2
    assert groups["male"]["shift_pooled"] == pytest.approx(0.35 / 3)
    assert groups["female"]["n_cases"] == 1 and groups["female"]["t"] is None  # one case: no test
    assert "t" not in groups["unknown"] and agg["unlabelled_probes"] == 1


def _case_summary(shift: float, n: int = 2) -> dict:
    return {"d_pre": 0.0, "d_post": shift, "shift": shift, "shift_sum": shift * n, "n_probes": n}


def test_group_shift_tests_case_means_against_zero_and_between_groups():
    female = [0.2, 0.1, 0.3]  # mean 0.2, sd 0.1, se 0.1/sqrt(3) = 0.057735, t = 3.4641, df 2
    male = [0.0, 0.1, -0.1]  # mean 0.0, sd 0.1, t = 0
    per_case = [{"female": _case_summary(f), "male": _case_summary(m)} for f, m in zip(female, male)]
    agg = METRICS.get("gender_shift").aggregate(per_case)
    f, m = agg["groups"]["female"], agg["groups"]["male"]
    assert f["t"] == pytest.approx(3.4641016) and f["df"] == 2
    assert f["p"] == pytest.approx(0.0741799, rel=1e-5)  # 2 * t.sf(3.4641, 2) = 1 - 3.4641 / sqrt(3.4641^2 + 2)
    assert m["t"] == pytest.approx(0.0, abs=1e-12) and m["p"] == pytest.approx(1.0)
    # Holm over the two groups: sorted p (0.0742, 1.0) -> (2 * 0.0742, max(0.1484, 1.0))
    assert f["p_adj"] == pytest.approx(2 * f["p"]) and m["p_adj"] == pytest.approx(1.0)
    assert f["d"] == pytest.approx(2.0)  # mean / sd
    assert f["ci_low"] <= 0.2 <= f["ci_high"]
    (pair,) = agg["pairwise"]
    # Welch: diff 0.2, se = sqrt(0.01/3 + 0.01/3) = 0.0816497, t = 2.4495, df = 4 (equal variances and sizes)
    assert (pair["a"], pair["b"]) == ("female", "male")
    assert pair["diff"] == pytest.approx(0.2) and pair["t"] == pytest.approx(2.4494897) and pair["df"] == pytest.approx(4.0)
