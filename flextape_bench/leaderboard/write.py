"""The whole leaderboard of a results root written to a folder: every table, plot and the page."""

from __future__ import annotations

from pathlib import Path

from flextape_bench.leaderboard.collect import Collection, collect


def write_leaderboard(results: Path, output: Path, all_runs: bool = False) -> tuple[Collection, str, list[Path]]:
    """Collect the runs under `results` and write every table, plot and the page under `output`; returns the
    collection, the leaderboard as markdown and the paths written. (Plotting modules load here, not on import.)"""
    from flextape_bench.leaderboard.page import write_page
    from flextape_bench.leaderboard.plots import plot_group_shifts
    from flextape_bench.leaderboard.tables import detail_tables, leaderboard_rows, overview_rows, run_rows, write_tables
    from flextape_bench.tables import markdown_table

    collection = collect(results, all_runs)
    output.mkdir(parents=True, exist_ok=True)
    board = leaderboard_rows(collection.records)
    tables = {
        "overview": overview_rows(board, all_runs),
        "leaderboard": board,
        "runs": run_rows(collection.runs),
        **detail_tables(collection.records),
    }
    paths = write_tables(tables, output)
    plots = plot_group_shifts(collection.records, output / "plots")
    paths += [path for plot in plots for path in (plot.png, plot.svg)]
    paths.append(write_page(output / "index.html", tables, plots, results, collection.unfinished))
    return collection, markdown_table(board), paths
