"""The leaderboard as one self-contained HTML file: every table sortable by clicking a column header (numbers as
numbers, blanks last), rows and figures filterable by task and model, figures embedded as SVG data URIs. No external
URL is referenced; all text from results is escaped by the template engine."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2

from flextape_bench.checksums import write_atomic
from flextape_bench.leaderboard.plots import Plot
from flextape_bench.leaderboard.tables import NOTES, Rows

TEMPLATE = "index.html.j2"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _filter(row: Mapping[str, Any]) -> dict[str, list[str]]:
    return {key: [row[key]] for key in ("model", "task") if key in row}


def render_page(tables: Mapping[str, Rows], plots: Sequence[Plot], results: Path,
                unfinished: Sequence[Path]) -> str:
    """The HTML page: `tables` in order (by name; rows of dicts), then the figures; `results` and the unfinished runs
    skipped are named in the header."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("flextape_bench.leaderboard", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    values = [row for rows in tables.values() for row in rows]
    shown = [{"name": name, "note": NOTES.get(name), "columns": list(rows[0]) if rows else [],
              "rows": [{"filter": _filter(row), "cells": [_cell(v) for v in row.values()]} for row in rows]}
             for name, rows in tables.items()]
    figures = [{"filter": {"model": list(p.models), "task": [p.task]},
                "title": f"{', '.join(p.models)}: {p.task}, {p.metric}",
                "src": "data:image/svg+xml;base64," + base64.b64encode(p.svg.read_bytes()).decode("ascii")}
               for p in plots]
    filters = {key: sorted({row[key] for row in values if key in row}) for key in ("task", "model")}
    return environment.get_template(TEMPLATE).render(tables=shown, figures=figures, filters=filters,
                                                     results=str(results), unfinished=[str(p) for p in unfinished])


def write_page(path: Path, tables: Mapping[str, Rows], plots: Sequence[Plot], results: Path,
               unfinished: Sequence[Path]) -> Path:
    """Write `render_page(...)` to `path`; returns it."""
    write_atomic(path, render_page(tables, plots, results, unfinished))
    return path
