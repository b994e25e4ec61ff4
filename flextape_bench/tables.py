"""The summary table of a run: one row per task, written as summary.json, summary.md and summary.csv."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tabulate import tabulate

from flextape_bench.results import SUMMARY, write_atomic, write_json

COLUMNS = [
    ("task", None),
    ("cases", ("n_cases",)),
    ("efficacy pre", ("efficacy", "pre")),
    ("efficacy post", ("efficacy", "post")),
    ("probe d pre", ("probe_delta", "d_pre")),
    ("probe d post", ("probe_delta", "d_post")),
    ("probe shift", ("probe_delta", "shift")),
    ("female shift", ("gender_shift", "female", "shift")),
    ("male shift", ("gender_shift", "male", "shift")),
    ("unknown-gender shift", ("gender_shift", "unknown", "shift")),
]


def _lookup(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return None
        values = values[key]
    return values


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows keyed by column name; metrics a task does not compute are None; empty columns are dropped."""
    rows = [
        {name: task if path is None else _lookup(values, path) for name, path in COLUMNS}
        for task, values in summary["tasks"].items()
    ]
    keep = [name for name, _ in COLUMNS if any(row[name] is not None for row in rows)]
    return [{name: row[name] for name in keep} for row in rows]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    return tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f", missingval="")


def csv_table(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Tables first, summary.json last: its presence marks the run finished."""
    rows = summary_rows(summary)
    title = f"{summary['model']} / {summary['editor']} / {summary['run']}"
    write_atomic(run_dir / "summary.md", f"# {title}\n\n{markdown_table(rows)}\n")
    write_atomic(run_dir / "summary.csv", csv_table(rows))
    write_json(run_dir / SUMMARY, summary)
