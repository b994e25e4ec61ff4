"""The summary table of a run: one row per task, written as summary.json, summary.md and summary.csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tabulate import tabulate

from flextape_bench.checksums import write_atomic, write_json
from flextape_bench.results import SUMMARY

COLUMNS = [
    ("task", None),
    ("cases", ("n_cases",)),
    ("efficacy pre", ("efficacy", "pre")),
    ("efficacy post", ("efficacy", "post")),
    ("probe d pre", ("probe_delta", "d_pre")),
    ("probe d post", ("probe_delta", "d_post")),
    ("probe shift", ("probe_delta", "shift")),
    ("female shift", ("gender_shift", "groups", "female", "shift")),
    ("male shift", ("gender_shift", "groups", "male", "shift")),
    ("unknown-gender shift", ("gender_shift", "groups", "unknown", "shift")),
]
GROUP_METRICS = ("gender_shift", "race_shift", "geography_shift", "continent_shift")


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


def group_rows(summary: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """One row per task and group of a group-shift metric: case count, mean shift of case means with its confidence
    interval, t-test against 0 (p and Holm-adjusted p) and Cohen's d; the unknown group has no test."""
    rows = []
    for task, values in summary["tasks"].items():
        result = values.get(metric)
        if not result:
            continue
        for group, g in result["groups"].items():
            rows.append(
                {
                    "task": task,
                    "group": group,
                    "cases": g["n_cases"],
                    "probes": g["n_probes"],
                    "shift": g["shift"],
                    "95% CI low": g.get("ci_low"),
                    "95% CI high": g.get("ci_high"),
                    "t": g.get("t"),
                    "p": g.get("p"),
                    "p (Holm)": g.get("p_adj"),
                    "d": g.get("d"),
                }
            )
    return rows


def pairwise_rows(summary: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Tests between the groups of a group-shift metric, per task: the difference a - b with its bootstrap interval
    (blank in summaries written before it was recorded), paired over shared cases, else Welch (`test`; summaries
    written before the choice was recorded used Welch throughout)."""
    return [
        {
            "task": task,
            "groups": f"{pair['a']} - {pair['b']}",
            "test": pair.get("test", "welch"),
            "difference": pair["diff"],
            "95% CI low": pair.get("ci_low"),
            "95% CI high": pair.get("ci_high"),
            "t": pair["t"],
            "df": pair["df"],
            "p": pair["p"],
            "p (Holm)": pair["p_adj"],
            "d": pair["d"],
        }
        for task, values in summary["tasks"].items()
        if values.get(metric)
        for pair in values[metric]["pairwise"]
    ]


def cross_property_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task and distinct generation prompt of the cross_property metric: cases, share whose top-1
    candidate changed, cases with a known true value and the top-1 accuracy over them before and after."""
    rows = []
    for task, values in summary["tasks"].items():
        result = values.get("cross_property")
        if not result:
            continue
        for prompt in result["prompts"]:
            rows.append(
                {
                    "task": task,
                    "property": result["property"],
                    "prompt": prompt["prompt"],
                    "cases": prompt["n_cases"],
                    "top-1 changed": prompt["change_rate"],
                    "known": prompt["n_known"],
                    "accuracy pre": prompt["accuracy_pre"],
                    "accuracy post": prompt["accuracy_post"],
                }
            )
    return rows


def long_form_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task and long-form prompt (then all prompts together): texts, share mentioning target_new and
    target_true before and after, mean fluency (weighted bi/trigram entropy) and the share with any flaw flag."""
    rows = []
    for task, values in summary["tasks"].items():
        result = values.get("long_form")
        if not result:
            continue
        for part in [*result["prompts"], {"prompt": "(all)", **result}]:
            rows.append(
                {
                    "task": task,
                    "prompt": part["prompt"],
                    "texts": part["n_texts"],
                    "reflected pre": part["reflected"]["pre"],
                    "reflected post": part["reflected"]["post"],
                    "true mentioned pre": part["mentions_true"]["pre"],
                    "true mentioned post": part["mentions_true"]["post"],
                    "fluency pre": part["fluency"]["pre"],
                    "fluency post": part["fluency"]["post"],
                    "any flaw pre": part["any_flaw"]["pre"],
                    "any flaw post": part["any_flaw"]["post"],
                }
            )
    return rows


def flaw_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task and flaw category of the long_form metric, over all its texts: share of texts flagged
    before and after the edit, the change, and the shares flagged only after (introduced) and only before."""
    rows = []
    for task, values in summary["tasks"].items():
        result = values.get("long_form")
        if not result:
            continue
        labels = values.get("long_form_settings", {}).get("lexicon", {}).get("categories", {})
        for category, rate in result["flaws"].items():
            rows.append(
                {
                    "task": task,
                    "category": labels.get(category, {}).get("label", category),
                    "texts": result["n_texts"],
                    "flagged pre": rate["pre"],
                    "flagged post": rate["post"],
                    "change": rate["change"],
                    "introduced": rate["introduced"],
                    "removed": rate["removed"],
                }
            )
    return rows


def group_tables(summary: dict[str, Any]) -> str:
    """Markdown: for each group-shift metric present, the per-group table and the between-group tests; then the
    cross_property table; then the long_form tables."""
    parts = []
    for metric in GROUP_METRICS:
        rows = group_rows(summary, metric)
        if rows:
            parts.append(f"## {metric}\n\n{markdown_table(rows)}")
            pairs = pairwise_rows(summary, metric)
            if pairs:
                parts.append(f"Between groups (paired over shared cases, else Welch):\n\n{markdown_table(pairs)}")
    cross = cross_property_rows(summary)
    if cross:
        parts.append(f"## cross_property\n\n{markdown_table(cross)}")
    long_form = long_form_rows(summary)
    if long_form:
        parts.append(f"## long_form\n\n{markdown_table(long_form)}")
        parts.append(f"Flaw flags (keyword lexicon; a crude proxy):\n\n{markdown_table(flaw_rows(summary))}")
    return "\n\n".join(parts)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    return tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f", missingval="")


def csv_table(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def warnings_text(summary: dict[str, Any]) -> str:
    """Markdown: what went wrong with the edits, per task (the `warnings` of each task's summary), or ""."""
    lines = [f"- {task}: {w}" for task, values in summary["tasks"].items() for w in values.get("warnings", [])]
    return "## Warnings\n\n" + "\n".join(lines) if lines else ""


def write_summary(run_dir: Path, summary: dict[str, Any], files: Mapping[str, str] | None = None) -> None:
    """Tables first, summary.json last: its presence marks the run finished. Its `files` give the sha256 of the
    two tables and of `files` (path in the run directory -> sha256: each task's case files and samples.jsonl),
    which a finished run must match."""
    rows = summary_rows(summary)
    title = f"{summary['model']} / {summary['editor']} / {summary['run']}"
    sections = "".join(f"\n{part}\n" for part in (group_tables(summary), warnings_text(summary)) if part)
    digests = dict(files or {})
    digests["summary.md"] = write_atomic(run_dir / "summary.md", f"# {title}\n\n{markdown_table(rows)}\n{sections}")
    digests["summary.csv"] = write_atomic(run_dir / "summary.csv", csv_table(rows))
    write_json(run_dir / SUMMARY, {**summary, "files": dict(sorted(digests.items()))})
