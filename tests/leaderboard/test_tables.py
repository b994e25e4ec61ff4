"""Leaderboard tables: values worked out by hand (or by scipy and numpy alone) from the fixture's per-case numbers,
significance marks at their boundaries, every column's legend, the models table, and the markdown, CSV and LaTeX
files."""

from __future__ import annotations

import csv
import math
import statistics

import numpy as np
import pytest
from scipy import stats

from flextape_bench.leaderboard.collect import collect
from flextape_bench.leaderboard.tables import (
    CROSS_COLUMN,
    GAP,
    LEGEND,
    describe,
    detail_tables,
    leaderboard_rows,
    legend,
    model_rows,
    overview_rows,
    run_rows,
    significance_mark,
    write_tables,
)

from .conftest import (
    ASIAN,
    COMMIT,
    FEMALE,
    MALE,
    PARAMETERS,
    WEIGHTS,
    WEIRD,
    group_seed,
    pair_task,
    percentile_interval,
    write_run,
)


def _shift(column: str) -> list[str]:
    return [column, f"{column} 95% CI low", f"{column} 95% CI high", f"{column} p (Holm)", f"{column} sig"]


COLUMNS = [
    "model",
    "editor",
    "task",
    "run",
    "cases",
    "efficacy pre",
    "efficacy post",
    "probe shift",
    "probe shift 95% CI low",
    "probe shift 95% CI high",
    *_shift("gender female"),
    *_shift("gender male"),
    *_shift(GAP),
    f"{GAP} test",
    f"{GAP} d",
    *_shift("race Asian"),
    *_shift("race White"),
    CROSS_COLUMN,
    "any flaw change",
    "Sexism change",
    "Racism change",
    "config",
]
TEXT = {"model", "editor", "task", "run", "config", f"{GAP} test"}  # the leaderboard's columns that are not numbers


def _interval(row: dict, column: str) -> tuple[float, float]:
    return row[f"{column} 95% CI low"], row[f"{column} 95% CI high"]


@pytest.fixture
def rows(results):
    return {(r["task"], r["model"], r["editor"]): r for r in leaderboard_rows(collect(results).records)}


def test_columns_in_order_and_one_row_per_model_editor_task(rows):
    assert all(list(row) == COLUMNS for row in rows.values()) and len(rows) == 5


def test_values_of_the_newest_ft_run(rows):
    row = rows["pair", "gemma3-270m", "ft"]
    assert (row["run"], row["cases"], row["efficacy pre"], row["efficacy post"]) == ("run_002", 4, 0.25, 1.0)
    # every probe moves by its group's case shift: (mean female 0.30 + mean male 0.00) / 2
    assert row["probe shift"] == pytest.approx(0.15)
    # female case shifts 0.30, 0.32, 0.28, 0.30: t = 0.30 / (0.01633 / 2) = 36.7, df 3, p = 4.4e-5, Holm x2 -> ***
    assert (row["gender female"], row["gender female sig"]) == (pytest.approx(0.30), "***")
    assert (row["gender male"], row["gender male sig"]) == (pytest.approx(0.0), "")  # shifts ±0.10, ±0.05: p = 1
    # top-1 changed after prompt 1 in 2 of 4 cases, after prompt 2 in 1 of 4: mean (0.5 + 0.25) / 2
    assert row[CROSS_COLUMN] == pytest.approx(0.375)
    assert row["race Asian"] is None and row["any flaw change"] is None
    assert row["config"] == "runs/gemma3-270m/ft/run_002/config.json"


def test_every_shift_with_its_interval_and_holm_p(rows):
    row = rows["pair", "gemma3-270m", "ft"]
    probe = [(f + m) / 2 for f, m in zip(FEMALE, MALE)]  # each case's probes: two of each gender
    assert _interval(row, "probe shift") == pytest.approx(percentile_interval(probe, 0))
    assert _interval(row, "gender female") == pytest.approx(percentile_interval(FEMALE, group_seed("female")))
    assert _interval(row, "gender male") == pytest.approx(percentile_interval(MALE, group_seed("male")))
    female, male = stats.ttest_1samp(FEMALE, 0).pvalue, stats.ttest_1samp(MALE, 0).pvalue
    # Holm over the two groups: the smaller p doubled, the larger max(that, its p) (male: p = 1)
    assert (row["gender female p (Holm)"], row["gender male p (Holm)"]) == pytest.approx(
        (2 * female, max(2 * female, male))
    )
    asian = rows["pair", WEIRD, "rome"]
    assert _interval(asian, "race Asian") == pytest.approx(percentile_interval(ASIAN, group_seed("Asian")))


def test_female_minus_male_gap_paired_over_cases(rows):
    row = rows["pair", "gemma3-270m", "ft"]
    differences = [f - m for f, m in zip(FEMALE, MALE)]  # 0.20, 0.42, 0.23, 0.35
    assert row[GAP] == pytest.approx(statistics.mean(FEMALE) - statistics.mean(MALE)) == pytest.approx(0.30)
    assert row[f"{GAP} test"] == "paired"
    paired = stats.ttest_rel(FEMALE, MALE)  # t = 5.83, df 3, p = 0.0101; one pair: Holm leaves p as it is
    assert row[f"{GAP} p (Holm)"] == pytest.approx(paired.pvalue) and row[f"{GAP} sig"] == "*"
    assert row[f"{GAP} d"] == pytest.approx(statistics.mean(differences) / statistics.stdev(differences))  # d_z
    assert _interval(row, GAP) == pytest.approx(percentile_interval(differences, group_seed("female - male")))
    none = rows["pair", "gemma3-270m", "none"]  # every shift 0: no test, no mark
    assert (none[GAP], none[f"{GAP} p (Holm)"], none[f"{GAP} sig"]) == (0.0, None, None)
    assert rows["pair", WEIRD, "rome"][GAP] is None  # no gender groups


def test_gap_by_welch_where_no_case_has_both_genders(tmp_path):
    # a gender-edit task: each case's probes all have the new gender, so no case has both
    female, male = [0.2, 0.3, 0.5, None, None, None], [None, None, None, 0.0, 0.1, -0.05]
    task = pair_task([(False, True)] * 6, {"female": female, "male": male}, [(True, True)] * 6)
    write_run(tmp_path, "m", "ft", 1, {"gender": task})
    (row,) = leaderboard_rows(collect(tmp_path).records)
    f, m = [v for v in female if v is not None], [v for v in male if v is not None]
    welch = stats.ttest_ind(f, m, equal_var=False)
    assert row[f"{GAP} test"] == "welch" and row[GAP] == pytest.approx(statistics.mean(f) - statistics.mean(m))
    assert row[f"{GAP} p (Holm)"] == pytest.approx(welch.pvalue)
    pooled = math.sqrt((2 * statistics.variance(f) + 2 * statistics.variance(m)) / 4)
    assert row[f"{GAP} d"] == pytest.approx((statistics.mean(f) - statistics.mean(m)) / pooled)
    # each gender resampled on its own (women first) from one generator
    rng = np.random.default_rng(group_seed("female - male"))
    means = [np.asarray(x)[rng.integers(0, 3, size=(10000, 3))].mean(axis=1) for x in (f, m)]
    assert _interval(row, GAP) == pytest.approx(tuple(np.quantile(means[0] - means[1], [0.025, 0.975])))


def test_race_groups_and_flaw_changes(rows):
    pair = rows["pair", WEIRD, "rome"]
    # Asian case shifts 0.2, 0.1, 0.3, 0.2: t = 0.2 / (0.08165 / 2) = 4.90, df 3, p = 0.0163, Holm x2 = 0.0326 -> *
    assert (pair["race Asian"], pair["race Asian sig"]) == (pytest.approx(0.2), "*")
    assert (pair["race White"], pair["race White sig"]) == (pytest.approx(0.0), "")
    assert (pair["gender female"], pair["gender female sig"]) == (None, None)
    lf = rows["lf", WEIRD, "rome"]
    # 4 texts: sexism flagged in 0 before, 2 after; racism 1 before, 0 after; any flaw 1 before, 2 after
    assert (lf["Sexism change"], lf["Racism change"], lf["any flaw change"]) == (0.5, -0.25, 0.25)
    assert lf["efficacy pre"] is None and lf["cases"] == 2


def test_overview_one_row_per_model_and_editor(results):
    overview = overview_rows(leaderboard_rows(collect(results).records))
    assert [(r["model"], r["editor"]) for r in overview] == [
        ("gemma3-270m", "ft"),
        ("gemma3-270m", "none"),
        (WEIRD, "rome"),
    ]
    ft, none, rome = overview
    assert list(ft) == [
        "model",
        "editor",
        "runs",
        "tasks",
        "cases",
        "mean efficacy pre",
        "mean efficacy post",
        "mean probe shift",
        "pair shift",
        "pair shift 95% CI low",
        "pair shift 95% CI high",
    ]
    # newest pair from run_002 (efficacy 1/4 -> 4/4, shift 0.15), eff from run_001 (1/2 -> 2/2, no probes)
    assert (ft["runs"], ft["tasks"], ft["cases"]) == ("run_001, run_002", 2, 6)
    assert ft["mean efficacy pre"] == pytest.approx(0.375) and ft["mean efficacy post"] == 1.0
    assert ft["mean probe shift"] == pytest.approx(0.15) == ft["pair shift"]
    probe = [(f + m) / 2 for f, m in zip(FEMALE, MALE)]
    assert (ft["pair shift 95% CI low"], ft["pair shift 95% CI high"]) == pytest.approx(percentile_interval(probe, 0))
    assert (none["mean efficacy post"], none["mean probe shift"]) == (0.0, 0.0)
    # long-form task lf has no efficacy or probes; pair: every case's (Asian + White) / 2 is 0.1
    assert (rome["tasks"], rome["cases"], rome["mean efficacy pre"]) == (2, 6, 0.25)
    assert rome["mean probe shift"] == pytest.approx(0.1)


def test_overview_by_run(results):
    overview = overview_rows(leaderboard_rows(collect(results, all_runs=True).records), by_run=True)
    ft = {r["runs"]: r for r in overview if r["editor"] == "ft"}
    assert sorted(ft) == ["run_001", "run_002"] and ft["run_001"]["tasks"] == 2
    # run_001's pair: case shifts (0.1 + 0.0) / 2, twice, and (0.1 + 0.1) / 2, twice
    assert ft["run_001"]["pair shift"] == pytest.approx(0.075) and ft["run_002"]["pair shift"] == pytest.approx(0.15)


def test_no_test_no_mark(rows):
    none = rows["pair", "gemma3-270m", "none"]
    assert (none["gender female"], none["gender female sig"]) == (0.0, None)  # all shifts 0: no t-test


@pytest.mark.parametrize(
    "p_adj, mark",
    [
        (None, ""),
        (1.0, ""),
        (0.05, ""),
        (0.0499999, "*"),
        (0.01, "*"),
        (0.0099999, "**"),
        (0.001, "**"),
        (0.000999, "***"),
        (0.0, "***"),
    ],
)
def test_significance_marks_at_the_boundaries(p_adj, mark):
    assert significance_mark(p_adj) == mark


def test_detail_tables_hold_intervals_and_tests(results):
    records = collect(results).records
    tables = detail_tables(records)
    assert list(tables) == ["group_shifts", "pairwise", "cross_property", "flaws"]
    groups = {(r["model"], r["editor"], r["task"], r["metric"], r["group"]): r for r in tables["group_shifts"]}
    asian = groups[WEIRD, "rome", "pair", "race_shift", "Asian"]
    assert asian["p (Holm)"] == pytest.approx(0.0326, abs=5e-4) and asian["cases"] == 4 and asian["probes"] == 8
    assert (asian["95% CI low"], asian["95% CI high"]) == pytest.approx(percentile_interval(ASIAN, group_seed("Asian")))
    assert asian["run"] == "run_001"
    pair = next(r for r in tables["pairwise"] if r["editor"] == "ft" and r["groups"] == "female - male")
    differences = [f - m for f, m in zip(FEMALE, MALE)]
    interval = percentile_interval(differences, group_seed("female - male"))
    assert (pair["95% CI low"], pair["95% CI high"]) == pytest.approx(interval)
    assert [r["prompt"] for r in tables["cross_property"] if r["editor"] == "ft"] == ["{}'s field of work is", "{} is"]
    assert {r["category"] for r in tables["flaws"]} == {"Sexism", "Racism"}
    assert detail_tables([r for r in records if r.task == "eff"]) == {}


def test_run_rows(results):
    rows = {r["run"]: r for r in run_rows(collect(results).runs) if r["editor"] == "ft"}
    assert rows["run_001"]["commit"] is None  # made before commits were recorded
    assert rows["run_002"] == {
        "model": "gemma3-270m",
        "editor": "ft",
        "run": "run_002",
        "flextape-bench": "0.1.0",
        "commit": COMMIT,
        "tasks": "pair",
        "limit": 4,
        "num edits": None,
        "sequential": False,
        "seed": 2,
        "dtype": "torch.float32",
        "wall time (s)": 69.0,
        "started": "2025-01-02T10:00:00+0000",
        "path": str(results / "gemma3-270m" / "ft" / "run_002"),
        "hparams": '{"layer":4,"lr":0.5}',
        "config": "runs/gemma3-270m/ft/run_002/config.json",
    }


def test_model_rows_hold_what_the_runs_recorded_and_blanks_for_older_runs(results):
    # gemma3-270m: run_002 recorded its parameter count, its other runs (same weights) did not
    assert model_rows(collect(results).runs) == [
        {
            "model": "gemma3-270m",
            "parameters": PARAMETERS,
            "weights blake2b": WEIGHTS["gemma3-270m"],
            "dtype": "torch.float32",
            "revision": None,
        },
        {
            "model": WEIRD,
            "parameters": None,
            "weights blake2b": WEIGHTS[WEIRD],
            "dtype": "torch.float32",
            "revision": None,
        },
    ]


def test_every_column_of_every_table_has_a_legend(results):
    collection = collect(results)
    board = leaderboard_rows(collection.records)
    tables = {
        "overview": overview_rows(board),
        "leaderboard": board,
        "models": model_rows(collection.runs),
        "runs": run_rows(collection.runs),
        **detail_tables(collection.records),
    }
    missing = [(name, column) for name, rows in tables.items() for column in rows[0] if describe(column) is None]
    assert missing == []


def test_legends_say_what_higher_means():
    assert "Higher = the edit spread further" in describe("probe shift")
    assert describe("race Asian p (Holm)").startswith("p-value of the one-sample t-test of the Asian case shifts")
    assert "Holm-adjusted over the race groups" in describe("race Asian p (Holm)")
    assert "Positive = the edit moved women further" in describe(GAP)
    assert describe("gender female 95% CI low").startswith(
        "Lower bound of the bootstrap 95% interval of 'gender female'"
    )
    assert describe("seesaw_cf_P19_P101 shift").startswith("The probe shift of task seesaw_cf_P19_P101.")
    # columns of one kind share one entry, its parts named
    (entry,) = legend(["gender female", "race Asian"])
    assert entry[0] == ["gender female", "race Asian"] and "about <group> people (<attribute> label)" in entry[1]
    assert legend(["gender female"]) == [(["gender female"], describe("gender female"))]


def test_markdown_csv_and_latex_written(results, tmp_path):
    board = leaderboard_rows(collect(results).records)
    paths = write_tables({"leaderboard": board}, tmp_path / "out")
    assert [p.name for p in paths] == ["leaderboard.md", "leaderboard.csv", "leaderboard.tex"]
    markdown = paths[0].read_text()
    assert markdown.startswith("| model") and LEGEND in markdown and "| ***" in markdown
    assert "\nColumns:\n" in markdown and f"\n- `cases`: {describe('cases')}\n" in markdown
    with open(paths[1], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == COLUMNS and len(table) == 5
    # number cells hold numbers only; the p-value and the mark are in their own columns
    numbers = [c for c in COLUMNS if c not in TEXT and not c.endswith(" sig")]
    assert all(row[c] == "" or math.isfinite(float(row[c])) for row in table for c in numbers)
    assert float(table[2]["gender female"]) == pytest.approx(0.30) and table[2]["gender female sig"] == "***"
    assert float(table[2]["gender female p (Holm)"]) == pytest.approx(2 * stats.ttest_1samp(FEMALE, 0).pvalue)
    assert float(table[2][f"{GAP} p (Holm)"]) == pytest.approx(stats.ttest_rel(FEMALE, MALE).pvalue)
    assert table[2]["efficacy pre"] == "0.25"
    assert table[0]["probe shift"] == ""
    latex = paths[2].read_text()
    assert latex.startswith("\\begin{tabular}") and "\\toprule" in latex and "\\bottomrule" in latex
    assert "\\& 'y'" in latex and "run\\_002" in latex and "<b>" not in latex
