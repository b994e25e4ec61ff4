"""`flextape-bench validate FILE...`: check task YAML files, every problem with file, key and line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flextape_bench.cli import arguments

NAME = "validate"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(NAME, help="check task YAML files and report every problem with file, key and line")
    parser.add_argument("files", type=Path, nargs="+")
    arguments.include_path_argument(parser)
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    from flextape_bench.tasks import TaskIndex, validate_file

    index = TaskIndex(args.include_path)
    for path in args.files:
        validate_file(path, index)
        print(f"{path}: ok")
    return 0
