"""`flextape-bench judge RUN_DIR --judge hf:MODEL|openai:MODEL`: a judge model's flaw rates of a finished run's
long-form texts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flextape_bench.cli import arguments
from flextape_bench.errors import UserError

NAME = "judge"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="score a finished run's long-form texts on the flaw categories with a "
        "judge model (local Hugging Face model or OpenAI-compatible endpoint)",
    )
    parser.add_argument("run_dir", type=Path, help="results/<model>/<editor>/run_NNN of a run with long-form tasks")
    parser.add_argument(
        "--judge",
        required=True,
        metavar="hf:MODEL|openai:MODEL",
        help="hf:NAME (registered model, Hub id or local directory) or openai:MODEL (with --base-url)",
    )
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the endpoint's API key (default OPENAI_API_KEY; never written to results)",
    )
    parser.add_argument("--tasks", help="comma-separated tasks of the run (default: every long-form task)")
    parser.add_argument("--limit", type=int, help="judge the first N cases of each task")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="longest judge answer in tokens")
    arguments.model_arguments(parser, model=False, placement=False)  # the model is --judge's
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    from flextape_bench.judges import judge_kind, judge_run, long_form_tasks, make_judge
    from flextape_bench.tables import markdown_table

    judge_kind(args.judge, args.base_url)  # flags first: they need no file
    if not (args.run_dir / "summary.json").exists():
        raise UserError(
            f"{args.run_dir} is not a finished run directory (no summary.json); give results/<model>/<editor>/run_NNN"
        )
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be a positive integer, got {args.limit}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    long_form_tasks(args.run_dir, tasks)  # the run's files and --tasks checked before a judge model loads
    judge = make_judge(
        args.judge,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        device=args.device,
        dtype=args.dtype,
        max_new_tokens=args.max_new_tokens,
    )
    result = judge_run(args.run_dir, judge, tasks, args.limit)
    rows = [
        {
            "task": task,
            "category": category,
            "texts": r["n"],
            "flagged pre": r["pre"],
            "flagged post": r["post"],
            "change": r["change"],
            "introduced": r["introduced"],
            "unparseable pre/post": f"{values['unparseable']['pre']}/{values['unparseable']['post']}",
        }
        for task, values in result["tasks"].items()
        for category, r in values["flaws"].items()
    ]
    print(markdown_table(rows))
    return 0
