"""Group-shift figures like the paper's: per model, task and group metric, each labelled group's mean probe d before
and after the edit per editor (left), and the shift d_post - d_pre with its bootstrap 95% interval (right). Saved
as `<folder>/<model>__<task>__<metric>.png` and `.svg` (names from `results.slug`, contents reproducible)."""

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


def _label(record: TaskRecord, records: Sequence[TaskRecord]) -> str:
    """The editor, with the run when the figure has several runs of it."""
    repeated = sum(r.editor == record.editor for r in records) > 1
    return _plain(f"{record.editor} {record.run.name}" if repeated else record.editor)


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
            png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
            figure.savefig(png, dpi=120, metadata={"Software": None})
            figure.savefig(svg, metadata={"Date": None, "Creator": None})
            plt.close(figure)
            plots.append(Plot(models=models, task=members[0].task, metric=metric, png=png, svg=svg))
    return plots
