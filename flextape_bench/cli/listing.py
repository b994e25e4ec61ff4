"""`flextape-bench list models|editors|tasks|metrics`: what is registered, one row each."""

from __future__ import annotations

import argparse
from typing import Any

from flextape_bench.cli import arguments
from flextape_bench.registry import Registry

NAME = "list"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(NAME, help="list registered models, editors, tasks or metrics")
    parser.add_argument("kind", choices=["models", "editors", "tasks", "metrics"])
    arguments.include_path_argument(parser)
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.kind == "tasks":
        from flextape_bench.tasks import TaskIndex

        rows = TaskIndex(args.include_path).describe()
        print(tabulate(rows, headers=["name", "kind", "description"], tablefmt="plain"))
        return 0
    rows = [(e.name, ", ".join(e.aliases), e.description) for e in _registry(args.kind).entries()]
    print(tabulate(rows, headers=["name", "aliases", "description"], tablefmt="plain"))
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
