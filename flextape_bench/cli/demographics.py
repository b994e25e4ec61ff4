"""`flextape-bench demographics`: fill the Wikidata cache for every probe of the tasks (or, offline, check it) and
print the counts and label coverage."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from flextape_bench.cases import EditCase
from flextape_bench.cli import arguments
from flextape_bench.demographics.cache import CACHE_FILE, DemographicsCache, default_cache_path
from flextape_bench.demographics.labels import ATTRIBUTES, attach_labels
from flextape_bench.demographics.prefetch import prefetch, property_coverage
from flextape_bench.demographics.tables import load_tables
from flextape_bench.demographics.wikidata import PROPERTY_NAMES, Fetch, Sleep, distinct_qids
from flextape_bench.errors import UserError
from flextape_bench.paths import cache_dir
from flextape_bench.tasks.data import data_notes, resolve_dataset

NAME = "demographics"
logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="fetch the Wikidata claims (gender, ethnic group, citizenship, birthplace) of every probe into a "
        "local cache, and report label coverage",
    )
    parser.add_argument(
        "--tasks",
        default="all",
        help="comma-separated task and group names (default all; tasks without probe ids are skipped)",
    )
    arguments.data_dir_argument(parser)
    arguments.include_path_argument(parser)
    parser.add_argument("--limit", type=int, help="use the first N cases of each task")
    parser.add_argument(
        "--offline", action="store_true", help="no network: use the cache only and count what is missing"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help=f"the SQLite cache file (default <cache>/{CACHE_FILE}, <cache> = $FLEXTAPE_CACHE or "
        f"~/.cache/flextape_bench)",
    )
    parser.set_defaults(func=execute)
    return parser


def _task_cases(args: argparse.Namespace, cache_root: Path) -> tuple[list[tuple[str, str, list[EditCase]]], list[str]]:
    """(task name, its probes.gender_wikidata, cases) of each task with probe ids, and the names of the others."""
    from flextape_bench.tasks import TaskIndex, load_cases

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be a positive integer, got {args.limit}")
    index = TaskIndex(list(args.include_path))
    names = index.expand([t.strip() for t in str(args.tasks).split(",") if t.strip()])
    loaded: list[tuple[str, str, list[EditCase]]] = []
    skipped: list[str] = []
    for name in names:
        spec = index.spec(name)
        if spec.probes is None or spec.probes.ids is None:
            skipped.append(name)
            continue
        path = resolve_dataset(name, spec.dataset, args.data_dir, cache_root, args.offline)
        for note in data_notes(spec.dataset, path):
            logger.warning(f"{name}: {note}")
        loaded.append((name, spec.probes.gender_wikidata, load_cases(spec, path, args.limit)))
    return loaded, skipped


def execute(args: argparse.Namespace, fetch: Fetch | None = None, sleep: Sleep = time.sleep) -> int:
    """Prefetch (or, offline, check) the claims of every probe QID of the tasks; print counts; 0 on success."""
    cache_root = cache_dir()
    tasks, skipped = _task_cases(args, cache_root)
    if skipped:
        print(f"skipped (no probe ids): {', '.join(skipped)}")
    qids = [p.entity_id for _, _, cases in tasks for case in cases for p in case.probes]
    distinct, invalid = distinct_qids(qids)
    print(
        f"probes: {len(qids)} in {len(tasks)} tasks, {len(distinct)} distinct QIDs"
        + (f", {invalid} distinct ids that are not QIDs" if invalid else "")
    )
    tables = load_tables(args.data_dir, cache_root, args.offline)
    with DemographicsCache(args.cache or default_cache_path(cache_root)) as cache:
        report = prefetch(distinct, cache, tables, fetch, args.offline, sleep=sleep, progress=True)
        for line in report.lines():
            print(line)
        print(f"claims of the {len(distinct)} probe QIDs ({cache.path}):")
        for prop, counts in property_coverage(distinct, cache).items():
            print(
                f"  {prop:<5} {PROPERTY_NAMES[prop]:<13} {counts['with_value']} with a value, {counts['without']} "
                f"without, {counts['missing']} missing"
            )
        for name, gender_wikidata, cases in tasks:
            _, summary = attach_labels(cases, cache, tables, ATTRIBUTES, gender_wikidata)
            print(f"{name}:")
            for line in summary.lines():
                print(f"  {line}")
    if args.offline and report.people.missing:
        logger.warning(
            "note: %s probe QIDs are not in the cache; their labels are 'unknown'. Run without --offline to fetch them",
            report.people.missing,
        )
    return 0
