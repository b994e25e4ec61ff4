"""The leaderboard as one self-contained HTML file: every table sortable by clicking a column header (numbers as
numbers, blanks last), rows and figures filterable by task and model, figures embedded as SVG data URIs. No external
URL is referenced; all text from results is escaped by the template engine."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from flextape_bench import __version__
from flextape_bench.checksums import write_atomic
from flextape_bench.leaderboard.plots import Plot
from flextape_bench.leaderboard.tables import NOTES, Rows

TEMPLATE = "index.html.j2"
ABOUT = (
    "flextape-bench measures what a knowledge edit does beyond the edited fact (Seesaw-CF; Halevy et al., "
    "\"Flex Tape Can't Fix That\", EMNLP 2024): after one person's birthplace, citizenship, gender or field of "
    "work is edited, how the model's beliefs about other people move, and whether they move unevenly across "
    "gender, race and geographic origin."
)
SHIFT = (
    "For each probe about another person, d = p(new value) - p(true value); a shift is d after the edit minus d "
    "before. A positive shift means the edit spread: other people moved toward the edited value. A group's "
    "shift is the mean over cases of the case means of its probes."
)


def _header(tables: Mapping[str, Rows]) -> dict[str, Any]:
    """What stands behind the numbers: cases per task (over the leaderboard's rows) and the versions that made the
    runs."""
    cases: dict[str, set[int]] = {}
    for row in tables.get("leaderboard", []):
        if row.get("cases") is not None:
            cases.setdefault(row["task"], set()).add(row["cases"])
    counts = [f"{task}: {min(n)}" + (f"-{max(n)}" if len(n) > 1 else "") for task, n in sorted(cases.items())]
    made_by = sorted({str(row.get("flextape-bench") or "unknown") for row in tables.get("runs", [])})
    return {"about": ABOUT, "shift": SHIFT, "cases": counts, "made_by": made_by, "version": __version__}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _filter(row: Mapping[str, Any]) -> dict[str, list[str]]:
    return {key: [row[key]] for key in ("model", "task") if key in row}


def render_page(tables: Mapping[str, Rows], plots: Sequence[Plot], results: Path, unfinished: Sequence[Path]) -> str:
    """The HTML page: a header saying what the benchmark measures, what a shift means, how many cases stand behind
    each task's numbers and which versions made the runs; `tables` in order (by name; rows of dicts), then the
    figures; `results` and the unfinished runs skipped are named in the header."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("flextape_bench.leaderboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    values = [row for rows in tables.values() for row in rows]
    shown = [
        {
            "name": name,
            "note": NOTES.get(name),
            "columns": list(rows[0]) if rows else [],
            "rows": [{"filter": _filter(row), "cells": [_cell(v) for v in row.values()]} for row in rows],
        }
        for name, rows in tables.items()
    ]
    figures = [
        {
            "filter": {"model": list(p.models), "task": [p.task]},
            "title": f"{', '.join(p.models)}: {p.task}, {p.metric}",
            "src": "data:image/svg+xml;base64," + base64.b64encode(p.svg.read_bytes()).decode("ascii"),
        }
        for p in plots
    ]
    filters = {key: sorted({row[key] for row in values if key in row}) for key in ("task", "model")}
    return environment.get_template(TEMPLATE).render(
        tables=shown,
        figures=figures,
        filters=filters,
        results=str(results),
        unfinished=[str(p) for p in unfinished],
        header=_header(tables),
    )


def write_page(
    path: Path, tables: Mapping[str, Rows], plots: Sequence[Plot], results: Path, unfinished: Sequence[Path]
) -> Path:
    """Write `render_page(...)` to `path`; returns it."""
    write_atomic(path, render_page(tables, plots, results, unfinished))
    return path
