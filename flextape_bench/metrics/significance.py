"""Significance of per-case shifts: t-tests, multiple-comparison correction, bootstrap intervals, effect sizes.

Each edit case contributes one value per group (the case's mean shift over the group's probes). The statistics are
computed here from those values; scipy.stats supplies only distribution functions (t.sf, norm.ppf, norm.cdf).

Small samples never raise and never give NaN: a statistic that is undefined is None. Concretely, with n values:
n = 0 gives no mean; n < 2 gives no sd/se/t/df/p/effect size/interval; zero variance (all values equal) gives
sd = se = 0 but no t, p or effect size (a ratio with a zero denominator), a zero-width percentile interval and no
BCa interval. None entries in inputs are skipped (a case without the group); NaN or infinite values are a caller
bug and raise ValueError, as do invalid options (method names, confidence outside (0, 1), p-values outside [0, 1]).
See docs/metrics.md, section "Significance", for the formulas.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np
from scipy import stats as _dist  # distribution functions only

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Values = Iterable["float | None"]

# Resampled indices are drawn in chunks of about this many elements, so memory stays bounded for large n.
_CHUNK_ELEMENTS = 1 << 20


def _json_float(x: float | None) -> float | None:
    """A plain float, or None for None and non-finite values (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: ints stay ints, numbers become floats, undefined values None."""
        return {
            k: v if v is None or isinstance(v, (str, bool, int)) else _json_float(v)
            for k, v in asdict(cast("DataclassInstance", self)).items()
        }  # only dataclasses subclass it


def _clean(values: Values) -> list[float]:
    """Finite floats, skipping None; raises ValueError on NaN or infinity."""
    out = []
    for v in values:
        if v is None:
            continue
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"non-finite value {v!r}")
        out.append(v)
    return out


def _moments(xs: Sequence[float]) -> tuple[int, float | None, float | None]:
    """(n, mean, sample variance with n - 1 denominator); mean None for n = 0, variance None for n < 2."""
    n = len(xs)
    if n == 0:
        return 0, None, None
    m = math.fsum(xs) / n
    if n < 2:
        return n, m, None
    if min(xs) == max(xs):  # exactly zero, not a rounding residue of the mean
        return n, m, 0.0
    return n, m, math.fsum((x - m) ** 2 for x in xs) / (n - 1)


def _two_sided_p(t: float, df: float) -> float:
    return min(1.0, 2.0 * float(_dist.t.sf(abs(t), df)))


# ---------------------------------------------------------------- t-tests


@dataclass(frozen=True)
class OneSampleTTest(_ToDict):
    """One-sample t-test of mean == popmean: t = (mean - popmean) / (sd / sqrt(n)), df = n - 1, two-sided p."""

    n: int
    mean: float | None
    sd: float | None
    se: float | None
    t: float | None
    df: float | None
    p: float | None


def one_sample_t_test(values: Values, popmean: float = 0.0) -> OneSampleTTest:
    """t-test of the values' mean against `popmean` (default 0: no shift). None entries are skipped."""
    xs = _clean(values)
    n, m, var = _moments(xs)
    sd = math.sqrt(var) if var is not None else None
    se = sd / math.sqrt(n) if sd is not None else None
    df = float(n - 1) if n >= 2 else None
    t = p = None
    if se:  # defined and > 0
        assert m is not None and df is not None  # se is defined, so n >= 2
        t = (m - popmean) / se
        p = _two_sided_p(t, df)
    return OneSampleTTest(n, m, sd, se, t, df, p)


@dataclass(frozen=True)
class WelchTTest(_ToDict):
    """Welch's two-sample t-test (unequal variances) of mean1 - mean2 == 0."""

    n1: int
    n2: int
    mean1: float | None
    mean2: float | None
    diff: float | None
    se: float | None
    t: float | None
    df: float | None
    p: float | None


def welch_t_test(x: Values, y: Values) -> WelchTTest:
    """Welch's t-test: t = (m1 - m2) / sqrt(v1/n1 + v2/n2), Welch-Satterthwaite df. Needs n >= 2 in each sample and
    a non-zero combined variance (one sample may be constant)."""
    xs, ys = _clean(x), _clean(y)
    n1, m1, v1 = _moments(xs)
    n2, m2, v2 = _moments(ys)
    diff = m1 - m2 if m1 is not None and m2 is not None else None
    se = t = df = p = None
    if v1 is not None and v2 is not None:
        a, b = v1 / n1, v2 / n2
        se = math.sqrt(a + b)
        if se > 0:
            assert diff is not None  # both variances are defined, so both means are
            df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
            t = diff / se
            p = _two_sided_p(t, df)
    return WelchTTest(n1, n2, m1, m2, diff, se, t, df, p)


@dataclass(frozen=True)
class PairedTTest(_ToDict):
    """Paired t-test: a one-sample t-test of the differences x - y over the n complete pairs."""

    n: int
    mean1: float | None
    mean2: float | None
    diff: float | None
    sd: float | None
    se: float | None
    t: float | None
    df: float | None
    p: float | None


def _pairs(
    x: Sequence[float | None] | Mapping[Hashable, float | None],
    y: Sequence[float | None] | Mapping[Hashable, float | None],
) -> tuple[list[float], list[float]]:
    """The complete pairs: by key for two mappings (in x's key order), by position for two sequences of equal
    length; a pair with None on either side is dropped."""
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        raw = [(x[k], y[k]) for k in x if k in y]
    elif isinstance(x, Mapping) or isinstance(y, Mapping):
        raise ValueError("paired values must be two mappings or two sequences")
    else:
        if len(x) != len(y):
            raise ValueError(f"paired sequences differ in length: {len(x)} and {len(y)}")
        raw = list(zip(x, y))
    kept = [(a, b) for a, b in raw if a is not None and b is not None]
    return _clean(a for a, _ in kept), _clean(b for _, b in kept)


def paired_t_test(
    x: Sequence[float | None] | Mapping[Hashable, float | None],
    y: Sequence[float | None] | Mapping[Hashable, float | None],
) -> PairedTTest:
    """Paired t-test of x - y for two groups measured on the same cases: pass two mappings keyed by case id, or two
    sequences aligned by case with None where a case lacks the group. Only complete pairs count."""
    xs, ys = _pairs(x, y)
    r = one_sample_t_test([a - b for a, b in zip(xs, ys)])
    return PairedTTest(r.n, _moments(xs)[1], _moments(ys)[1], r.mean, r.sd, r.se, r.t, r.df, r.p)


# ---------------------------------------------------------------- multiple comparisons


def _family(p_values: Sequence[float | None]) -> tuple[list[int], list[float]]:
    idx, ps = [], []
    for i, p in enumerate(p_values):
        if p is None:
            continue
        p = float(p)
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"p-value {p!r} is not in [0, 1]")
        idx.append(i)
        ps.append(p)
    return idx, ps


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values in input order: sorted ascending, p_adj(i) = max over j <= i of
    min(1, (m - j + 1) p(j)). None entries stay None and are not counted in the family size m."""
    out: list[float | None] = [None] * len(p_values)
    idx, ps = _family(p_values)
    m = len(ps)
    running = 0.0
    for rank, j in enumerate(sorted(range(m), key=ps.__getitem__)):  # rank is 0-based: multiplier m - rank
        running = max(running, min(1.0, (m - rank) * ps[j]))
        out[idx[j]] = running
    return out


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg step-up adjusted p-values (FDR) in input order: sorted ascending, p_adj(i) = min over
    j >= i of min(1, m p(j) / j). None entries stay None and are not counted in m."""
    out: list[float | None] = [None] * len(p_values)
    idx, ps = _family(p_values)
    m = len(ps)
    order = sorted(range(m), key=ps.__getitem__)
    running = 1.0
    for rank in reversed(range(m)):
        j = order[rank]
        running = min(running, m * ps[j] / (rank + 1))
        out[idx[j]] = running
    return out


_CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}


def adjust_p_values(p_values: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Adjusted p-values by `method`: "holm" (family-wise error) or "bh" (false discovery rate)."""
    if method not in _CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; known: {', '.join(_CORRECTIONS)}")
    return _CORRECTIONS[method](p_values)


# ---------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapCI(_ToDict):
    """Bootstrap confidence interval of the mean. z0 and acceleration are the BCa corrections (None for the
    percentile method)."""

    method: str
    confidence: float
    n_resamples: int
    n: int
    mean: float | None
    low: float | None
    high: float | None
    z0: float | None = None
    acceleration: float | None = None


_CI_METHODS = ("percentile", "bca")


class _CIFields(TypedDict):
    """The BootstrapCI fields every outcome shares."""

    method: str
    confidence: float
    n_resamples: int
    n: int
    mean: float | None


def _resampled_means(xs: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = xs.size
    rows = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, rows):
        k = min(rows, n_resamples - start)
        out[start : start + k] = xs[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return out


def _check_bootstrap(confidence: float, n_resamples: int) -> int:
    """`n_resamples` as an int; ValueError for a confidence outside (0, 1) or a count that is not a positive
    integer."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence!r} is not in (0, 1)")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples {n_resamples!r} is not a positive integer")
    return int(n_resamples)


def bootstrap_ci(
    values: Values,
    *,
    method: str = "percentile",
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int | np.random.Generator = 0,
) -> BootstrapCI:
    """Bootstrap CI of the mean from `n_resamples` resamples with replacement.

    "percentile": the alpha/2 and 1 - alpha/2 quantiles of the resampled means. "bca": bias-corrected and
    accelerated quantiles (z0 from the share of resampled means below the mean, acceleration from the jackknife).
    `seed` is an int (same seed, same interval) or a numpy Generator (advanced). n < 2 gives no interval; zero
    variance gives [mean, mean] for percentile and None for BCa, as does a BCa correction that is infinite."""
    if method not in _CI_METHODS:
        raise ValueError(f"unknown bootstrap method {method!r}; known: {', '.join(_CI_METHODS)}")
    n_resamples = _check_bootstrap(confidence, n_resamples)
    xs = _clean(values)
    n, m, var = _moments(xs)
    result = _CIFields(method=method, confidence=float(confidence), n_resamples=n_resamples, n=n, mean=m)
    if var is None:
        return BootstrapCI(**result, low=None, high=None)
    if var == 0.0:
        low = high = m if method == "percentile" else None
        return BootstrapCI(**result, low=low, high=high)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    arr = np.asarray(xs, dtype=float)
    means = _resampled_means(arr, n_resamples, rng)
    alpha = 1.0 - confidence
    levels = [alpha / 2, 1.0 - alpha / 2]
    if method == "percentile":
        low, high = (float(q) for q in np.quantile(means, levels))
        return BootstrapCI(**result, low=low, high=high)

    below = float(np.mean(means < m))
    dev = arr - m
    acceleration = float(np.sum(dev**3) / (6.0 * np.sum(dev**2) ** 1.5))
    if below in (0.0, 1.0):
        return BootstrapCI(**result, low=None, high=None, acceleration=acceleration)
    z0 = float(_dist.norm.ppf(below))
    adjusted = []
    for level in levels:
        w = z0 + float(_dist.norm.ppf(level))
        denom = 1.0 - acceleration * w
        if denom <= 0.0:
            return BootstrapCI(**result, low=None, high=None, z0=z0, acceleration=acceleration)
        adjusted.append(float(_dist.norm.cdf(z0 + w / denom)))
    low, high = (float(q) for q in np.quantile(means, adjusted))
    return BootstrapCI(**result, low=low, high=high, z0=z0, acceleration=acceleration)


def bootstrap_difference_ci(
    x: Values,
    y: Values,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int | np.random.Generator = 0,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval (low, high) of mean(x) - mean(y) for two independent samples, each resampled
    with replacement on its own, `n_resamples` times. Like Welch's test, needs n >= 2 in each sample (else
    (None, None)); two constant samples give (diff, diff)."""
    n_resamples = _check_bootstrap(confidence, n_resamples)
    xs, ys = _clean(x), _clean(y)
    (_, m1, v1), (_, m2, v2) = _moments(xs), _moments(ys)
    if v1 is None or v2 is None:
        return None, None
    assert m1 is not None and m2 is not None  # both variances are defined, so both means are
    if v1 == v2 == 0.0:
        return m1 - m2, m1 - m2
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    diffs = _resampled_means(np.asarray(xs), n_resamples, rng) - _resampled_means(np.asarray(ys), n_resamples, rng)
    alpha = 1.0 - confidence
    low, high = (float(q) for q in np.quantile(diffs, [alpha / 2, 1.0 - alpha / 2]))
    return low, high


# ---------------------------------------------------------------- effect sizes


@dataclass(frozen=True)
class EffectSize(_ToDict):
    """Cohen's d and Hedges' g = J(df) d, with the df the correction used."""

    d: float | None
    g: float | None
    df: float | None


def hedges_correction(df: float | None) -> float | None:
    """Hedges' small-sample factor J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)) (about 1 - 3/(4 df - 1));
    None for df <= 1, where d has no finite bias to correct (J(1) = 0)."""
    if df is None or df <= 1:
        return None
    return math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)


def hedges_g(d: float | None, df: float | None) -> float | None:
    """Hedges' g = J(df) * d, or None where either is undefined."""
    j = hedges_correction(df)
    return d * j if d is not None and j is not None else None


def effect_size_one_sample(values: Values, popmean: float = 0.0) -> EffectSize:
    """Cohen's d = (mean - popmean) / sd (sd with n - 1), g with df = n - 1; None for n < 2 or zero variance."""
    n, m, var = _moments(_clean(values))
    df = float(n - 1) if n >= 2 else None
    d = (cast(float, m) - popmean) / math.sqrt(var) if var else None  # var is defined, so m is
    return EffectSize(d, hedges_g(d, df), df)


def effect_size_two_sample(x: Values, y: Values) -> EffectSize:
    """Cohen's d = (m1 - m2) / s_pooled, s_pooled^2 = ((n1-1) v1 + (n2-1) v2) / (n1 + n2 - 2); g with
    df = n1 + n2 - 2. Like Welch's test, needs n >= 2 in each sample; d is None when s_pooled = 0."""
    xs, ys = _clean(x), _clean(y)
    n1, m1, v1 = _moments(xs)
    n2, m2, v2 = _moments(ys)
    if v1 is None or v2 is None:
        return EffectSize(None, None, None)
    assert m1 is not None and m2 is not None  # both variances are defined, so both means are
    df = float(n1 + n2 - 2)
    pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / df
    d = (m1 - m2) / math.sqrt(pooled) if pooled > 0 else None
    return EffectSize(d, hedges_g(d, df), df)


def effect_size_paired(
    x: Sequence[float | None] | Mapping[Hashable, float | None],
    y: Sequence[float | None] | Mapping[Hashable, float | None],
) -> EffectSize:
    """Cohen's d_z = mean(x - y) / sd(x - y) over complete pairs (pairing as in paired_t_test), g with df = n - 1."""
    xs, ys = _pairs(x, y)
    return effect_size_one_sample([a - b for a, b in zip(xs, ys)])


# ---------------------------------------------------------------- one call for a group-shift metric

_PAIRWISE = ("welch", "paired", "auto")


def shares_a_case(x: Sequence[float | None], y: Sequence[float | None]) -> bool:
    """Whether two case-aligned value lists (None where a case lacks the group) have a value for the same case."""
    return any(a is not None and b is not None for a, b in zip(x, y))


def _compare(x: Sequence[float | None], y: Sequence[float | None], test: str) -> tuple[dict[str, Any], EffectSize]:
    """One pairwise row's test values (n_a, n_b, means, diff, se, t, df, p) and effect size, by Welch or paired."""
    if test == "welch":
        w = welch_t_test(x, y)
        return (
            {
                "n_a": w.n1,
                "n_b": w.n2,
                "mean_a": w.mean1,
                "mean_b": w.mean2,
                "diff": w.diff,
                "se": w.se,
                "t": w.t,
                "df": w.df,
                "p": w.p,
            },
            effect_size_two_sample(x, y),
        )
    r = paired_t_test(x, y)
    return (
        {
            "n_a": r.n,
            "n_b": r.n,
            "mean_a": r.mean1,
            "mean_b": r.mean2,
            "diff": r.diff,
            "se": r.se,
            "t": r.t,
            "df": r.df,
            "p": r.p,
        },
        effect_size_paired(x, y),
    )


def _difference_ci(
    x: Sequence[float | None], y: Sequence[float | None], test: str, ci_method: str, **bootstrap: Any
) -> tuple[float | None, float | None]:
    """The bootstrap interval of a pair's difference: paired, of the per-case differences over the complete pairs
    (by `ci_method`); Welch, of the difference of the two independent means (percentile)."""
    if test == "welch":
        return bootstrap_difference_ci(x, y, **bootstrap)
    xs, ys = _pairs(x, y)
    ci = bootstrap_ci([a - b for a, b in zip(xs, ys)], method=ci_method, **bootstrap)
    return ci.low, ci.high


def _group_rng(seed: int, name: str) -> np.random.Generator:
    """A generator per group from (seed, group name): a group's interval does not change when groups are added."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def summarize_groups(
    values_by_group: Mapping[str, Sequence[float | None]],
    correction: str = "holm",
    seed: int = 0,
    n_resamples: int = 10000,
    confidence: float = 0.95,
    *,
    ci_method: str = "percentile",
    pairwise: str = "welch",
) -> dict[str, Any]:
    """Per-group one-sample tests against 0 with bootstrap CIs and effect sizes, and pairwise group comparisons.

    `values_by_group` maps a group to its per-case values (None entries skipped). p_adj corrects, by `correction`
    ("holm" or "bh"), within each family separately: the groups' one-sample tests, and the pairwise tests. Pairwise
    tests are Welch's (`pairwise="welch"`, d pooled), paired (`pairwise="paired"`: the lists must be aligned by
    case, None where a case lacks the group; n_a = n_b = complete pairs; d is d_z), or chosen per pair
    (`pairwise="auto"`, aligned lists: paired when some case has both groups, else Welch); each pair records its
    `test` and a bootstrap interval of its difference (`ci_low`, `ci_high`: `_difference_ci`). Groups and pairs are
    in sorted order. Every value is a float, int, str or None, so the result serialises with
    json.dumps(allow_nan=False)."""
    if correction not in _CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; known: {', '.join(_CORRECTIONS)}")
    if pairwise not in _PAIRWISE:
        raise ValueError(f"unknown pairwise test {pairwise!r}; known: {', '.join(_PAIRWISE)}")
    if ci_method not in _CI_METHODS:
        raise ValueError(f"unknown bootstrap method {ci_method!r}; known: {', '.join(_CI_METHODS)}")
    names = sorted(values_by_group)
    if pairwise != "welch" and len({len(values_by_group[g]) for g in names}) > 1:
        raise ValueError(f"pairwise={pairwise!r} needs every group's values aligned by case (equal lengths)")

    groups: dict[str, dict[str, Any]] = {}
    for name in names:
        values = values_by_group[name]
        t_test = one_sample_t_test(values)
        ci = bootstrap_ci(
            values, method=ci_method, confidence=confidence, n_resamples=n_resamples, seed=_group_rng(seed, name)
        )
        effect = effect_size_one_sample(values)
        groups[name] = {
            **t_test.to_dict(),
            "p_adj": None,
            "ci_low": _json_float(ci.low),
            "ci_high": _json_float(ci.high),
            "d": _json_float(effect.d),
            "g": _json_float(effect.g),
        }
    for name, p_adj in zip(names, adjust_p_values([groups[g]["p"] for g in names], correction)):
        groups[name]["p_adj"] = p_adj

    pairs: list[dict[str, Any]] = []
    for a, b in combinations(names, 2):
        x, y = values_by_group[a], values_by_group[b]
        test = pairwise if pairwise != "auto" else ("paired" if shares_a_case(x, y) else "welch")
        row, effect = _compare(x, y, test)
        low, high = _difference_ci(
            x, y, test, ci_method, confidence=confidence, n_resamples=n_resamples, seed=_group_rng(seed, f"{a} - {b}")
        )
        pairs.append(
            {
                "a": a,
                "b": b,
                "test": test,
                **{k: v if isinstance(v, int) else _json_float(v) for k, v in row.items()},
                "p_adj": None,
                "ci_low": _json_float(low),
                "ci_high": _json_float(high),
                "d": _json_float(effect.d),
                "g": _json_float(effect.g),
            }
        )
    for row, p_adj in zip(pairs, adjust_p_values([r["p"] for r in pairs], correction)):
        row["p_adj"] = p_adj

    return {
        "correction": correction,
        "pairwise_test": pairwise,
        "ci_method": ci_method,
        "confidence": float(confidence),
        "n_resamples": int(n_resamples),
        "seed": seed,
        "groups": groups,
        "pairwise": pairs,
    }
