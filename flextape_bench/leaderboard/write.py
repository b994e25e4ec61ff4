"""The whole leaderboard of a results root written to a folder: every table, chart and plot, the runs' config.json
files (which the tables link to) and the page."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flextape_bench.checksums import write_atomic
from flextape_bench.leaderboard.collect import Collection, RunInfo, collect
from flextape_bench.leaderboard.tables import config_link
from flextape_bench.results import CONFIG

OWNED = {"plots": ("*.png", "*.svg"), "runs": ("**/config.json",)}  # output folders this module alone writes into


def publish_configs(runs: Sequence[RunInfo], output: Path) -> list[Path]:
    """Each run's config.json, byte for byte (its checksum included), at its `tables.config_link` under `output`;
    returns the paths."""
    paths = []
    for run in runs:
        path = output / config_link(run)
        write_atomic(path, (run.path / CONFIG).read_bytes())
        paths.append(path)
    return paths


def remove_stale(output: Path, written: Sequence[Path]) -> None:
    """Remove the files of `output`'s OWNED folders that this call did not write (an earlier call's plots and configs
    of tasks or runs no longer shown), and the folders that leaves empty."""
    keep = {path.resolve() for path in written}
    for folder, patterns in OWNED.items():
        for pattern in patterns:
            for path in (output / folder).glob(pattern):
                if path.is_file() and path.resolve() not in keep:
                    path.unlink()
        for path in sorted((output / folder).glob("**/"), key=lambda p: len(p.parts), reverse=True):
            if path != output / folder and not any(path.iterdir()):
                path.rmdir()


def write_leaderboard(
    results: Path,
    output: Path,
    all_runs: bool = False,
    records: Path | None = None,
    tasks: Sequence[str] | None = None,
) -> tuple[Collection, str, list[Path]]:
    """Collect the runs under `results` (and the run records under `records`; only `tasks` where given) and write
    every table, chart, plot, config.json and the page under `output`, removing the stale files of its OWNED
    folders; returns the collection, the leaderboard as markdown and the paths written. (Plotting modules load here,
    not on import.)"""
    from flextape_bench.leaderboard.page import write_page
    from flextape_bench.leaderboard.plots import plot_gender_charts, plot_group_shifts
    from flextape_bench.leaderboard.tables import (
        detail_tables,
        leaderboard_rows,
        model_rows,
        overview_rows,
        run_rows,
        write_tables,
    )
    from flextape_bench.tables import markdown_table

    collection = collect(results, all_runs, records, tasks)
    output.mkdir(parents=True, exist_ok=True)
    board = leaderboard_rows(collection.records)
    tables = {
        "overview": overview_rows(board, all_runs),
        "leaderboard": board,
        "models": model_rows(collection.runs),
        "runs": run_rows(collection.runs),
        **detail_tables(collection.records),
    }
    paths = write_tables(tables, output)
    paths += publish_configs(collection.runs, output)
    charts = plot_gender_charts(collection.records, output / "plots")
    plots = plot_group_shifts(collection.records, output / "plots")
    paths += [path for plot in (*charts, *plots) for path in (plot.png, plot.svg)]
    case_ids: dict[str, list[list[int]]] = {}
    for record in collection.records:
        case_ids.setdefault(record.task, []).append(record.case_ids)
    paths.append(
        write_page(output / "index.html", tables, charts, plots, results, collection.unfinished, case_ids, records)
    )
    remove_stale(output, paths)
    return collection, markdown_table(board), paths
