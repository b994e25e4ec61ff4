"""`flextape-bench leaderboard --results DIR --output DIR [--all-runs] [--push-to-hub ORG/NAME [--dry-run]]`."""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from flextape_bench.errors import UserError
from flextape_bench.leaderboard.collect import Collection, collect
from flextape_bench.results import check_output


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Define the `leaderboard` subcommand on an argparse subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "leaderboard", help="compare finished runs: tables (markdown, CSV, LaTeX), group-shift plots, one HTML page",
        description="Collect the finished runs under --results (the newest run per model, editor and task unless "
                    "--all-runs) and write overview.* (one row per model and editor), leaderboard.* (one per task "
                    "too), detail tables, plots/ and index.html to --output.")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results root (default ./results)")
    parser.add_argument("--output", type=Path, default=Path("leaderboard"),
                        help="directory to write the leaderboard into (default ./leaderboard)")
    parser.add_argument("--all-runs", action="store_true",
                        help="one row per run and task instead of the newest run per model, editor and task")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME",
                        help="also push the leaderboard's runs and tasks as a Hugging Face dataset repository")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --push-to-hub: write the dataset folder to <output>/hub/ and push nothing")
    return parser


def write_leaderboard(results: Path, output: Path, all_runs: bool = False) -> tuple[Collection, str, list[Path]]:
    """Collect the runs under `results` and write every table, plot and the page under `output`; returns the
    collection, the leaderboard as markdown and the paths written. (Plotting modules load here, not with the CLI.)"""
    from flextape_bench.leaderboard.page import write_page
    from flextape_bench.leaderboard.plots import plot_group_shifts
    from flextape_bench.leaderboard.tables import (detail_tables, leaderboard_rows, overview_rows, run_rows,
                                                   write_tables)
    from flextape_bench.tables import markdown_table

    collection = collect(results, all_runs)
    output.mkdir(parents=True, exist_ok=True)
    board = leaderboard_rows(collection.records)
    tables = {"overview": overview_rows(board, all_runs), "leaderboard": board, "runs": run_rows(collection.runs), **detail_tables(collection.records)}
    paths = write_tables(tables, output)
    plots = plot_group_shifts(collection.records, output / "plots")
    paths += [path for plot in plots for path in (plot.png, plot.svg)]
    paths.append(write_page(output / "index.html", tables, plots, results, collection.unfinished))
    return collection, markdown_table(board), paths


def _selection(collection: Collection) -> dict[Path, list[str]]:
    """Run directory -> the tasks the leaderboard keeps of it (a superseded task of a kept run is not among them)."""
    selection: dict[Path, list[str]] = {run.path: [] for run in collection.runs}
    for record in collection.records:
        selection[record.run.path].append(record.task)
    return selection


def _push(hub: Any, selection: dict[Path, list[str]], output: Path, repo_id: str, dry_run: bool) -> None:
    if dry_run:
        folder = output / "hub"
        shutil.rmtree(folder, ignore_errors=True)  # a new folder: nothing left from an earlier dry run
        hub.build_dataset_folder(selection, folder, repo_id)
        print(f"dry run, nothing pushed; the dataset folder for {repo_id}: {folder}")
        return
    with tempfile.TemporaryDirectory(prefix="flextape-hub-") as tmp:
        hub.build_dataset_folder(selection, Path(tmp), repo_id)
        print(f"pushed: {hub.push_folder(Path(tmp), repo_id)}")


def run(args: argparse.Namespace) -> int:
    """Write the leaderboard, print its markdown table and the paths written; push when asked."""
    if args.dry_run and not args.push_to_hub:
        raise UserError("--dry-run needs --push-to-hub ORG/NAME (it writes the folder that would be pushed)")
    if args.push_to_hub:
        from flextape_bench.leaderboard import hub  # the Hub client libraries load only for a push

        hub.check_repo_id(args.push_to_hub)
    check_output(args.output)
    collection, board, paths = write_leaderboard(args.results, args.output, args.all_runs)
    print(board)
    if collection.unfinished:
        print(f"\nskipped {len(collection.unfinished)} unfinished run(s) (no intact summary.json): "
              + ", ".join(str(p) for p in collection.unfinished), file=sys.stderr)
    print("\nwritten:\n" + "\n".join(f"  {path}" for path in paths))
    if args.push_to_hub:
        _push(hub, _selection(collection), args.output, args.push_to_hub, args.dry_run)
    return 0
