"""Figures, saved as PNG and SVG (names from `results.slug`, contents reproducible):

- the gender charts, one per task with women's or men's probes (`<folder>/<task>__women_men`): per model and
  editor, the shift of women's and of men's probes side by side, each with its bootstrap 95% interval;
- group-shift figures like the paper's: per model, task and group metric (`<folder>/<model>__<task>__<metric>`),
  each labelled group's mean probe d before and after the edit per editor (left), and the shift d_post - d_pre with
  its bootstrap 95% interval (right)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from flextape_bench.leaderboard.collect import TaskRecord
from flextape_bench.metrics.groups import UNKNOWN
from flextape_bench.results import slug
from flextape_bench.tables import GROUP_METRICS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # for the type checker only: newer than the matplotlib>=3.7 floor

STYLE: dict[RcKeyType, Any] = {"svg.hashsalt": "flextape-bench", "font.size": 9}
WIDTH = 0.8  # of one group's slot, shared by its editors
GENDER_METRIC = "gender_shift"
GENDERS = (("female", "women", "C1"), ("male", "men", "C0"))  # gender_shift group, legend label, colour
GENDER_OFFSET = 0.16  # of a row's height: women above its middle, men below


@dataclass(frozen=True)
class Plot:
    """One figure: the model(s), task and metric it shows, and its files."""

    models: tuple[str, ...]
    task: str
    metric: str
    png: Path
    svg: Path


def _plain(text: str) -> str:
    """Text from results shown as is: a '$' would start matplotlib's mathtext."""
    return text.replace("$", r"\$")


def _label(record: TaskRecord, records: Sequence[TaskRecord], with_model: bool = False) -> str:
    """The editor (after the model, `with_model`), with the run when the figure has several runs of it."""
    repeated = sum((r.model, r.editor) == (record.model, record.editor) for r in records) > 1
    label = f"{record.model} / {record.editor}" if with_model else record.editor
    return _plain(f"{label} {record.run.name}" if repeated else label)


def _error(stats: dict[str, Any]) -> tuple[float, float]:
    """Distances from a shift to the ends of its interval (0 where it has none)."""
    low, high = stats.get("ci_low"), stats.get("ci_high")
    return (
        0.0 if low is None else max(stats["shift"] - low, 0.0),
        0.0 if high is None else max(high - stats["shift"], 0.0),
    )


def gender_chart(records: Sequence[TaskRecord], title: str) -> plt.Figure:
    """One row per record (model and editor), top to bottom: the shift of women's and men's probes as dots with
    their 95% intervals, side by side; a group the record lacks is left out of its row (and of the legend, when no
    record has it)."""
    with_model = len({r.model for r in records}) > 1
    figure, axis = plt.subplots(figsize=(6.2, 1.6 + 0.45 * len(records)), layout="constrained")
    for sign, (group, name, colour) in zip((-1, 1), GENDERS):
        points = [
            (row + sign * GENDER_OFFSET, stats)
            for row, record in enumerate(records)
            if (stats := record.values[GENDER_METRIC]["groups"].get(group)) and stats["shift"] is not None
        ]
        if not points:
            continue
        errors = [_error(stats) for _, stats in points]
        axis.errorbar(
            [stats["shift"] for _, stats in points],
            [y for y, _ in points],
            xerr=[[low for low, _ in errors], [high for _, high in errors]],
            fmt="o",
            color=colour,
            capsize=3,
            label=f"{name} ({group} probes)",
        )
    axis.set_yticks(range(len(records)), [_label(r, records, with_model) for r in records])
    axis.set_ylim(len(records) - 0.5, -0.5)  # the first record on top
    axis.axvline(0, color="0.5", linewidth=0.6)
    axis.set_xlabel("probe shift d_post - d_pre, with 95% CI (higher: moved toward the edited value)")
    figure.legend(loc="outside lower center", ncols=2, fontsize="small")
    figure.suptitle(title)
    return figure


def _save(figure: plt.Figure, folder: Path, stem: str) -> tuple[Path, Path]:
    """The figure as `<stem>.png` and `<stem>.svg` without dates or software names; closed."""
    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    figure.savefig(png, dpi=120, metadata={"Software": None})
    figure.savefig(svg, metadata={"Date": None, "Creator": None})
    plt.close(figure)
    return png, svg


def plot_gender_charts(records: Sequence[TaskRecord], folder: Path) -> list[Plot]:
    """One gender chart per task whose records have women's or men's probes, rows by model, editor and run; returns
    them by task."""
    tasks: dict[str, list[TaskRecord]] = {}
    for record in records:
        groups = (record.values.get(GENDER_METRIC) or {}).get("groups", {})
        if any(group in groups for group, _, _ in GENDERS):
            tasks.setdefault(record.task, []).append(record)
    folder.mkdir(parents=True, exist_ok=True)
    charts = []
    with plt.rc_context(STYLE):
        for task, members in sorted(tasks.items()):
            members = sorted(members, key=lambda r: (r.model, r.editor, r.run.order))
            models = tuple(dict.fromkeys(r.model for r in members))
            title = f"{task}: shift of women's and men's probes" + (f" ({models[0]})" if len(models) == 1 else "")
            png, svg = _save(gender_chart(members, _plain(title)), folder, f"{slug(task)}__women_men")
            charts.append(Plot(models=models, task=task, metric=GENDER_METRIC, png=png, svg=svg))
    return charts


def _draw(records: Sequence[TaskRecord], metric: str, title: str) -> plt.Figure:
    groups = sorted({g for r in records for g in r.values[metric]["groups"]} - {UNKNOWN})
    figure, (levels, shifts) = plt.subplots(1, 2, figsize=(4 + 1.6 * len(groups), 3.6), layout="constrained")
    step = WIDTH / len(records)
    for k, record in enumerate(records):
        colour = f"C{k % 10}"
        values = record.values[metric]["groups"]
        xs = [i - WIDTH / 2 + step * (k + 0.5) for i, g in enumerate(groups) if g in values]
        stats = [values[g] for g in groups if g in values]
        levels.vlines(xs, [s["d_pre"] for s in stats], [s["d_post"] for s in stats], colors=colour, linewidth=1)
        levels.scatter(xs, [s["d_pre"] for s in stats], facecolors="none", edgecolors=colour, zorder=3)
        levels.scatter(xs, [s["d_post"] for s in stats], color=colour, zorder=3, label=_label(record, records))
        errors = [
            [max(s["shift"] - s["ci_low"], 0) if s.get("ci_low") is not None else 0 for s in stats],
            [max(s["ci_high"] - s["shift"], 0) if s.get("ci_high") is not None else 0 for s in stats],
        ]
        shifts.bar(
            xs, [s["shift"] for s in stats], step * 0.9, yerr=errors, color=colour, capsize=3, error_kw={"linewidth": 1}
        )
    for axis, heading, ylabel in (
        (levels, "before (hollow) and after (filled)", "mean d = p_new - p_true"),
        (shifts, "shift with 95% CI", "d_post - d_pre"),
    ):
        axis.set_xticks(range(len(groups)), [_plain(g) for g in groups], rotation=30 if len(groups) > 4 else 0)
        axis.axhline(0, color="0.5", linewidth=0.6)
        axis.set_title(heading)
        axis.set_ylabel(ylabel)
    levels.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def plot_group_shifts(records: Sequence[TaskRecord], folder: Path) -> list[Plot]:
    """One figure per model, task and group metric with a labelled group; returns them in file-name order."""
    figures: dict[str, list[TaskRecord]] = {}
    for record in records:
        for metric in GROUP_METRICS:
            if set((record.values.get(metric) or {}).get("groups", {})) - {UNKNOWN}:
                figures.setdefault(f"{slug(record.model)}__{slug(record.task)}__{metric}", []).append(record)
    folder.mkdir(parents=True, exist_ok=True)
    plots = []
    with plt.rc_context(STYLE):
        for stem, members in sorted(figures.items()):
            members = sorted(members, key=lambda r: (r.editor, r.run.order))
            metric = stem.rsplit("__", 1)[1]
            models = tuple(dict.fromkeys(r.model for r in members))
            figure = _draw(members, metric, _plain(f"{', '.join(models)} - {members[0].task}: {metric}"))
            png, svg = _save(figure, folder, stem)
            plots.append(Plot(models=models, task=members[0].task, metric=metric, png=png, svg=svg))
    return plots
