"""Metrics against hand-computed values on synthetic scores (p = exp(-mean NLL))."""

import math

import pytest

from flextape_bench.cases import CaseScores, EditCase, PairScore, Probe, Rewrite, Score
from flextape_bench.metrics import METRICS


def pair(p_new: float, p_true: float) -> PairScore:
    return PairScore(Score(1, -math.log(p_new)), Score(1, -math.log(p_true)))


REWRITE = Rewrite("{} was born in", "X", "P19", "Clunie", "New York City")
CASE = EditCase(
    1,
    REWRITE,
    (
        Probe("A was born in", groups={"gender": "female"}),
        Probe("B was born in", groups={"gender": "male"}),
        Probe("C was born in", groups={"gender": "male"}),
        Probe("D was born in"),
    ),
)
PRE = CaseScores(pair(0.1, 0.5), (pair(0.2, 0.1), pair(0.3, 0.3), pair(0.1, 0.2), pair(0.5, 0.5)))
POST = CaseScores(pair(0.6, 0.2), (pair(0.4, 0.1), pair(0.3, 0.2), pair(0.3, 0.2), pair(0.5, 0.5)))
# d_pre = [0.1, 0.0, -0.1, 0.0], d_post = [0.3, 0.1, 0.1, 0.0], shifts = [0.2, 0.1, 0.2, 0.0]


def test_efficacy():
    efficacy = METRICS.get("efficacy")
    value = efficacy.case(CASE, PRE, POST)
    assert value == {"pre": False, "post": True, "case_id": CASE.case_id}
    aggregate = efficacy.aggregate([value, {"pre": True, "post": True, "case_id": 8}])
    assert aggregate == {"pre": 0.5, "post": 1.0, "n_cases": 2, "not_taken": []}
    assert efficacy.warnings(aggregate) == []


def test_edits_that_did_not_take_are_named():
    efficacy = METRICS.get("efficacy")
    per_case = [{"pre": False, "post": i % 3 == 0, "case_id": 100 + i} for i in range(30)]
    aggregate = efficacy.aggregate(per_case)
    missed = [100 + i for i in range(30) if i % 3]  # 20 cases: 101, 102, 104, 105, ...
    assert aggregate["not_taken"] == missed and aggregate["post"] == pytest.approx(10 / 30)
    (warning,) = efficacy.warnings(aggregate)
    assert warning == (
        "20 of 30 edits did not take (after the edit, p(new) <= p(true) on the edit prompt): cases "
        "101, 102, 104, 105, 107, 108, 110, 111, 113, 114, ..."
    )


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
    # the bootstrap 95% interval of the mean of case shifts: two cases, so every resample's mean is 0.125, 0.3125
    # or 0.5, and the 2.5% and 97.5% quantiles of 10,000 draws are the two ends
    assert (agg["ci_low"], agg["ci_high"], agg["confidence"]) == (pytest.approx(0.125), pytest.approx(0.5), 0.95)


def test_gender_shift_per_group_and_unknown():
    value = METRICS.get("gender_shift").case(CASE, PRE, POST)
    assert value["female"]["shift"] == pytest.approx(0.2) and value["female"]["n_probes"] == 1
    assert value["male"]["shift"] == pytest.approx(0.15) and value["male"]["n_probes"] == 2
    assert value["unknown"]["shift"] == pytest.approx(0.0)
    male = {"d_pre": 0, "d_post": 0.05, "shift": 0.05, "shift_sum": 0.05, "n_probes": 1}
    agg = METRICS.get("gender_shift").aggregate([value, {"male": male}])
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
    # both groups come from the same 3 cases: paired. Differences 0.2, 0.0, 0.4: mean 0.2, squared deviations
    # 0 + 0.04 + 0.04 -> var 0.04, sd 0.2, se 0.2 / sqrt(3) = 0.1154701, t = sqrt(3) = 1.7320508, df 2;
    # two-sided p for df 2: 1 - |t| / sqrt(t^2 + 2) = 1 - sqrt(3/5) = 0.2254033; d_z = 0.2 / 0.2 = 1
    # (Welch, the old test, would give t = 0.2 / sqrt(0.01/3 + 0.01/3) = 2.4494897 with df 4)
    assert (pair["a"], pair["b"], pair["test"]) == ("female", "male", "paired")
    assert (pair["n_a"], pair["n_b"]) == (3, 3) and pair["diff"] == pytest.approx(0.2)
    assert pair["t"] == pytest.approx(math.sqrt(3)) and pair["df"] == 2
    assert pair["p"] == pytest.approx(1 - math.sqrt(3 / 5)) and pair["d"] == pytest.approx(1.0)


def test_group_shift_pairs_over_shared_cases_and_welch_over_disjoint_ones():
    # case 1: female and male; case 2: female only; case 3: male and other; case 4: female and male; case 5: other
    female, male, other = [0.3, 0.5, None, 0.1, None], [0.1, None, 0.2, 0.4, None], [None, None, 0.0, None, 0.6]
    per_case = [
        {g: _case_summary(v) for g, v in (("female", f), ("male", m), ("other", o)) if v is not None}
        for f, m, o in zip(female, male, other)
    ]
    per_case[1]["unknown"] = _case_summary(9.0)  # never tested, never paired
    pairs = {(r["a"], r["b"]): r for r in METRICS.get("gender_shift").aggregate(per_case)["pairwise"]}
    # female - male: cases 1 and 4 have both; differences 0.2 and -0.3 (case 2's female and case 3's male are left
    # out): mean -0.05, sd = sqrt(((0.25)^2 + (0.25)^2) / 1) = 0.3535534, t = -0.05 / (0.3535534 / sqrt(2)) = -0.2,
    # df 1, two-sided p = 1 - (2 / pi) atan(0.2) = 0.8743341
    fm = pairs["female", "male"]
    assert (fm["test"], fm["n_a"], fm["n_b"]) == ("paired", 2, 2)
    assert fm["diff"] == pytest.approx(-0.05) and fm["t"] == pytest.approx(-0.2) and fm["df"] == 1
    assert fm["p"] == pytest.approx(1 - 2 / math.pi * math.atan(0.2))
    # male - other: case 3 has both, but one pair gives no sd: paired, undefined
    mo = pairs["male", "other"]
    assert (mo["test"], mo["n_a"], mo["t"], mo["p"]) == ("paired", 1, None, None)
    # female - other: no case has both: Welch over 3 female and 2 other case shifts. Female 0.3, 0.5, 0.1: mean 0.3,
    # var 0.04; other 0.0, 0.6: mean 0.3, var 0.18; diff 0, se = sqrt(0.04/3 + 0.18/2) = 0.3214550, t = 0
    fo = pairs["female", "other"]
    assert (fo["test"], fo["n_a"], fo["n_b"]) == ("welch", 3, 2)
    assert fo["diff"] == pytest.approx(0.0, abs=1e-12) and fo["se"] == pytest.approx(math.sqrt(0.04 / 3 + 0.09))
    assert fo["p"] == pytest.approx(1.0)
    assert set(pairs) == {("female", "male"), ("female", "other"), ("male", "other")}
