"""Leaderboard tables: values worked out by hand from the fixture's per-case numbers, significance marks at their
boundaries, and the markdown, CSV and LaTeX files."""

from __future__ import annotations

import csv

import pytest

from flextape_bench.leaderboard.collect import collect
from flextape_bench.leaderboard.tables import (
    CROSS_COLUMN,
    LEGEND,
    detail_tables,
    leaderboard_rows,
    overview_rows,
    run_rows,
    significance_mark,
    write_tables,
)

from .conftest import WEIRD

COLUMNS = [
    "model",
    "editor",
    "task",
    "run",
    "cases",
    "efficacy pre",
    "efficacy post",
    "probe shift",
    "gender female",
    "gender female sig",
    "gender male",
    "gender male sig",
    "race Asian",
    "race Asian sig",
    "race White",
    "race White sig",
    CROSS_COLUMN,
    "any flaw change",
    "Sexism change",
    "Racism change",
]


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
    ]
    # newest pair from run_002 (efficacy 1/4 -> 4/4, shift 0.15), eff from run_001 (1/2 -> 2/2, no probes)
    assert (ft["runs"], ft["tasks"], ft["cases"]) == ("run_001, run_002", 2, 6)
    assert ft["mean efficacy pre"] == pytest.approx(0.375) and ft["mean efficacy post"] == 1.0
    assert ft["mean probe shift"] == pytest.approx(0.15) == ft["pair shift"]
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
    assert (none["gender female"], none["gender female sig"]) == (0.0, "")  # all shifts 0: no t-test


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
    assert asian["95% CI"].startswith("[") and asian["run"] == "run_001"
    assert [r["prompt"] for r in tables["cross_property"] if r["editor"] == "ft"] == ["{}'s field of work is", "{} is"]
    assert {r["category"] for r in tables["flaws"]} == {"Sexism", "Racism"}
    assert detail_tables([r for r in records if r.task == "eff"]) == {}


def test_run_rows(results):
    row = next(r for r in run_rows(collect(results).runs) if r["run"] == "run_002")
    assert row == {
        "model": "gemma3-270m",
        "editor": "ft",
        "run": "run_002",
        "flextape-bench": "0.0.9",
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
    }


def test_markdown_csv_and_latex_written(results, tmp_path):
    board = leaderboard_rows(collect(results).records)
    paths = write_tables({"leaderboard": board}, tmp_path / "out")
    assert [p.name for p in paths] == ["leaderboard.md", "leaderboard.csv", "leaderboard.tex"]
    markdown = paths[0].read_text()
    assert markdown.startswith("| model") and LEGEND in markdown and "| ***" in markdown
    with open(paths[1], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == COLUMNS and len(table) == 5
    # number cells hold numbers only; the mark is in its own column
    assert float(table[2]["gender female"]) == pytest.approx(0.30) and table[2]["gender female sig"] == "***"
    assert table[2]["efficacy pre"] == "0.25"
    assert table[0]["probe shift"] == ""
    latex = paths[2].read_text()
    assert latex.startswith("\\begin{tabular}") and "\\toprule" in latex and "\\bottomrule" in latex
    assert "\\& 'y'" in latex and "run\\_002" in latex and "<b>" not in latex
