"""Leaderboard tables from collected task records, built on the run summary's row functions
(`flextape_bench.tables`), and their markdown, CSV and LaTeX files.

The overview has one row per model and editor (per run too, with --all-runs): means over its tasks of efficacy
and probe shift, and each task's probe shift. The leaderboard has one row per model, editor and task (and run, with
--all-runs): cases, efficacy before and after, the probe shift, every labelled group's shift (gender, race,
geography, continent) marked by its Holm-adjusted p, the cross-property top-1 change rate as the unweighted mean over
the task's generation prompts, and the long-form flaw rates after minus before. Detail tables hold the numbers
behind those cells.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from flextape_bench.checksums import write_atomic
from flextape_bench.leaderboard.collect import RunInfo, TaskRecord
from flextape_bench.metrics.groups import UNKNOWN
from flextape_bench.tables import (
    GROUP_METRICS,
    cross_property_rows,
    csv_table,
    flaw_rows,
    group_rows,
    markdown_table,
    pairwise_rows,
    summary_rows,
)

MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
CROSS_COLUMN = "top-1 changed (mean over prompts)"
SIG = " sig"  # suffix of the column holding a group shift's significance mark, beside the number
LEGEND = (
    "Group shifts are d_post - d_pre (mean of case means); the '<group> sig' column beside each holds * for "
    "p < 0.05, ** for p < 0.01, *** for p < 0.001 by the one-sample t-test against 0, Holm-adjusted over the "
    "groups of a metric (number cells hold numbers only). "
    f"'{CROSS_COLUMN}' is the unweighted mean over the task's generation prompts of the share of cases whose "
    "top-1 candidate changed. Flaw columns are the share of texts flagged after minus before."
)
OVERVIEW_NOTE = (
    "One row per model and editor: unweighted means over its tasks (a task counts once, whatever its "
    "number of cases) of efficacy and of the probe shift (tasks with probes only), then each task's "
    "probe shift. Per-task numbers, group shifts and their tests are in the leaderboard table."
)
NOTES = {"overview": OVERVIEW_NOTE, "leaderboard": LEGEND}
Rows = list[dict[str, Any]]


def significance_mark(p_adj: float | None) -> str:
    """'***' for p_adj < 0.001, '**' for < 0.01, '*' for < 0.05, else '' (also when there is no test)."""
    if p_adj is None:
        return ""
    return next((mark for bound, mark in MARKS if p_adj < bound), "")


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def leaderboard_rows(records: Sequence[TaskRecord]) -> Rows:
    """One row per record; a column is kept when any row has a value in it."""
    fixed = ["model", "editor", "task", "run", "cases", "efficacy pre", "efficacy post", "probe shift"]
    groups: dict[str, tuple[int, str]] = {}
    flaws: dict[str, None] = {}
    rows = []
    for record in records:
        base = summary_rows(record.summary)[0]
        row: dict[str, Any] = {
            "model": record.model,
            "editor": record.editor,
            "task": record.task,
            "run": record.run.name,
            **{k: base.get(k) for k in fixed[4:]},
        }
        for index, metric in enumerate(GROUP_METRICS):
            for g in group_rows(record.summary, metric):
                if g["group"] != UNKNOWN:
                    column = f"{metric.removesuffix('_shift')} {g['group']}"
                    groups[column] = groups[column + SIG] = (index, g["group"])
                    row[column] = g["shift"]
                    row[column + SIG] = None if g["shift"] is None else significance_mark(g["p (Holm)"])
        row[CROSS_COLUMN] = _mean([p["top-1 changed"] for p in cross_property_rows(record.summary)])
        row["any flaw change"] = (record.values.get("long_form") or {}).get("any_flaw", {}).get("change")
        for flaw in flaw_rows(record.summary):
            column = f"{flaw['category']} change"
            flaws[column] = None
            row[column] = flaw["change"]
        rows.append(row)
    columns = [*fixed, *sorted(groups, key=groups.__getitem__), CROSS_COLUMN, "any flaw change", *flaws]
    keep = [c for c in columns if any(row.get(c) is not None for row in rows)]
    return [{c: row.get(c) for c in keep} for row in rows]


def overview_rows(board: Rows, by_run: bool = False) -> Rows:
    """For a non-empty leaderboard, one row per model and editor (and run, when `by_run`) from the leaderboard rows:
    the runs and tasks it covers, its cases, the means over its tasks of efficacy before and after and of the probe
    shift, and a '<task> shift' column per task with probes."""
    rows: dict[tuple[str, ...], Rows] = {}
    for row in board:
        key = (row["model"], row["editor"], row["run"]) if by_run else (row["model"], row["editor"])
        rows.setdefault(key, []).append(row)
    shifted = sorted({row["task"] for row in board if row.get("probe shift") is not None})
    overview = []
    for (model, editor, *_), tasks in sorted(rows.items()):
        overview.append(
            {
                "model": model,
                "editor": editor,
                "runs": ", ".join(sorted({row["run"] for row in tasks})),
                "tasks": len(tasks),
                "cases": sum(row.get("cases") or 0 for row in tasks),
                **{
                    f"mean {column}": _mean([row.get(column) for row in tasks])
                    for column in ("efficacy pre", "efficacy post", "probe shift")
                },
                **{
                    f"{task} shift": next((row["probe shift"] for row in tasks if row["task"] == task), None)
                    for task in shifted
                },
            }
        )
    keep = [c for c in overview[0] if any(row[c] is not None for row in overview)]
    return [{c: row[c] for c in keep} for row in overview]


def _detail(records: Sequence[TaskRecord], rows_of: Callable[[dict[str, Any]], Rows]) -> Rows:
    return [
        {"model": r.model, "editor": r.editor, "run": r.run.name, **row} for r in records for row in rows_of(r.summary)
    ]


def _per_group_metric(rows_of: Callable[[dict[str, Any], str], Rows]) -> Callable[[dict[str, Any]], Rows]:
    return lambda summary: [{"metric": m, **row} for m in GROUP_METRICS for row in rows_of(summary, m)]


def detail_tables(records: Sequence[TaskRecord]) -> dict[str, Rows]:
    """The non-empty detail tables by file name: group shifts with intervals and tests, tests between groups,
    cross-property change and accuracy per prompt, flaw rates per category."""
    tables = {
        "group_shifts": _detail(records, _per_group_metric(group_rows)),
        "pairwise": _detail(records, _per_group_metric(pairwise_rows)),
        "cross_property": _detail(records, cross_property_rows),
        "flaws": _detail(records, flaw_rows),
    }
    return {name: rows for name, rows in tables.items() if rows}


def run_rows(runs: Sequence[RunInfo]) -> Rows:
    """One row per run: its settings (from config.json), wall time and directory."""
    return [
        {
            "model": run.model,
            "editor": run.editor,
            "run": run.name,
            "flextape-bench": run.version,
            "tasks": ", ".join(run.tasks),
            "limit": run.limit,
            "num edits": run.num_edits,
            "sequential": run.sequential,
            "seed": run.seed,
            "dtype": run.dtype,
            "wall time (s)": run.seconds,
            "started": run.started,
            "path": str(run.path),
            "hparams": json.dumps(run.hparams, sort_keys=True, separators=(",", ":")),
        }
        for run in runs
    ]


def latex_table(rows: Rows) -> str:
    """A booktabs tabular; tabulate escapes LaTeX's special characters in the cells."""
    return tabulate(rows, headers="keys", tablefmt="latex_booktabs", floatfmt=".4f", missingval="")


def write_tables(tables: Mapping[str, Rows], folder: Path) -> list[Path]:
    """`<folder>/<name>.md` (with its note, if any), `.csv` and `.tex` for every table; returns the paths."""
    paths = []
    for name, rows in tables.items():
        note = f"\n{NOTES[name]}\n" if name in NOTES else ""
        for suffix, text in (
            (".md", f"{markdown_table(rows)}\n{note}"),
            (".csv", csv_table(rows)),
            (".tex", f"{latex_table(rows)}\n"),
        ):
            path = folder / f"{name}{suffix}"
            write_atomic(path, text)
            paths.append(path)
    return paths
