"""The leaderboard as one self-contained HTML file: a header (what is measured, what a shift means, the paper and
data, versions and commits, dates, cases per task with a warning below MIN_CASES), one gender chart per task, then
the tables, each with the legend of its columns (the leaderboard one table per task), every shift shown with its
95% interval; tables sortable by clicking a column header (numbers as numbers, blanks last), rows and figures
filterable by task and model, figures embedded as SVG data URIs. The page loads nothing: its only URLs are links
(the paper, the data, and each run's config.json published beside it); all text from results is escaped by the
template engine."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from flextape_bench import __version__
from flextape_bench.checksums import write_atomic
from flextape_bench.leaderboard.plots import Plot
from flextape_bench.leaderboard.tables import CONFIG_COLUMN, HIGH, LOW, NOTES, P_HOLM, SIG, Rows, describe, legend
from flextape_bench.results import slug

TEMPLATE = "index.html.j2"
PAPER = (
    "Halevy et al., \u201cFlex Tape Can\u2019t Fix That\u201d: Bias and Misinformation in Edited Language Models, "
    "EMNLP 2024",
    "https://aclanthology.org/2024.emnlp-main.494/",
)
DATA = (
    "Seesaw-CF, ENSCMA2/flextape at commit 1a4da27 (the files the packaged task specs download and check by sha256)",
    "https://github.com/ENSCMA2/flextape/tree/1a4da271b89d50505811bf4bf5774a82091da9ea/data",
)
ABOUT = (
    "flextape-bench measures what a knowledge edit does beyond the edited fact (Seesaw-CF): after one person's "
    "birthplace, citizenship, gender or field of work is edited, how the model's beliefs about other people move, "
    "and whether they move unevenly across gender, race and geographic origin."
)
SHIFT = (
    "For each probe about another person, d = p(new value) - p(true value); a shift is d after the edit minus d "
    "before. A positive shift means the edit spread: other people moved toward the edited value. A group's "
    "shift is the mean over cases of the case means of its probes."
)
MIN_CASES = 30
FEW_CASES = (
    f"Below {MIN_CASES} cases a task's numbers show how the benchmark reports, not a finding: the t-tests have few "
    "degrees of freedom, a percentile bootstrap interval from so few cases is too narrow (it covers the true value "
    "less often than 95% of the time), and only a large shift can be told from 0."
)
ATTACHED = (  # what the page adds to a column's legend when its cells hold more than the number
    ("low", "The brackets hold its bootstrap 95% interval."),
    ("mark", "The stars: * < 0.05, ** < 0.01, *** < 0.001."),
)
OPEN = ("overview", "leaderboard")  # the sections whose legends are shown open (the others' open on a click)


def _made_with(run: Mapping[str, Any]) -> str:
    """The flextape-bench version and commit (its first 12 digits) that made a run."""
    commit = run.get("commit")
    shown = f"commit {commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''}" if commit else "commit not recorded"
    return f"{run.get('flextape-bench') or 'unknown'} ({shown})"


def id_ranges(ids: Sequence[int]) -> str:
    """Sorted ids as ranges: [1, 2, 3, 7, 9, 10] -> "1-3, 7, 9-10"."""
    spans: list[list[int]] = []
    for i in ids:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def _cases(board: Rows, case_ids: Mapping[str, Sequence[Sequence[int]]]) -> list[dict[str, Any]]:
    """Per task, the fewest and most cases of its rows, whether the fewest is below MIN_CASES, and the case ids
    behind them (`case_ids`: per task, each row's ids): as ranges where every row has the same (None where no row
    wrote case files), or `mixed` where rows differ."""
    cases: dict[str, list[int]] = {}
    for row in board:
        if row.get("cases") is not None:
            cases.setdefault(row["task"], []).append(row["cases"])
    out = []
    for task, n in sorted(cases.items()):
        sets = {tuple(ids) for ids in case_ids.get(task, [])} - {()}
        out.append(
            {
                "task": task,
                "cases": f"{min(n)}" + (f"-{max(n)}" if max(n) > min(n) else ""),
                "few": min(n) < MIN_CASES,
                "ids": id_ranges(next(iter(sets))) if len(sets) == 1 else None,
                "mixed": len(sets) > 1,
            }
        )
    return out


def _header(tables: Mapping[str, Rows], case_ids: Mapping[str, Sequence[Sequence[int]]]) -> dict[str, Any]:
    """What stands behind the numbers: the paper and data, cases per task (and their ids), the versions and commits
    that made the runs and the dates they started."""
    runs = tables.get("runs", [])
    dates = sorted({str(run["started"])[:10] for run in runs if run.get("started")})
    cases = _cases(tables.get("leaderboard", []), case_ids)
    return {
        "about": ABOUT,
        "shift": SHIFT,
        "paper": PAPER,
        "data": DATA,
        "cases": cases,
        "few": [c["task"] for c in cases if c["few"]],
        "mixed": [c["task"] for c in cases if c["mixed"]],
        "min_cases": MIN_CASES,
        "few_cases": FEW_CASES,
        "made_by": sorted({_made_with(run) for run in runs}),
        "dates": dates[0] + (f" to {dates[-1]}" if len(dates) > 1 else "") if dates else "unknown",
        "version": __version__,
    }


def _attached(columns: Sequence[str]) -> dict[str, dict[str, str]]:
    """Columns shown inside another column's cells: its interval bounds ({"low": ..., "high": ...}: 'X 95% CI low'
    and 'X 95% CI high' for X, a bare '95% CI low' and '95% CI high' for the column before them) and its mark
    ({"mark": 'X sig'} for 'X p (Holm)')."""
    attached: dict[str, dict[str, str]] = {}
    for index, column in enumerate(columns):
        bare = column == LOW.strip()
        if (bare and index) or (column.endswith(LOW) and column[: -len(LOW)] in columns):
            base = columns[index - 1] if bare else column[: -len(LOW)]
            high = HIGH.strip() if bare else base + HIGH
            if high in columns:
                attached.setdefault(base, {}).update(low=column, high=high)
        if column.endswith(SIG) and column[: -len(SIG)] + P_HOLM in columns:
            attached.setdefault(column[: -len(SIG)] + P_HOLM, {})["mark"] = column
    return attached


def _number(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if column in ("p", P_HOLM.strip()) or column.endswith(P_HOLM) else f"{value:.4f}"
    return str(value)


def _cell(column: str, row: Mapping[str, Any], attached: Mapping[str, str]) -> dict[str, Any]:
    """A cell's text (with its `attached` interval and mark, sorted by the number alone) and its link."""
    value = row.get(column)
    text = _number(column, value)
    if column == CONFIG_COLUMN and value:
        return {"text": Path(value).name, "href": value}
    if not attached or value is None:
        return {"text": text}
    bounds = [row.get(attached[bound]) for bound in ("low", "high") if bound in attached]
    if len(bounds) == 2 and None not in bounds:
        text += f" [{_number(column, bounds[0])}, {_number(column, bounds[1])}]"
    mark = row.get(attached["mark"]) if "mark" in attached else None
    if mark:
        text += f" {mark}"
    return {"text": text, "sort": _number(column, value)}


def _table(identifier: str, rows: Rows, caption: str | None = None, hide: Sequence[str] = ()) -> dict[str, Any]:
    """A table's display: interval bounds and marks in the cells of the numbers they belong to; the `hide`
    columns only filter the rows."""
    columns = list(rows[0]) if rows else []
    attached = _attached(columns)
    inside = {c for parts in attached.values() for c in parts.values()}
    shown = [c for c in columns if c not in inside and c not in hide]
    return {
        "id": identifier,
        "caption": caption,
        "columns": [{"name": c, "title": describe(c) or ""} for c in shown],
        "attached": {c: set(parts) for c, parts in attached.items()},
        "rows": [
            {
                "filter": {key: [row[key]] for key in ("model", "task") if key in row},
                "cells": [_cell(c, row, attached.get(c, {})) for c in shown],
            }
            for row in rows
        ],
    }


def _per_task(rows: Rows) -> dict[str, Rows]:
    """Leaderboard rows by task, each task's without the columns that are empty for it."""
    tasks: dict[str, Rows] = {}
    for row in rows:
        tasks.setdefault(row["task"], []).append(row)
    return {
        task: [{c: v for c, v in row.items() if any(r.get(c) is not None for r in part)} for row in part]
        for task, part in sorted(tasks.items())
    }


def _section(name: str, rows: Rows) -> dict[str, Any]:
    """A table's heading, note, tables (the leaderboard: one per task, captioned by it) and the legend of the
    columns shown."""
    if name == "leaderboard":
        tables = [
            _table(f"table-leaderboard-{slug(task)}", part, caption=task, hide=("task",))
            for task, part in _per_task(rows).items()
        ]
    else:
        tables = [_table(f"table-{name}", rows)]
    shown = {c["name"] for t in tables for c in t["columns"]}
    attached = {c: parts for t in tables for c, parts in t["attached"].items()}
    entries = []
    for names, text in legend([c for c in (rows[0] if rows else []) if c in shown]):
        parts = set().union(*(attached.get(c, set()) for c in names))
        entries.append((names, " ".join([text] + [note for part, note in ATTACHED if part in parts])))
    return {"name": name, "note": NOTES.get(name), "tables": tables, "legend": entries, "open": name in OPEN}


def _figure(plot: Plot, title: str) -> dict[str, Any]:
    return {
        "filter": {"model": list(plot.models), "task": [plot.task]},
        "title": title,
        "src": "data:image/svg+xml;base64," + base64.b64encode(plot.svg.read_bytes()).decode("ascii"),
    }


def render_page(
    tables: Mapping[str, Rows],
    charts: Sequence[Plot],
    plots: Sequence[Plot],
    results: Path,
    unfinished: Sequence[Path],
    case_ids: Mapping[str, Sequence[Sequence[int]]],
    records: Path | None = None,
) -> str:
    """The HTML page: the header, the gender `charts`, `tables` in order (by name; rows of dicts) with their
    legends, then the group-shift `plots`; `results` (and the run `records` folder, where read), the unfinished runs
    skipped and the case ids behind each task (`case_ids`: per task, each row's) are named in the header."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("flextape_bench.leaderboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    values = [row for rows in tables.values() for row in rows]
    filters = {key: sorted({row[key] for row in values if key in row}) for key in ("task", "model")}
    return environment.get_template(TEMPLATE).render(
        header=_header(tables, case_ids),
        charts=[_figure(c, f"{c.task}: women's and men's probe shifts per model and editor") for c in charts],
        sections=[_section(name, rows) for name, rows in tables.items()],
        figures=[_figure(p, f"{', '.join(p.models)}: {p.task}, {p.metric}") for p in plots],
        filters=filters,
        results=str(results),
        records=None if records is None else str(records),
        unfinished=[str(p) for p in unfinished],
    )


def write_page(
    path: Path,
    tables: Mapping[str, Rows],
    charts: Sequence[Plot],
    plots: Sequence[Plot],
    results: Path,
    unfinished: Sequence[Path],
    case_ids: Mapping[str, Sequence[Sequence[int]]],
    records: Path | None = None,
) -> Path:
    """Write `render_page(...)` to `path`; returns it."""
    write_atomic(path, render_page(tables, charts, plots, results, unfinished, case_ids, records))
    return path
