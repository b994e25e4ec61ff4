"""Significance statistics against hand-computed values and scipy.stats, and their small-n behaviour."""

import itertools
import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from flextape_bench.metrics.significance import (
    adjust_p_values,
    benjamini_hochberg,
    bootstrap_ci,
    bootstrap_difference_ci,
    effect_size_one_sample,
    effect_size_paired,
    effect_size_two_sample,
    hedges_correction,
    hedges_g,
    holm,
    one_sample_t_test,
    paired_t_test,
    summarize_groups,
    welch_t_test,
)

X = [1.0, 2.0, 3.0, 4.0, 6.0]
# n = 5, mean = 16 / 5 = 3.2; deviations -2.2, -1.2, -0.2, 0.8, 2.8; squares 4.84 + 1.44 + 0.04 + 0.64 + 7.84 = 14.8
# var = 14.8 / 4 = 3.7, sd = sqrt(3.7) = 1.9235384..., se = sqrt(3.7 / 5) = sqrt(0.74) = 0.8602325...
# t = 3.2 / 0.8602325 = 3.7199244, df = 4
Y = [2.0, 4.0, 9.0]
# n = 3, mean = 15 / 3 = 5; deviations -3, -1, 4; squares 9 + 1 + 16 = 26; var = 26 / 2 = 13
Z = [2.0, 1.0, 5.0, 3.0, 9.0]
# X - Z = [-1, 1, -2, 1, -3]: mean -0.8; deviations -0.2, 1.8, -1.2, 1.8, -2.2; squares sum 12.8; var 3.2
# se = sqrt(3.2 / 5) = 0.8, t = -0.8 / 0.8 = -1, df = 4


# ---------------------------------------------------------------- t-tests


def test_one_sample_hand_values():
    r = one_sample_t_test(X)
    assert r.n == 5
    assert r.mean == pytest.approx(3.2)
    assert r.sd == pytest.approx(math.sqrt(3.7))
    assert r.se == pytest.approx(math.sqrt(0.74))
    assert r.t == pytest.approx(3.2 / math.sqrt(0.74))
    assert r.t == pytest.approx(3.7199244, abs=1e-7)
    assert r.df == 4
    assert r.p == pytest.approx(2 * stats.t.sf(3.2 / math.sqrt(0.74), 4))


def test_one_sample_matches_scipy_and_popmean():
    rng = np.random.default_rng(3)
    data = rng.normal(0.3, 1.0, size=25)
    for popmean in (0.0, 0.5):
        r = one_sample_t_test(data.tolist(), popmean=popmean)
        ref = stats.ttest_1samp(data, popmean)
        assert r.t == pytest.approx(ref.statistic, rel=1e-12)
        assert r.p == pytest.approx(ref.pvalue, rel=1e-10)
        assert r.df == ref.df


def test_one_sample_skips_none():
    assert one_sample_t_test([1.0, None, 2.0, 3.0, None, 4.0, 6.0]) == one_sample_t_test(X)


def test_welch_hand_values():
    r = welch_t_test(X, Y)
    # v1/n1 = 3.7/5 = 0.74, v2/n2 = 13/3 = 4.3333; se^2 = 5.073333; t = (3.2 - 5) / sqrt(5.073333) = -0.7991454
    # df = 5.073333^2 / (0.74^2 / 4 + 4.3333^2 / 2) = 25.738711 / (0.1369 + 9.388889) = 2.7020031
    assert (r.n1, r.n2) == (5, 3)
    assert r.diff == pytest.approx(-1.8)
    assert r.se == pytest.approx(math.sqrt(0.74 + 13 / 3))
    assert r.t == pytest.approx(-0.7991454, abs=1e-7)
    assert r.df == pytest.approx((0.74 + 13 / 3) ** 2 / (0.74**2 / 4 + (13 / 3) ** 2 / 2))
    assert r.df == pytest.approx(2.7020031, abs=1e-7)


def test_welch_matches_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 1.0, size=12), rng.normal(0.8, 3.0, size=30)
    r = welch_t_test(a.tolist(), b.tolist())
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert r.t == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.df == pytest.approx(ref.df, rel=1e-12)
    # one constant sample still has a defined test (the other carries the variance)
    r = welch_t_test([2.0, 2.0, 2.0], X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about the constant sample
        ref = stats.ttest_ind([2.0, 2.0, 2.0], X, equal_var=False)
    assert r.t == pytest.approx(ref.statistic) and r.df == pytest.approx(4.0) and r.p == pytest.approx(ref.pvalue)


def test_paired_hand_values_and_scipy():
    r = paired_t_test(X, Z)
    assert r.n == 5 and r.df == 4
    assert (r.mean1, r.mean2) == (pytest.approx(3.2), pytest.approx(4.0))
    assert r.diff == pytest.approx(-0.8)
    assert r.sd == pytest.approx(math.sqrt(3.2))
    assert r.se == pytest.approx(0.8)
    assert r.t == pytest.approx(-1.0)
    ref = stats.ttest_rel(X, Z)
    assert r.t == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)


def test_paired_uses_complete_pairs_only():
    # positions 1 and 5 lack one side; the complete pairs are exactly (X, Z)
    x = [1.0, 7.0, 2.0, 3.0, 4.0, None, 6.0]
    y = [2.0, None, 1.0, 5.0, 3.0, 8.0, 9.0]
    assert paired_t_test(x, y) == paired_t_test(X, Z)
    # by case id: keys missing on one side are dropped
    xm = {10: 1.0, 11: 2.0, 12: 3.0, 13: 4.0, 14: 6.0, 15: 5.0}
    ym = {14: 9.0, 12: 5.0, 10: 2.0, 11: 1.0, 13: 3.0, 99: 0.0}
    assert paired_t_test(xm, ym) == paired_t_test(X, Z)
    with pytest.raises(ValueError):
        paired_t_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_t_test({1: 1.0}, [1.0])


# ---------------------------------------------------------------- multiple comparisons


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005, 0.01, 0.03, 0.04 with multipliers 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04
    # running max (step-down monotone) -> 0.02, 0.03, 0.06, 0.06; back in input order:
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1: 2 * 0.6 = 1.2 -> 1; then max(1, 0.7) = 1
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []


def test_bh_by_hand():
    # sorted 0.01, 0.04, 0.045 (m = 3): m p / rank = 0.03, 0.06, 0.045; running min from the top (step-up):
    # 0.045, min(0.06, 0.045) = 0.045, min(0.03, 0.045) = 0.03
    assert benjamini_hochberg([0.045, 0.01, 0.04]) == pytest.approx([0.045, 0.03, 0.045])
    assert benjamini_hochberg([0.9, 0.95]) == pytest.approx([0.95, 0.95])
    assert benjamini_hochberg([1.0, 1.0, 1.0]) == [1.0, 1.0, 1.0]


def test_bh_matches_scipy():
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(0, 0.05, 8), rng.uniform(0, 1, 20), [0.5, 0.5, 1.0]])
    rng.shuffle(p)
    if not hasattr(stats, "false_discovery_control"):
        pytest.skip("scipy without false_discovery_control")
    assert benjamini_hochberg(p.tolist()) == pytest.approx(stats.false_discovery_control(p, method="bh").tolist())


@pytest.mark.parametrize("correct", [holm, benjamini_hochberg])
def test_corrections_monotone_capped_and_ordered(correct):
    rng = np.random.default_rng(6)
    p = rng.uniform(0, 0.3, 15).tolist()
    adj = correct(p)
    assert all(a >= b for a, b in zip(adj, p))  # never below the raw p
    assert all(a <= 1.0 for a in adj)
    order = np.argsort(p, kind="stable")
    assert all(adj[i] <= adj[j] for i, j in itertools.pairwise(order))  # monotone in the raw p
    # None entries stay None and are not counted in the family size
    assert correct([None, *p, None]) == [None, *adj, None]


def test_adjust_p_values_dispatch_and_errors():
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjust_p_values(p, "holm") == holm(p)
    assert adjust_p_values(p, "bh") == benjamini_hochberg(p)
    with pytest.raises(ValueError):
        adjust_p_values(p, "bonferroni")
    with pytest.raises(ValueError):
        holm([0.1, 1.5])
    with pytest.raises(ValueError):
        benjamini_hochberg([float("nan")])


# ---------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_reproducible_and_contains_mean(method):
    data = np.random.default_rng(7).normal(1.0, 2.0, size=30).tolist()
    a = bootstrap_ci(data, method=method, seed=123)
    b = bootstrap_ci(data, method=method, seed=123)
    c = bootstrap_ci(data, method=method, seed=124)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low < a.mean < a.high
    assert a.n == 30 and a.n_resamples == 10000 and a.confidence == 0.95
    assert bootstrap_ci(data, method=method, seed=np.random.default_rng(9)) == bootstrap_ci(
        data, method=method, seed=np.random.default_rng(9)
    )


def test_bootstrap_width_shrinks_with_n_and_confidence():
    rng = np.random.default_rng(8)
    small = bootstrap_ci(rng.normal(size=20).tolist(), seed=0)
    large = bootstrap_ci(rng.normal(size=2000).tolist(), seed=0)  # resampled in chunks
    assert large.high - large.low < (small.high - small.low) / 5
    data = rng.normal(size=50).tolist()
    narrow = bootstrap_ci(data, confidence=0.5, seed=0)
    wide = bootstrap_ci(data, confidence=0.99, seed=0)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_bootstrap_percentile_near_normal_theory():
    # for a mean of n = 200 values the percentile interval is close to mean -/+ 1.96 se
    data = np.random.default_rng(10).normal(0.0, 1.0, size=200)
    ci = bootstrap_ci(data.tolist(), seed=1)
    se = data.std(ddof=1) / math.sqrt(200)
    assert ci.low == pytest.approx(data.mean() - 1.96 * se, abs=0.15 * se)
    assert ci.high == pytest.approx(data.mean() + 1.96 * se, abs=0.15 * se)


def test_bca_acceleration_by_hand_and_scipy():
    ci = bootstrap_ci(X, method="bca", seed=0)
    # a = sum(dev^3) / (6 sum(dev^2)^1.5); dev^3: -10.648 - 1.728 - 0.008 + 0.512 + 21.952 = 10.08
    # sum(dev^2) = 14.8, 14.8^1.5 = 56.936737; a = 10.08 / 341.62042 = 0.0295064
    assert ci.acceleration == pytest.approx(10.08 / (6 * 14.8**1.5))
    assert ci.acceleration == pytest.approx(0.0295064, abs=1e-7)
    assert ci.z0 is not None and bootstrap_ci(X, seed=0).z0 is None
    # skewed data: BCa agrees with scipy's BCa up to Monte Carlo error, and shifts right of the percentile interval
    data = np.random.default_rng(11).exponential(1.0, size=40)
    ours = bootstrap_ci(data.tolist(), method="bca", seed=2)
    pct = bootstrap_ci(data.tolist(), method="percentile", seed=2)
    ref = stats.bootstrap(
        (data,), np.mean, method="BCa", n_resamples=10000, **_scipy_rng(np.random.default_rng(3))
    ).confidence_interval
    se = data.std(ddof=1) / math.sqrt(40)
    assert ours.low == pytest.approx(ref.low, abs=0.2 * se)
    assert ours.high == pytest.approx(ref.high, abs=0.2 * se)
    assert ours.acceleration > 0 and ours.high > pct.high


def _scipy_rng(rng):
    import inspect

    return {"rng": rng} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": rng}


def test_bootstrap_difference_of_independent_means_agrees_with_scipy():
    # two independent samples, each resampled on its own: scipy's unpaired percentile bootstrap of mean(x) - mean(y)
    rng = np.random.default_rng(5)
    x, y = rng.normal(1.0, 1.0, size=30), rng.normal(0.2, 2.0, size=50)
    low, high = bootstrap_difference_ci(x.tolist(), y.tolist(), n_resamples=20000, seed=1)
    ref = stats.bootstrap(
        (x, y),
        lambda a, b, axis: a.mean(axis=axis) - b.mean(axis=axis),
        paired=False,
        vectorized=True,
        method="percentile",
        n_resamples=20000,
        **_scipy_rng(np.random.default_rng(2)),
    ).confidence_interval
    se = math.sqrt(x.var(ddof=1) / 30 + y.var(ddof=1) / 50)
    assert low == pytest.approx(ref.low, abs=0.1 * se) and high == pytest.approx(ref.high, abs=0.1 * se)
    assert bootstrap_difference_ci(x.tolist(), y.tolist(), n_resamples=20000, seed=1) == (low, high)  # seeded
    # n < 2 in either sample: none (as Welch's test); both constant: the difference itself
    assert bootstrap_difference_ci([1.0], Y) == (None, None) and bootstrap_difference_ci(X, [None]) == (None, None)
    assert bootstrap_difference_ci([2.0, 2.0], [0.5, 0.5, None]) == (1.5, 1.5)
    with pytest.raises(ValueError):
        bootstrap_difference_ci(X, Y, confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_difference_ci(X, Y, n_resamples=0)


def test_pairwise_rows_carry_the_bootstrap_interval_of_their_difference():
    # female - male share cases 1-5 (paired: the interval of the per-case differences X - Z = -1, 1, -2, 1, -3);
    # female - other share none (Welch: each group resampled on its own)
    values = {"female": [*X, None, None], "male": [*Z, None, None], "other": [None] * 5 + [0.5, 1.5]}
    pairs = {(r["a"], r["b"]): r for r in summarize_groups(values, pairwise="auto", n_resamples=4000)["pairwise"]}
    fm, fo = pairs["female", "male"], pairs["female", "other"]
    differences = [a - b for a, b in zip(X, Z)]
    ref = stats.bootstrap(
        (np.array(differences),), np.mean, method="percentile", n_resamples=4000, **_scipy_rng(np.random.default_rng(4))
    ).confidence_interval
    assert fm["ci_low"] == pytest.approx(ref.low, abs=0.15) and fm["ci_high"] == pytest.approx(ref.high, abs=0.15)
    assert min(differences) <= fm["ci_low"] < fm["diff"] < fm["ci_high"] <= max(differences)
    # Welch: the difference of means lies between the extreme differences of resampled means
    assert X[0] - 1.5 <= fo["ci_low"] < fo["diff"] < fo["ci_high"] <= X[-1] - 0.5
    json.dumps(pairs[("male", "other")], allow_nan=False)


def test_bootstrap_options_checked():
    with pytest.raises(ValueError):
        bootstrap_ci(X, method="basic")
    with pytest.raises(ValueError):
        bootstrap_ci(X, confidence=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci(X, n_resamples=0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, float("nan")])


# ---------------------------------------------------------------- effect sizes


def test_effect_sizes_by_hand():
    e = effect_size_one_sample(X)
    # d = 3.2 / sqrt(3.7) = 1.6636008; J(4) = Gamma(2) / (sqrt(2) Gamma(1.5)) = 1 / (sqrt(2) sqrt(pi) / 2)
    #   = 2 / sqrt(2 pi) = 0.7978846; g = 1.3273614
    assert e.d == pytest.approx(3.2 / math.sqrt(3.7))
    assert hedges_correction(4) == pytest.approx(2 / math.sqrt(2 * math.pi))
    assert e.g == pytest.approx(1.3273614, abs=1e-7) and e.df == 4
    # two samples: s_pooled^2 = (4 * 3.7 + 2 * 13) / 6 = 40.8 / 6 = 6.8; d = -1.8 / sqrt(6.8) = -0.6902685
    # J(6) = Gamma(3) / (sqrt(3) Gamma(2.5)) = 2 / (sqrt(3) * 0.75 sqrt(pi)) = 0.8686267; g = -0.5995856
    e2 = effect_size_two_sample(X, Y)
    assert e2.d == pytest.approx(-1.8 / math.sqrt(6.8))
    assert hedges_correction(6) == pytest.approx(2 / (math.sqrt(3) * 0.75 * math.sqrt(math.pi)))
    assert e2.g == pytest.approx(-0.5995856, abs=1e-7) and e2.df == 6
    # paired d_z = -0.8 / sqrt(3.2)
    assert effect_size_paired(X, Z).d == pytest.approx(-0.8 / math.sqrt(3.2))


def test_hedges_correction_approximation_and_limits():
    for df in (5, 10, 40, 200):
        assert hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), rel=2e-3)
    assert hedges_correction(1) is None and hedges_correction(0.5) is None and hedges_correction(None) is None
    assert hedges_g(None, 10) is None and hedges_g(1.0, 1) is None


# ---------------------------------------------------------------- small n and zero variance


def test_undefined_statistics_are_none():
    empty = one_sample_t_test([])
    assert (empty.n, empty.mean, empty.sd, empty.t, empty.p) == (0, None, None, None, None)
    one = one_sample_t_test([0.4])
    assert one.mean == 0.4 and (one.sd, one.se, one.t, one.df, one.p) == (None, None, None, None, None)
    const = one_sample_t_test([0.1, 0.1, 0.1])  # exactly zero variance, not a rounding residue
    assert (const.sd, const.se, const.df) == (0.0, 0.0, 2.0) and const.t is None and const.p is None

    assert welch_t_test([1.0], X).t is None and welch_t_test([], []).diff is None
    both_const = welch_t_test([1.0, 1.0], [2.0, 2.0])
    assert both_const.diff == -1.0 and both_const.se == 0.0 and both_const.t is None and both_const.p is None
    assert paired_t_test([1.0, None], [None, 2.0]).n == 0
    assert paired_t_test([1.0, 2.0], [0.0, 1.0]).t is None  # constant differences

    assert effect_size_one_sample([1.0]).d is None and effect_size_one_sample([1.0, 1.0]).d is None
    assert effect_size_one_sample([1.0, 3.0]).g is None  # df = 1
    assert effect_size_two_sample([1.0], X).d is None
    assert effect_size_two_sample([1.0, 1.0], [2.0, 2.0]).d is None

    assert (bootstrap_ci([]).low, bootstrap_ci([1.0]).high) == (None, None)
    flat = bootstrap_ci([0.1, 0.1, 0.1])
    assert flat.low == flat.high == flat.mean
    assert bootstrap_ci([0.1, 0.1, 0.1], method="bca").low is None

    for r in (empty, one, const, both_const, flat):
        json.dumps(r.to_dict(), allow_nan=False)


# ---------------------------------------------------------------- summarize_groups


def test_summarize_groups_shape_and_values():
    values = {"male": Y, "female": X, "nonbinary": [0.5], "const": [2.0, 2.0, 2.0]}
    s = summarize_groups(values, seed=0, n_resamples=2000)
    json.dumps(s, allow_nan=False)
    assert list(s["groups"]) == ["const", "female", "male", "nonbinary"]
    keys = ["n", "mean", "sd", "se", "t", "df", "p", "p_adj", "ci_low", "ci_high", "d", "g"]
    assert all(list(g) == keys for g in s["groups"].values())
    f = s["groups"]["female"]
    assert f["t"] == pytest.approx(3.7199244, abs=1e-7) and f["d"] == pytest.approx(1.6636008, abs=1e-7)
    ci = bootstrap_ci(X, n_resamples=2000, seed=np.random.default_rng([0, __import__("zlib").crc32(b"female")]))
    assert (f["ci_low"], f["ci_high"]) == (ci.low, ci.high)
    # Holm over the two defined p-values (female, male); const and nonbinary have none
    m = s["groups"]["male"]
    assert [f["p_adj"], m["p_adj"]] == pytest.approx(holm([f["p"], m["p"]]))
    assert s["groups"]["const"]["p_adj"] is None and s["groups"]["nonbinary"]["ci_low"] is None
    assert s["groups"]["const"]["ci_low"] == s["groups"]["const"]["ci_high"] == 2.0

    pairs = {(r["a"], r["b"]): r for r in s["pairwise"]}
    assert len(pairs) == 6 and ("female", "male") in pairs
    fm = pairs["female", "male"]
    assert fm["t"] == pytest.approx(-0.7991454, abs=1e-7) and fm["df"] == pytest.approx(2.7020031, abs=1e-7)
    assert fm["d"] == pytest.approx(-1.8 / math.sqrt(6.8))
    defined = [r for r in s["pairwise"] if r["p"] is not None]
    assert len(defined) == 3  # the pairs with nonbinary (n = 1) have no test
    assert [r["p_adj"] for r in defined] == pytest.approx(holm([r["p"] for r in defined]))
    assert s["correction"] == "holm" and s["pairwise_test"] == "welch" and s["n_resamples"] == 2000


def test_summarize_groups_reproducible_bh_and_stable_per_group():
    values = {"female": X, "male": Y}
    a = summarize_groups(values, correction="bh", seed=5, n_resamples=1000)
    assert a == summarize_groups(values, correction="bh", seed=5, n_resamples=1000)
    f, m = a["groups"]["female"], a["groups"]["male"]
    assert [f["p_adj"], m["p_adj"]] == pytest.approx(benjamini_hochberg([f["p"], m["p"]]))
    # adding a group changes neither the other groups' intervals nor their tests
    b = summarize_groups({**values, "other": [0.1, 0.3, 0.2]}, correction="bh", seed=5, n_resamples=1000)
    assert b["groups"]["female"]["ci_low"] == f["ci_low"] and b["groups"]["female"]["t"] == f["t"]
    with pytest.raises(ValueError):
        summarize_groups(values, correction="bonferroni")


def test_summarize_groups_paired():
    values = {"female": [1.0, 7.0, 2.0, 3.0, 4.0, None, 6.0], "male": [2.0, None, 1.0, 5.0, 3.0, 8.0, 9.0]}
    s = summarize_groups(values, pairwise="paired", n_resamples=500)
    (row,) = s["pairwise"]
    assert (row["n_a"], row["n_b"]) == (5, 5)
    assert row["t"] == pytest.approx(-1.0) and row["p"] == pytest.approx(stats.ttest_rel(X, Z).pvalue)
    assert row["p_adj"] == pytest.approx(row["p"])  # a family of one
    assert row["d"] == pytest.approx(-0.8 / math.sqrt(3.2))
    assert s["groups"]["female"]["n"] == 6
    with pytest.raises(ValueError):
        summarize_groups({"a": [1.0, 2.0], "b": [1.0]}, pairwise="paired")


def test_summarize_groups_auto_pairs_shared_cases_and_welches_disjoint_ones():
    # cases 1-5 have female (X) and male (Z); cases 6-7 have only "other": [0.5, 1.5]
    values = {"female": [*X, None, None], "male": [*Z, None, None], "other": [None] * 5 + [0.5, 1.5]}
    s = summarize_groups(values, pairwise="auto", n_resamples=200)
    assert s["pairwise_test"] == "auto"
    pairs = {(r["a"], r["b"]): r for r in s["pairwise"]}
    # female - male share every case: paired, t = -1, df = 4 (see Z), d_z = -0.8 / sqrt(3.2)
    fm = pairs["female", "male"]
    assert (fm["test"], fm["n_a"], fm["n_b"], fm["df"]) == ("paired", 5, 5, 4)
    assert fm["t"] == pytest.approx(-1.0) and fm["d"] == pytest.approx(-0.8 / math.sqrt(3.2))
    ref = stats.ttest_rel(X, Z)
    assert fm["t"] == pytest.approx(ref.statistic) and fm["p"] == pytest.approx(ref.pvalue)
    # female - other share no case: Welch. X: mean 3.2, var 3.7 (n 5); other: mean 1.0, var 0.5 (n 2)
    # se = sqrt(3.7/5 + 0.5/2) = sqrt(0.99), t = 2.2 / sqrt(0.99) = 2.2110832,
    # df = 0.99^2 / (0.74^2/4 + 0.25^2/1) = 0.9801 / 0.1994 = 4.9152457; pooled var (4*3.7 + 0.5) / 5 = 3.06
    fo = pairs["female", "other"]
    assert (fo["test"], fo["n_a"], fo["n_b"]) == ("welch", 5, 2)
    assert fo["t"] == pytest.approx(2.2 / math.sqrt(0.99)) and fo["df"] == pytest.approx(0.9801 / 0.1994)
    assert fo["d"] == pytest.approx(2.2 / math.sqrt(3.06))
    welch = stats.ttest_ind(X, [0.5, 1.5], equal_var=False)
    assert fo["t"] == pytest.approx(welch.statistic) and fo["p"] == pytest.approx(welch.pvalue)
    assert pairs["male", "other"]["test"] == "welch"
    # the groups' own tests skip the None entries
    assert s["groups"]["female"]["t"] == pytest.approx(3.7199244, abs=1e-7) and s["groups"]["other"]["n"] == 2
    assert all(r["test"] == "welch" for r in summarize_groups({"a": X, "b": Y}, n_resamples=10)["pairwise"])
    with pytest.raises(ValueError, match="aligned by case"):
        summarize_groups({"a": [1.0, 2.0], "b": [1.0]}, pairwise="auto")
    with pytest.raises(ValueError, match="known: welch, paired, auto"):
        summarize_groups(values, pairwise="pooled")
