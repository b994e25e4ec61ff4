"""`flextape-bench list models|editors|tasks|groups|metrics`: what is registered, one row each; also
`--tasks list|list_tasks|list_groups` (lm-evaluation-harness's spellings) of the run command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flextape_bench.cli import arguments
from flextape_bench.registry import Registry

NAME = "list"
ALIASES = ["ls"]  # lm-evaluation-harness's spelling (`lm-eval ls tasks`)
SPEC_KINDS = {"tasks": ("task", "group"), "groups": ("group",)}  # what `list KIND` shows of the task index
TASK_LISTS = {"list": ("task", "group"), "list_tasks": ("task",), "list_groups": ("group",)}  # `--tasks list...`


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME, aliases=ALIASES, help="list registered models, editors, tasks, groups or metrics (also: ls)"
    )
    parser.add_argument("kind", choices=["models", "editors", "tasks", "groups", "metrics"])
    arguments.include_path_argument(parser)
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.kind in SPEC_KINDS:
        return print_specs(args.include_path, SPEC_KINDS[args.kind])
    rows = [(e.name, ", ".join(e.aliases), e.description) for e in _registry(args.kind).entries()]
    print(tabulate(rows, headers=["name", "aliases", "description"], tablefmt="plain"))
    return 0


def listed_kinds(tasks: Sequence[str]) -> tuple[str, ...] | None:
    """What `--tasks` asks to list instead of running (lm-eval's `list`, `list_tasks`, `list_groups`), or None."""
    return TASK_LISTS.get(tasks[0]) if len(tasks) == 1 else None


def print_specs(include_path: Sequence[Path], kinds: Sequence[str]) -> int:
    """Print the tasks and groups (those of `kinds`) of the packaged specs and `include_path`, one row each."""
    from tabulate import tabulate

    from flextape_bench.tasks import TaskIndex

    rows = [row for row in TaskIndex(include_path).describe() if row[1] in kinds]
    print(tabulate(rows, headers=["name", "kind", "description"], tablefmt="plain"))
    return 0


def _registry(kind: str) -> Registry[Any]:
    """The registry of models, editors or metrics (imported only when listed)."""
    if kind == "models":
        from flextape_bench.models import MODELS

        return MODELS
    if kind == "editors":
        from flextape_bench.editors import EDITORS

        return EDITORS
    from flextape_bench.metrics import METRICS

    return METRICS
