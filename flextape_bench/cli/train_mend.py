"""`flextape-bench train-mend`: train MEND's editor network on edits that evaluation does not use, and save the
checkpoint the mend editor loads."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from flextape_bench.cli import arguments
from flextape_bench.errors import UserError

NAME = "train-mend"
logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="train MEND's editor network for a model on edits that evaluation "
        "does not use, and save the checkpoint the mend editor loads",
    )
    arguments.model_arguments(parser)
    parser.add_argument(
        "--tasks", type=arguments.tasks, default="seesaw_eff", help="tasks whose edits train it (default seesaw_eff)"
    )
    parser.add_argument(
        "--holdout",
        type=int,
        default=100,
        help="leave out each task's first N cases and every edit about their subjects (default 100, "
        "so that runs with --limit up to 100 evaluate on unseen edits)",
    )
    arguments.hparams_argument(parser, "--hparams steps=200")
    parser.add_argument("--output", type=Path, help="checkpoint path (default: the cache path the mend editor reads)")
    arguments.data_dir_argument(parser)
    arguments.include_path_argument(parser)
    arguments.seed_argument(parser)
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    from flextape_bench.editors import load_hparams
    from flextape_bench.editors.mend import MENDHparams, default_checkpoint
    from flextape_bench.editors.mend_train import split_requests, train_mend
    from flextape_bench.runner import RunOptions, check_editor, load_adapter, prepare_tasks

    if args.holdout < 0:
        raise UserError(f"--holdout must be 0 or more, got {args.holdout}")
    options = RunOptions(
        **arguments.model_options(args),
        editor="mend",
        tasks=args.tasks,
        hparams=args.hparams,
        data_dir=args.data_dir,
        include_paths=args.include_path,
        seed=args.seed,
    )
    _, overrides = check_editor(options)
    tasks = prepare_tasks(options)
    adapter = load_adapter(options)
    hparams = load_hparams("mend", MENDHparams, adapter.layout.family, overrides)
    split = split_requests({t.spec.task: t.cases for t in tasks}, args.holdout, hparams.val_size, args.seed)
    weights = adapter.weights_fingerprint()
    path = args.output or default_checkpoint(options.cache, weights)
    logger.info(
        "training MEND on %s edits (%s held back for validation, %s excluded as held-out subjects) for %s steps",
        len(split.train),
        len(split.val),
        split.excluded,
        hparams.steps,
    )
    started = time.time()
    record = train_mend(adapter, hparams, split, weights, options.cache, args.seed, path)
    print(
        f"validation efficacy (p_new > p_true, one edit at a time): {record['val_efficacy_pre']:.2f} before, "
        f"{record['val_efficacy_post']:.2f} after; {time.time() - started:.0f} s"
    )
    print(f"checkpoint: {path}")
    return 0
