"""Gender-block boundaries: synthetic pools, and values checked by hand against the names in the real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flextape_bench.tasks.gender import CaseProbes, block_boundaries, probe_genders, shared_boundary


def _cases(path: Path) -> tuple[list[dict], list[CaseProbes]]:
    records = json.loads(path.read_text())
    return records, [
        CaseProbes(r["requested_rewrite"]["target_new"]["id"], tuple(r["attribute_aux_info"])) for r in records
    ]


def test_shared_whole_pool_fixes_the_boundary():
    # women f1..f3 reused whole (shuffled), men sampled differently per case
    cases = [("f2", "f1", "f3", "m1", "m2"), ("f3", "f2", "f1", "m7", "m4"), ("f1", "f3", "f2", "m2", "m9")]
    assert shared_boundary(cases) == 3


def test_shared_second_block_fixes_the_boundary():
    cases = [("f1", "f2", "m2", "m1"), ("f5", "f6", "m1", "m2")]
    assert shared_boundary(cases) == 2


def test_boundary_forced_by_the_pool_cap():
    ids = tuple(f"Q{i}" for i in range(200))
    assert shared_boundary([ids]) == 100
    assert shared_boundary([()]) == 0


def test_single_case_is_ambiguous():
    assert shared_boundary([("a", "b", "c", "d")]) is None


def test_boundary_never_splits_one_persons_prompts():
    # single-property files: several prompts per person, one id repeated; blocks {a, b} and {c, d} / {e, f}
    cases = [("a", "a", "b", "b", "c", "c", "d", "d"), ("b", "b", "a", "a", "e", "e", "f", "f")]
    assert shared_boundary(cases) == 4


def test_cases_are_compared_within_target_and_probe_count():
    cases = [
        CaseProbes("Q1", ("f1", "f2", "m1")),
        CaseProbes("Q1", ("f2", "f1", "m2")),
        CaseProbes("Q2", ("f1", "m1", "m2")),
        CaseProbes("Q1", ("f1", "m9")),
    ]
    assert block_boundaries(cases) == [2, 2, None, None]


def test_block_orders_and_target_new_labels():
    cases = [CaseProbes("Q1", ("f1", "f2", "m1")), CaseProbes("Q1", ("f2", "f1", "m2"))]
    assert probe_genders("female_first", cases)[0] == ("female", "female", "male")
    assert probe_genders("male_first", cases)[1] == ("male", "male", "female")
    assert probe_genders("none", cases) == [None, None]
    p21 = [CaseProbes("Q6581072", ("a", "b")), CaseProbes("Q6581097", ("c",)), CaseProbes("Q5", ("d",))]
    assert probe_genders("target_new", p21) == [("female", "female"), ("male",), None]


@pytest.mark.parametrize(
    ("file", "target", "n", "k"),
    [
        # first probe after the boundary, checked by name: Frank R. Adams, Dan Scarbrough, Muneyuki Shindō, Abu Ibrahim
        ("seesaw_cf_P19_P101.json", "Morrison", 12, 4),
        ("seesaw_cf_P19_P101.json", "Bingley", 24, 5),
        ("seesaw_cf_P19_P101.json", "Constance", 195, 95),
        ("seesaw_cf_P19_P101.json", "New York City", 200, 100),
        ("seesaw_cf_P27_P101.json", "Japan", 199, 99),
        ("seesaw_cf_P27_P101.json", "statelessness", 55, 10),
        ("seesaw_cf_P27_P101.json", "Kingdom of Denmark", 195, 100),
        ("seesaw_cf_P27_P101.json", "Greece", 176, None),  # the only Greece case: nothing to compare with
    ],
)
def test_real_boundaries(data_dir: Path, file: str, target: str, n: int, k: int | None):
    records, cases = _cases(data_dir / file)
    found = {
        (len(case.probe_ids), k)
        for record, case, k in zip(records, cases, block_boundaries(cases))
        if record["requested_rewrite"]["target_new"]["str"].strip() == target
    }
    assert found == {(n, k)}


@pytest.mark.parametrize(
    ("file", "known", "unknown"),
    [
        ("seesaw_cf_P19_P101.json", 286, 0),
        ("seesaw_cf_P19_P21.json", 286, 0),
        ("seesaw_cf_P27_P101.json", 277, 5),
        ("seesaw_cf_P27_P19.json", 273, 9),
    ],
)
def test_recovered_counts_per_file(data_dir: Path, file: str, known: int, unknown: int):
    _, cases = _cases(data_dir / file)
    labels = probe_genders("female_first", cases)
    assert (sum(g is not None for g in labels), sum(g is None for g in labels)) == (known, unknown)
