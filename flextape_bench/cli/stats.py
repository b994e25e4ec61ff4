"""`flextape-bench stats`: precompute and cache the key statistics (E[k k^T]) of the editors that use them."""

from __future__ import annotations

import argparse
import time
from typing import Any, cast

from flextape_bench.cli import arguments
from flextape_bench.errors import UserError

NAME = "stats"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME, help="precompute the key statistics (E[k k^T]) an editor needs, cached on disk"
    )
    arguments.model_arguments(parser)
    parser.add_argument("--editor", default="memit")
    arguments.hparams_argument(parser, "--hparams mom2_dataset=model (offline) --hparams mom2_n_samples=1000")
    arguments.seed_argument(parser)
    parser.set_defaults(func=execute)
    return parser


def execute(args: argparse.Namespace) -> int:
    from flextape_bench.editors import EDITORS
    from flextape_bench.editors.keyed import KeyStatisticsEditor
    from flextape_bench.runner import RunOptions, build_editor, check_editor, load_adapter

    options = RunOptions(
        **arguments.model_options(args),
        editor=args.editor,
        hparams=args.hparams,
        seed=args.seed,
    )
    editor_cls, _ = check_editor(options)
    if not issubclass(editor_cls, KeyStatisticsEditor):
        users = [entry.name for entry in EDITORS.entries() if issubclass(entry.obj, KeyStatisticsEditor)]
        raise UserError(
            f"editor {args.editor!r} uses no key statistics; stats is for {', '.join(users[:-1])} and "
            f"{users[-1]} (--editor NAME)"
        )
    adapter = load_adapter(options)
    editor = cast(KeyStatisticsEditor, build_editor(options, adapter, adapter.weights_fingerprint()))
    started = time.time()
    moments = editor.statistics()
    for layer, moment in sorted(moments.items()):
        print(f"layer {layer}: E[k k^T] {tuple(moment.shape)}, trace {moment.double().trace().item():.4g}")
    print(f"{time.time() - started:.1f} s (cached under {options.cache / 'stats'})")
    return 0
