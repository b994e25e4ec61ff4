"""`flextape-bench leaderboard --results DIR [--records DIR] --output DIR [--tasks NAMES] [--all-runs]
[--push-to-hub ORG/NAME [--dry-run]]`."""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flextape_bench.checksums import write_atomic
from flextape_bench.errors import UserError
from flextape_bench.leaderboard.collect import Collection
from flextape_bench.leaderboard.write import write_leaderboard
from flextape_bench.results import check_output

NAME = "leaderboard"
HUB = "hub"
DRY_RUN_MARK = ".flextape-bench-dry-run"  # in <output>/hub: this command wrote it, a later dry run may replace it
logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="compare finished runs: tables (markdown, CSV, LaTeX), charts and plots, one HTML page",
        description="Collect the finished runs under --results (the newest run per model, editor and task unless "
        "--all-runs) and write overview.* (one row per model and editor), leaderboard.* (one per task "
        "too), models.*, runs.*, detail tables, plots/, each run's config.json under runs/ and index.html (which "
        "links to them) to --output.",
    )
    parser.add_argument("--results", type=Path, default=Path("results"), help="results root (default ./results)")
    parser.add_argument(
        "--records",
        type=Path,
        help="also read the run records in this folder (each finished run's config, summary and timing, kept apart "
        "from its cases by `python3 -m flextape_bench.leaderboard.run_records RESULTS DIR`, as leaderboard/records/ "
        "keeps the grid's); a run under --results is preferred to a record",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("leaderboard"),
        help="directory to write the leaderboard into (default ./leaderboard); in its plots/ and runs/, the images "
        "and config.json files this call does not write (an earlier call's) are removed",
    )
    parser.add_argument(
        "--tasks",
        metavar="NAMES",
        help="comma-separated task names: only these tasks' rows, charts and plots (each must be in a finished run "
        "or record); default: every task found",
    )
    parser.add_argument(
        "--all-runs",
        action="store_true",
        help="one row per run and task instead of the newest run per model, editor and task",
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        help="also push the leaderboard's runs and tasks as a Hugging Face dataset repository",
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="with --push-to-hub: create the dataset repository private (an existing repository keeps its visibility)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --push-to-hub: write the dataset folder to <output>/hub/ (replacing only an earlier "
        "dry run's) and push nothing",
    )
    parser.set_defaults(func=execute)
    return parser


def _selection(collection: Collection) -> dict[Path, list[str]]:
    """Run directory -> the tasks the leaderboard keeps of it (a superseded task of a kept run is not among them)."""
    selection: dict[Path, list[str]] = {run.path: [] for run in collection.runs}
    for record in collection.records:
        selection[record.run.path].append(record.task)
    return selection


def _check_dry_run_folder(folder: Path) -> None:
    """Refuse a `folder` that a dry run may not replace: one that exists, is not empty and has no DRY_RUN_MARK."""
    if not (folder.exists() or folder.is_symlink()):
        return
    ours = (
        folder.is_dir() and not folder.is_symlink() and ((folder / DRY_RUN_MARK).is_file() or not any(folder.iterdir()))
    )
    if not ours:
        raise UserError(
            f"{folder}: not written by `leaderboard --dry-run` (no {DRY_RUN_MARK} in it), so not "
            "replaced; move or delete it, or give another --output"
        )


def _push(hub: Any, selection: dict[Path, list[str]], output: Path, repo_id: str, dry_run: bool, private: bool) -> None:
    if dry_run:
        folder = output / HUB
        if folder.exists():  # an earlier dry run's (checked by _check_dry_run_folder): nothing of it is kept
            shutil.rmtree(folder)
        hub.build_dataset_folder(selection, folder, repo_id)
        write_atomic(
            folder / DRY_RUN_MARK,
            "written by `flextape-bench leaderboard --dry-run`, which replaces this folder; not part of the dataset\n",
        )
        print(f"dry run, nothing pushed; the dataset folder for {repo_id}: {folder}")
        return
    with tempfile.TemporaryDirectory(prefix="flextape-hub-") as tmp:
        hub.build_dataset_folder(selection, Path(tmp), repo_id)
        print(f"pushed: {hub.push_folder(Path(tmp), repo_id, private=private)}")


def execute(args: argparse.Namespace) -> int:
    """Write the leaderboard, print its markdown table and the paths written; push when asked."""
    if args.dry_run and not args.push_to_hub:
        raise UserError("--dry-run needs --push-to-hub ORG/NAME (it writes the folder that would be pushed)")
    if args.private and not args.push_to_hub:
        raise UserError("--private needs --push-to-hub ORG/NAME (it makes the pushed dataset repository private)")
    if args.push_to_hub and args.records:
        raise UserError(
            "--push-to-hub publishes the runs' cases, which run records (--records) do not hold; push without "
            "--records, from the results root that holds the runs"
        )
    if args.push_to_hub:
        from flextape_bench.leaderboard import hub  # the Hub client libraries load only for a push

        hub.check_repo_id(args.push_to_hub)
    check_output(args.output)
    if args.dry_run:
        _check_dry_run_folder(args.output / HUB)
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()] if args.tasks is not None else None
    if tasks == []:
        raise UserError("--tasks: no task names; give comma-separated task names, or leave --tasks out for all")
    collection, board, paths = write_leaderboard(args.results, args.output, args.all_runs, args.records, tasks)
    print(board)
    if collection.unfinished:
        logger.warning(
            "\nskipped %s unfinished run(s) (no intact summary.json): %s",
            len(collection.unfinished),
            ", ".join(str(p) for p in collection.unfinished),
        )
    print("\nwritten:\n" + "\n".join(f"  {path}" for path in paths))
    if args.push_to_hub:
        _push(hub, _selection(collection), args.output, args.push_to_hub, args.dry_run, args.private)
    return 0
