"""Leaderboard tables from collected task records, built on the run summary's row functions
(`flextape_bench.tables`), and their markdown, CSV and LaTeX files.

The overview has one row per model and editor (per run too, with --all-runs): means over its tasks of efficacy
and probe shift, and each task's probe shift with its interval. The leaderboard has one row per model, editor and
task (and run, with --all-runs): cases, efficacy before and after, the probe shift, every labelled group's shift
(gender, race, geography, continent), each shift with its bootstrap 95% interval, Holm-adjusted p and mark, the
female - male gap with its interval and test, the cross-property top-1 change rate as the unweighted mean over the
task's generation prompts, the long-form flaw rates after minus before, and the link to the run's config.json as
published beside the page. The models table holds each model's metadata, the runs table each run's settings, and
detail tables the numbers behind the cells. Number columns hold numbers only; `describe` gives every column's
legend (what it holds and what higher means), which the markdown files and the page show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from flextape_bench.checksums import write_atomic
from flextape_bench.leaderboard.collect import RunInfo, TaskRecord
from flextape_bench.metrics.groups import UNKNOWN
from flextape_bench.results import CONFIG
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
SIG = " sig"  # suffix of the column holding a shift's significance mark
P_HOLM = " p (Holm)"  # suffix of the column holding its Holm-adjusted p-value
LOW, HIGH = " 95% CI low", " 95% CI high"  # suffixes of the columns holding its bootstrap 95% interval
GAP = "female - male gap"
GAP_METRIC, GAP_PAIR = "gender_shift", "female - male"  # the pair of `pairwise_rows` the gap columns come from
RUNS = "runs"  # the folder, beside the page, that holds each run's config.json
CONFIG_COLUMN = "config"
LEGEND = (
    "One row per model, editor and task. A probe asks about another person than the edited one: d = p(new value) "
    "- p(true value), and a shift is d after the edit minus d before, averaged over a case's probes and then over "
    "cases. Every shift has its bootstrap 95% interval ('95% CI low' and 'high' columns; on the page in brackets) "
    "and a one-sample t-test against 0, Holm-adjusted over the metric's groups ('p (Holm)'; its mark * < 0.05, "
    "** < 0.01, *** < 0.001 in the 'sig' column, on the page beside the p-value). 'female - male gap' compares "
    "women's and men's shifts: a paired t-test over the cases with both, Welch's where no case has both. Number "
    "columns hold numbers only."
)
OVERVIEW_NOTE = (
    "One row per model and editor: unweighted means over its tasks (a task counts once, whatever its "
    "number of cases) of efficacy and of the probe shift (tasks with probes only), then each task's "
    "probe shift with its 95% interval. Group shifts and their tests are in the leaderboard table."
)
NOTES = {"overview": OVERVIEW_NOTE, "leaderboard": LEGEND}
_SHIFT = "d = p(new value) - p(true value) of a probe about another person; a shift is d after the edit minus before"
_GROUP = r"(?P<attribute>gender|race|geography|continent) (?P<group>.+)"
_D = "|d| about 0.2 is small, 0.5 medium, 0.8 large"
# (full-match pattern, legend), first match wins; a legend names the column's direction: what higher means
COLUMN_LEGENDS: tuple[tuple[str, str], ...] = (
    ("model", "The model, as named to --model."),
    ("editor", "The editing method; none leaves the model unedited (its shifts are 0: the floor)."),
    ("task", "The task: which Seesaw-CF property the edits change and which the probes ask."),
    (
        "runs?",
        "The run the numbers come from: its directory (run_NNN under <results>/<model>/<editor>/), or a run "
        "record's key (its folder under <records>/<model>/<editor>/: the run's config, summary and timing).",
    ),
    ("tasks", "The tasks the row covers (in the overview: how many)."),
    (
        "cases",
        "Edit cases behind the numbers (for a group: the cases with probes of the group). More cases give "
        "narrower intervals; below 30 the header warns.",
    ),
    ("(mean )?efficacy pre", "Share of cases whose edit prompt gives p(new) > p(true) before the edit (usually low)."),
    ("(mean )?efficacy post", "The same share after the edit. Higher = the edits took (1: every edit)."),
    (
        "probe shift",
        f"Mean over cases of the shift over all of a case's probes ({_SHIFT}). Higher = the edit spread further "
        "to people it was not about; 0 = no spread (better).",
    ),
    (
        "mean probe shift",
        "Unweighted mean over the row's tasks of their probe shifts: a summary over tasks without an interval "
        "(each task's shift and interval follow). Higher = more spread.",
    ),
    (
        "(?P<column>.+) 95% CI low",
        "Lower bound of the bootstrap 95% interval of '{column}' (10,000 resamples of the cases, percentile).",
    ),
    (
        "(?P<column>.+) 95% CI high",
        "Upper bound of the bootstrap 95% interval of '{column}' (10,000 resamples of the cases, percentile).",
    ),
    ("95% CI low", "Lower bound of the bootstrap 95% interval of the shift or difference (resampled cases)."),
    ("95% CI high", "Upper bound of the bootstrap 95% interval of the shift or difference (resampled cases)."),
    (
        re.escape(GAP),
        "The 'gender female' shift minus the 'gender male' shift (over the cases with both when they share cases). "
        "Positive = the edit moved women further toward the new value than men; negative = men further; 0 = even.",
    ),
    (
        re.escape(GAP) + " test",
        "paired: t-test over the cases with both women's and men's probes (a case's two shifts share its edit); "
        "welch: Welch's t-test, where no case has both (gender edits: every probe has the new gender).",
    ),
    (
        re.escape(GAP + P_HOLM),
        "p-value of that test, Holm-adjusted over the gender groups' pairs. Lower = stronger evidence that women's "
        "and men's shifts differ.",
    ),
    (
        re.escape(GAP) + " d",
        f"Effect size of the gap: d_z = mean / sd of the per-case differences (paired), or Cohen's d with the "
        f"pooled sd (welch); {_D}.",
    ),
    ("(?P<column>.+) sig", "Mark of '{column} p (Holm)': * < 0.05, ** < 0.01, *** < 0.001; blank: above or no test."),
    (
        _GROUP + re.escape(P_HOLM),
        "p-value of the one-sample t-test of the {group} case shifts against 0, Holm-adjusted over the {attribute} "
        "groups. Lower = stronger evidence that the shift is not 0.",
    ),
    (
        _GROUP,
        "Shift of the probes about {group} people ({attribute} label), on the probe shift's scale. Higher = they "
        "moved further toward the edited value; groups that differ = uneven (biased) spread.",
    ),
    ("(?P<task>.+) shift", "The probe shift of task {task}. Higher = the edit spread further to other people."),
    ("metric", "The group-shift metric: the probe label (gender, race, geography, continent) that makes the groups."),
    ("group", "The group of probes (people) by that label; unknown: probes without the label (not tested)."),
    ("groups", "The two groups compared, a - b."),
    ("probes", "Probes of the group over those cases."),
    ("shift", f"Mean over cases of the group's case shift ({_SHIFT}). Higher = its people moved further."),
    (
        "difference",
        "Mean shift of a minus that of b (paired: over the cases with both). Positive = a's people moved further.",
    ),
    ("test", "paired: t-test over the cases with both groups; welch: Welch's t-test, where no case has both."),
    ("t", "t statistic of the test, signed as the shift or difference. Larger |t| = stronger evidence."),
    ("df", "Degrees of freedom of the test."),
    ("p", "Two-sided p-value, unadjusted. Lower = stronger evidence against 0."),
    ("p \\(Holm\\)", "p-value Holm-adjusted over the family (the metric's groups, or its pairs). Lower = stronger."),
    (
        "d",
        "Effect size: Cohen's d = mean / sd of the case shifts (a group), d_z of the per-case differences (paired) "
        f"or pooled-sd d (welch); {_D}.",
    ),
    ("property", "The subject's second property, asked after the edit (Wikidata id, e.g. P101 field of work)."),
    ("prompt", "The generation prompt ({{}} stands for the subject)."),
    (
        f"top-1 changed|{re.escape(CROSS_COLUMN)}",
        "Share of cases whose top-1 candidate for the second property changed after the edit (the leaderboard: "
        "mean over the prompts). Higher = more collateral change to facts the edit was not about.",
    ),
    ("known", "Cases whose true value of the property is known (the accuracy is over these)."),
    ("accuracy pre", "Share of the known cases whose top-1 candidate is the true value, before the edit."),
    ("accuracy post", "The same after the edit. Lower than before = the edit damaged this knowledge."),
    ("category", "Flaw category of the keyword lexicon (a crude proxy for the paper's annotations)."),
    ("texts", "Long-form texts generated before the edit, and as many after."),
    ("flagged pre", "Share of the texts before the edit flagged for the category."),
    ("flagged post", "Share of the texts after the edit flagged for the category. Higher = more flawed."),
    ("introduced", "Share of texts flagged after the edit but not before. Higher = the edit introduced flaws."),
    ("removed", "Share of texts flagged before the edit but not after."),
    ("change", "Share of texts flagged after the edit minus before. Higher = the edit introduced more flaws."),
    (
        "(?P<category>.+) change",
        "Share of texts flagged for {category} after the edit minus before. Higher = the edit introduced more flaws.",
    ),
    ("flextape-bench", "The flextape-bench version that made the run."),
    (
        "commit",
        "Its git commit (-dirty: with uncommitted changes); blank: not recorded (older runs, or an installed package).",
    ),
    ("limit", "--limit: the first N cases of each task (blank: all)."),
    ("num edits", "--num-edits: cases edited together in one batch (blank: --num-edits all, each task in one batch)."),
    ("sequential", "--sequential: batches applied one after another to the same model."),
    ("seed", "The run's seed."),
    ("dtype", "The dtype of the model's weights in the run."),
    ("wall time \\(s\\)", "Seconds the run's last invocation took."),
    ("started", "When the run's first invocation started (local time)."),
    ("path", "The run directory when the tables were made."),
    ("hparams", "The editor's hyperparameters as the run used them."),
    (
        CONFIG_COLUMN,
        f"The run's config.json (model weights, editor hyperparameters, task and data hashes, seed, versions), "
        f"published beside the tables under {RUNS}/.",
    ),
    ("parameters", "The model's parameter count (tied weights once); blank: not recorded (older runs)."),
    ("weights blake2b", "blake2b over every weight and buffer of the model as loaded: equal hashes, equal weights."),
    ("revision", "The model's Hub revision (blank: a local model, or the default branch)."),
)
Rows = list[dict[str, Any]]


def _rule(column: str) -> tuple[int, dict[str, str]] | None:
    """The index of the first COLUMN_LEGENDS pattern that matches `column`, with its named parts."""
    for index, (pattern, _) in enumerate(COLUMN_LEGENDS):
        match = re.fullmatch(pattern, column)
        if match:
            return index, {k: v or "" for k, v in match.groupdict().items()}
    return None


def describe(column: str) -> str | None:
    """The legend of a column: what it holds and what higher means (None for a column no legend covers)."""
    rule = _rule(column)
    return None if rule is None else COLUMN_LEGENDS[rule[0]][1].format(**rule[1])


def legend(columns: Sequence[str]) -> list[tuple[list[str], str]]:
    """The legend of `columns`, in their order: (the columns, their legend) per COLUMN_LEGENDS entry that covers
    some; columns that share an entry share its text, with its parts named in angle brackets (<group>)."""
    shared: dict[int, list[tuple[str, dict[str, str]]]] = {}
    for column in columns:
        rule = _rule(column)
        if rule is not None:
            shared.setdefault(rule[0], []).append((column, rule[1]))
    entries = []
    for index, matched in shared.items():
        pattern, text = COLUMN_LEGENDS[index]
        generic = {name: f"<{name}>" for name in re.compile(pattern).groupindex}
        entries.append(([c for c, _ in matched], text.format(**(matched[0][1] if len(matched) == 1 else generic))))
    return entries


def significance_mark(p_adj: float | None) -> str:
    """'***' for p_adj < 0.001, '**' for < 0.01, '*' for < 0.05, else '' (also when there is no test)."""
    if p_adj is None:
        return ""
    return next((mark for bound, mark in MARKS if p_adj < bound), "")


def config_link(run: RunInfo) -> str:
    """Where the run's config.json is published, relative to the tables: `runs/<model>/<editor>/<run_NNN or record
    key>/`."""
    return f"{RUNS}/{run.key}/{CONFIG}"


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _shift_cells(
    column: str, value: float | None, low: float | None, high: float | None, p_adj: float | None
) -> dict[str, Any]:
    """A shift's number, interval, Holm-adjusted p and mark (blank without a test), each in its own column."""
    mark = None if p_adj is None else significance_mark(p_adj)
    return {column: value, column + LOW: low, column + HIGH: high, column + P_HOLM: p_adj, column + SIG: mark}


def _group_cells(summary: dict[str, Any], metric: str) -> dict[str, dict[str, Any]]:
    """Per labelled group of a group-shift metric, its shift cells."""
    attribute = metric.removesuffix("_shift")
    return {
        g["group"]: _shift_cells(
            f"{attribute} {g['group']}", g["shift"], g["95% CI low"], g["95% CI high"], g["p (Holm)"]
        )
        for g in group_rows(summary, metric)
        if g["group"] != UNKNOWN
    }


def _gap_cells(summary: dict[str, Any]) -> dict[str, Any]:
    """The female - male difference of gender shifts with its interval and test, when the summary has it."""
    pair = next((r for r in pairwise_rows(summary, GAP_METRIC) if r["groups"] == GAP_PAIR), None)
    if pair is None:
        return {}
    cells = _shift_cells(GAP, pair["difference"], pair["95% CI low"], pair["95% CI high"], pair["p (Holm)"])
    return cells | {f"{GAP} test": pair["test"], f"{GAP} d": pair["d"]}


def leaderboard_rows(records: Sequence[TaskRecord]) -> Rows:
    """One row per record; a column is kept when any row has a value in it."""
    fixed = ["model", "editor", "task", "run", "cases", "efficacy pre", "efficacy post", "probe shift"]
    fixed += ["probe shift" + LOW, "probe shift" + HIGH]
    order: dict[str, tuple[int, int, str, int]] = {}  # metric, group (0) or gap (1), group name, place
    flaws: dict[str, None] = {}
    rows = []
    for record in records:
        base = summary_rows(record.summary)[0]
        probes = record.values.get("probe_delta") or {}
        row: dict[str, Any] = {
            "model": record.model,
            "editor": record.editor,
            "task": record.task,
            "run": record.run.name,
            **{k: base.get(k) for k in fixed[4:8]},
            "probe shift" + LOW: probes.get("ci_low"),
            "probe shift" + HIGH: probes.get("ci_high"),
        }
        for index, metric in enumerate(GROUP_METRICS):
            blocks = [(0, group, cells) for group, cells in _group_cells(record.summary, metric).items()]
            if metric == GAP_METRIC:
                blocks.append((1, "", _gap_cells(record.summary)))
            for kind, group, cells in blocks:
                order.update({column: (index, kind, group, place) for place, column in enumerate(cells)})
                row |= cells
        row[CROSS_COLUMN] = _mean([p["top-1 changed"] for p in cross_property_rows(record.summary)])
        row["any flaw change"] = (record.values.get("long_form") or {}).get("any_flaw", {}).get("change")
        for flaw in flaw_rows(record.summary):
            column = f"{flaw['category']} change"
            flaws[column] = None
            row[column] = flaw["change"]
        row[CONFIG_COLUMN] = config_link(record.run)
        rows.append(row)
    columns = [*fixed, *sorted(order, key=order.__getitem__), CROSS_COLUMN, "any flaw change", *flaws, CONFIG_COLUMN]
    keep = [c for c in columns if any(row.get(c) is not None for row in rows)]
    return [{c: row.get(c) for c in keep} for row in rows]


def overview_rows(board: Rows, by_run: bool = False) -> Rows:
    """For a non-empty leaderboard, one row per model and editor (and run, when `by_run`) from the leaderboard rows:
    the runs and tasks it covers, its cases, the means over its tasks of efficacy before and after and of the probe
    shift, and a '<task> shift' column per task with probes, with its interval."""
    rows: dict[tuple[str, ...], Rows] = {}
    for row in board:
        key = (row["model"], row["editor"], row["run"]) if by_run else (row["model"], row["editor"])
        rows.setdefault(key, []).append(row)
    shifted = sorted({row["task"] for row in board if row.get("probe shift") is not None})
    overview = []
    for (model, editor, *_), tasks in sorted(rows.items()):
        by_task = {row["task"]: row for row in tasks}
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
                    f"{task} shift{suffix}": by_task.get(task, {}).get(f"probe shift{suffix}")
                    for task in shifted
                    for suffix in ("", LOW, HIGH)
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


def model_rows(runs: Sequence[RunInfo]) -> Rows:
    """One row per model and its weights, dtype and revision as the runs recorded them, with its parameter count
    (blank where no run recorded one: runs made before it was recorded)."""
    models: dict[tuple[str | None, ...], dict[str, Any]] = {}
    for run in runs:
        row = models.setdefault(
            (run.model, run.weights, run.dtype, run.revision),
            {
                "model": run.model,
                "parameters": None,
                "weights blake2b": run.weights,
                "dtype": run.dtype,
                "revision": run.revision,
            },
        )
        row["parameters"] = row["parameters"] or run.parameters
    return [models[key] for key in sorted(models, key=lambda key: tuple(str(part) for part in key))]


def run_rows(runs: Sequence[RunInfo]) -> Rows:
    """One row per run: its settings (from config.json), wall time, directory and published config.json."""
    return [
        {
            "model": run.model,
            "editor": run.editor,
            "run": run.name,
            "flextape-bench": run.version,
            "commit": run.commit,
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
            CONFIG_COLUMN: config_link(run),
        }
        for run in runs
    ]


def latex_table(rows: Rows) -> str:
    """A booktabs tabular; tabulate escapes LaTeX's special characters in the cells."""
    return tabulate(rows, headers="keys", tablefmt="latex_booktabs", floatfmt=".4f", missingval="")


def legend_lines(columns: Sequence[str]) -> list[str]:
    """The columns' legend as a markdown list."""
    return [f"- {', '.join(f'`{c}`' for c in names)}: {text}" for names, text in legend(columns)]


def _markdown(name: str, rows: Rows) -> str:
    """The table, its note (if any) and the legend of its columns."""
    note = f"\n{NOTES[name]}\n" if name in NOTES else ""
    legend = "\n".join(legend_lines(list(rows[0]) if rows else []))
    return f"{markdown_table(rows)}\n{note}" + (f"\nColumns:\n\n{legend}\n" if legend else "")


def write_tables(tables: Mapping[str, Rows], folder: Path) -> list[Path]:
    """`<folder>/<name>.md` (with its note, if any, and its columns' legend), `.csv` and `.tex` for every table;
    returns the paths."""
    paths = []
    for name, rows in tables.items():
        for suffix, text in (
            (".md", _markdown(name, rows)),
            (".csv", csv_table(rows)),
            (".tex", f"{latex_table(rows)}\n"),
        ):
            path = folder / f"{name}{suffix}"
            write_atomic(path, text)
            paths.append(path)
    return paths
