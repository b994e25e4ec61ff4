"""`flextape-bench [run]`: edit, score and write the results of the tasks (the default command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flextape_bench.cli import arguments, listing

NAME = "run"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from flextape_bench.memory import AUTO, MAX_BATCH_TOKENS

    parser = subparsers.add_parser(NAME, help="edit and score (the default command)")
    arguments.model_arguments(parser, scoring=True)
    parser.add_argument("--editor", default="none", help="editor name (see `list editors`; default none)")
    parser.add_argument(
        "--tasks",
        type=arguments.tasks,
        default="all",
        help="comma-separated task and group names (see `list tasks`), globs over them (seesaw_cf_P19_*) and task "
        "YAML files; `list`, `list_tasks` or `list_groups` lists them instead of running (docs/tasks.md)",
    )
    parser.add_argument("--limit", type=int, help="use the first N cases of each task")
    parser.add_argument(
        "--samples",
        type=arguments.samples,
        metavar="JSON|FILE",
        help="use only these cases (0-based positions in each task's data file), as lm-eval's "
        "--samples: a JSON object or file, e.g. '{\"seesaw_cf_P19_P101\": [100, 101]}'; tasks "
        "it does not name use all their cases",
    )
    parser.add_argument(
        "--num-edits",
        type=arguments.num_edits,
        default=1,
        metavar="K|all",
        help="edits applied together in one chunk, each chunk on the unedited model: 1 (default: each case edited "
        "alone, as the reference's eval_pair.py), K, or all (the whole task in one batch)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="apply the chunks one after another, keeping earlier edits (default: each chunk on the unedited model)",
    )
    arguments.hparams_argument(parser, "--hparams layers=[4,5]")
    arguments.seed_argument(parser)
    arguments.data_dir_argument(parser)
    parser.add_argument("--output", type=Path, default=Path("results"), help="results root (default ./results)")
    arguments.include_path_argument(parser)
    parser.add_argument(
        "--batch-tokens",
        type=arguments.batch_tokens,
        default=AUTO,
        help=f"padded tokens per scoring and generation batch, or {AUTO} (default): what fits the "
        "free memory of the model's device, halved after running out of memory",
    )
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=MAX_BATCH_TOKENS,
        help=f"the most --batch-tokens {AUTO} picks (default {MAX_BATCH_TOKENS})",
    )
    parser.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="always start a new run directory instead of resuming an unfinished identical run",
    )
    parser.add_argument(
        "--lexicon",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="flaw lexicon YAML applied over each long-form task's lexicon (repeatable; see "
        "flextape_bench/data/flaw_lexicon.yaml)",
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        metavar="N",
        help="run over N local processes (each loads the model; they share the scoring, and the "
        "chunks of --num-edits); under accelerate launch or torchrun leave it out",
    )
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    """Run (over `--num-processes` processes when asked), print the summary tables and the run directory."""
    from flextape_bench import distributed

    kinds = listing.listed_kinds(args.tasks)
    if kinds is not None:  # lm-eval's `--tasks list`
        return listing.print_specs(args.include_path, kinds)
    if distributed.launches(args.num_processes):
        return distributed.launch(args.num_processes, args.argv)
    from flextape_bench.runner import RunOptions, run, run_command
    from flextape_bench.tables import group_tables, markdown_table, summary_rows, warnings_text

    options = RunOptions(
        **arguments.model_options(args),
        editor=args.editor,
        tasks=args.tasks,
        limit=args.limit,
        samples=args.samples,
        num_edits=args.num_edits,
        sequential=args.sequential,
        hparams=args.hparams,
        seed=args.seed,
        data_dir=args.data_dir,
        output=args.output,
        include_paths=args.include_path,
        batch_tokens=args.batch_tokens,
        max_batch_tokens=args.max_batch_tokens,
        resume=args.resume,
        lexicons=args.lexicon,
    )

    def lead(workers: distributed.Workers | None) -> int:
        run_dir, summary = run(options, workers=workers)
        print(markdown_table(summary_rows(summary)))
        for part in (group_tables(summary), warnings_text(summary)):
            if part:
                print(f"\n{part}")
        print(f"\nresults: {run_dir.path}")
        return 0

    return run_command(options, args.num_processes, lead)
