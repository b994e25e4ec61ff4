"""`flextape-bench agreement CSV CSV...`: agreement between annotators' label files, one row per label column."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flextape_bench.errors import UserError
from flextape_bench.metrics.agreement import LEVELS, MISSING_POLICIES, agreement_table

NAME = "agreement"
HEADERS = {
    "label": "label",
    "n_items": "items",
    "alpha": "alpha",
    "n_alpha": "alpha items",
    "fleiss": "Fleiss",
    "mean_cohen": "mean Cohen",
    "all_agree": "all agree",
    "n_missing": "missing",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="agreement between annotators' label CSVs (Krippendorff's alpha, Fleiss, Cohen)",
        description="Agreement per label column between annotator CSVs (one per annotator, same items). Alpha uses "
        "every pairable label; Fleiss, mean pairwise Cohen and 'all agree' use the items every annotator "
        "labelled ('items').",
    )
    parser.add_argument("files", type=Path, nargs="+", metavar="CSV", help="one CSV per annotator (at least 2)")
    parser.add_argument("--columns", help="comma-separated label columns (default: every non-item column)")
    parser.add_argument(
        "--level", default="nominal", choices=list(LEVELS), help="Krippendorff's alpha metric (default nominal)"
    )
    parser.add_argument(
        "--blank-as",
        metavar="VALUE",
        help="read blank labels as VALUE in rows the annotator labelled at all (default: missing)",
    )
    parser.add_argument(
        "--missing-policy",
        default="drop",
        choices=list(MISSING_POLICIES),
        help="drop (default): missing labels stay missing; seed: as the upstream agreement script, "
        "every missing label, wholly blank rows included, counts as the column's neutral value "
        "(0 in a 0/1 column, else the middle of the scale)",
    )
    parser.add_argument("--format", default="plain", choices=["plain", "github"], help="table format")
    parser.set_defaults(func=execute)
    return parser


def format_table(rows: Iterable[Mapping[str, Any]], tablefmt: str = "plain") -> str:
    from tabulate import tabulate

    body = [[row[key] for key in HEADERS] for row in rows]
    return tabulate(body, headers=list(HEADERS.values()), tablefmt=tablefmt, floatfmt=".3f", missingval="n/a")


def execute(args: argparse.Namespace) -> int:
    """Print the agreement table for `args.files`; returns the exit code (UserError for bad input)."""
    if len(args.files) < 2:
        raise UserError(f"agreement needs at least 2 annotation files (one per annotator), got {len(args.files)}")
    columns = None
    if args.columns is not None:
        columns = [c for c in args.columns.split(",") if c.strip()]
        if not columns:
            raise UserError("--columns names no column; give comma-separated label column names")
    rows = agreement_table(
        args.files, columns, level=args.level, blank_as=args.blank_as, missing_policy=args.missing_policy
    )
    print(format_table(rows, args.format))
    return 0
