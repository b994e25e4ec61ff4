"""Command line: `flextape-bench [run] --model M --editor E --tasks T`, and the commands `list`, `validate`, `stats`,
`train-mend`, `demographics`, `agreement`, `judge` and `leaderboard`."""
from __future__ import annotations

import argparse
import errno
import sys
import time
from pathlib import Path
from typing import Sequence

from flextape_bench import demographics
from flextape_bench.errors import UserError
from flextape_bench.leaderboard import cli as leaderboard
from flextape_bench.metrics import agreement

COMMANDS = ("run", "list", "validate", "stats", "train-mend", "demographics", "agreement", "judge", "leaderboard")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors (bad flag value, missing argument) are one UserError line, like every other
    mistake in what was typed; subcommand parsers are of this class too."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _batch_tokens(value: str) -> int | str:
    """`--batch-tokens`: auto or an integer (its range is checked with the other counts)."""
    from flextape_bench.memory import AUTO

    if value == AUTO:
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {value!r}: give {AUTO} or a positive integer") from None


def _seed(value: str) -> int:
    """`--seed`: a whole number that every seeded generator takes (numpy's are 32-bit; torch's take 64 bits, and
    each chunk i of a run is seeded with seed + i)."""
    most = 2**32 - 1
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if not 0 <= seed <= most:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 0 to {most} (2**32 - 1, what torch "
                                         "and numpy seed with)")
    return seed


def _tasks(value: str) -> list[str]:
    """`--tasks`: comma-separated task and group names, at least one (checked against the known ones later)."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{value!r} names no task; give comma-separated task or group names, e.g. "
                                         "seesaw_eff (`flextape-bench list tasks` lists them)")
    return names


def _samples(value: str) -> dict[str, list[int]]:
    """`--samples`: lm-eval's JSON mapping of task names to case indices, inline or in a file (types checked here,
    names and ranges once the tasks are known)."""
    import json

    path = Path(value)
    try:
        text = path.read_text() if value.lstrip()[:1] not in ("{", "") and path.is_file() else value
        samples = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"not a JSON object or a readable JSON file ({type(exc).__name__}); write "
                                         "e.g. '{\"seesaw_cf_P19_P101\": [100, 101, 102]}'") from None
    if not isinstance(samples, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(type(i) is int for i in v) for k, v in samples.items()):
        raise argparse.ArgumentTypeError("must map each task name to a list of case indices (integers), e.g. "
                                         "'{\"seesaw_cf_P19_P101\": [100, 101, 102]}'")
    return samples


def _placement_arguments(parser: argparse.ArgumentParser) -> None:
    """`--max-memory` and `--offload-folder`: how `--device auto` places the model (README: Models on several
    devices)."""
    parser.add_argument("--max-memory", metavar="DEVICE=SIZE,...",
                        help="with --device auto: the most each device holds, e.g. 0=20GiB,1=20GiB,cpu=60GiB; devices "
                             "left out get nothing, and what does not fit is offloaded to disk")
    parser.add_argument("--offload-folder", type=Path, metavar="DIR",
                        help="with --device auto: where weights offloaded to disk are written (weights already in a "
                             "safetensors checkpoint are read from it)")


def _run_parser(parser: argparse.ArgumentParser) -> None:
    from flextape_bench.memory import AUTO, MAX_BATCH_TOKENS
    from flextape_bench.models import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"registered name or alias (see `list models`), Hub id or local directory (default {DEFAULT_MODEL})")
    parser.add_argument("--editor", default="none", help="editor name (see `list editors`; default none)")
    parser.add_argument("--tasks", type=_tasks, default="all",
                        help="comma-separated task and group names (see `list tasks`)")
    parser.add_argument("--limit", type=int, help="use the first N cases of each task")
    parser.add_argument("--samples", type=_samples, metavar="JSON|FILE",
                        help="use only these cases (0-based positions in each task's data file), as lm-eval's "
                             "--samples: a JSON object or file, e.g. '{\"seesaw_cf_P19_P101\": [100, 101]}'; tasks "
                             "it does not name use all their cases")
    parser.add_argument("--num-edits", type=int,
                        help="edits applied together in one chunk (default: the whole task in one batch; 1 = one at a time)")
    parser.add_argument("--sequential", action="store_true",
                        help="apply the chunks one after another, keeping earlier edits (default: each chunk on the "
                             "unedited model)")
    parser.add_argument("--hparams", action="append", default=[], metavar="KEY=VALUE",
                        help="override an editor hyperparameter (repeatable), e.g. --hparams layers=[4,5]")
    parser.add_argument("--seed", type=_seed, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                        help="auto spreads a model that does not fit over the available devices (accelerate)")
    _placement_arguments(parser)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--data-dir", type=Path, help="directory with the task data files (or set FLEXTAPE_DATA_DIR)")
    parser.add_argument("--output", type=Path, default=Path("results"), help="results root (default ./results)")
    parser.add_argument("--include-path", type=Path, action="append", default=[],
                        help="extra directory of task YAML files (repeatable)")
    parser.add_argument("--batch-tokens", type=_batch_tokens, default=AUTO,
                        help=f"padded tokens per scoring and generation batch, or {AUTO} (default): what fits the "
                             "free memory of the model's device, halved after running out of memory")
    parser.add_argument("--max-batch-tokens", type=int, default=MAX_BATCH_TOKENS,
                        help=f"the most --batch-tokens {AUTO} picks (default {MAX_BATCH_TOKENS})")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="always start a new run directory instead of resuming an unfinished identical run")
    parser.add_argument("--lexicon", type=Path, action="append", default=[], metavar="FILE",
                        help="flaw lexicon YAML applied over each long_form task's lexicon (repeatable; see "
                             "flextape_bench/data/flaw_lexicon.yaml)")
    parser.add_argument("--num-processes", type=int, metavar="N",
                        help="run over N local processes (each loads the model; they share the scoring, and the "
                             "chunks of --num-edits); under accelerate launch or torchrun leave it out")


def _cmd_run(args: argparse.Namespace) -> int:
    from flextape_bench import distributed

    if distributed.launches(args.num_processes):
        return distributed.launch(args.num_processes, args.argv)
    from flextape_bench.runner import RunOptions, run
    from flextape_bench.tables import group_tables, markdown_table, summary_rows

    options = RunOptions(
        model=args.model, editor=args.editor, tasks=args.tasks,
        limit=args.limit, samples=args.samples, num_edits=args.num_edits, sequential=args.sequential, hparams=args.hparams, seed=args.seed, device=args.device,
        max_memory=args.max_memory, offload_folder=args.offload_folder, dtype=args.dtype, data_dir=args.data_dir,
        output=args.output, include_paths=args.include_path,
        batch_tokens=args.batch_tokens, max_batch_tokens=args.max_batch_tokens, resume=args.resume,
        lexicons=args.lexicon,
    )

    def lead(workers: distributed.Workers | None) -> int:
        run_dir, summary = run(options, workers=workers)
        print(markdown_table(summary_rows(summary)))
        groups = group_tables(summary)
        if groups:
            print(f"\n{groups}")
        print(f"\nresults: {run_dir.path}")
        return 0

    return distributed.run_command(options, args.num_processes, lead)


def _cmd_stats(args: argparse.Namespace) -> int:
    import time

    from flextape_bench import models
    from flextape_bench.editors import EDITORS
    from flextape_bench.runner import RunOptions, build_editor, check_editor

    options = RunOptions(model=args.model, editor=args.editor, hparams=args.hparams, seed=args.seed,
                         device=args.device, max_memory=args.max_memory, offload_folder=args.offload_folder,
                         dtype=args.dtype)
    editor_cls, _ = check_editor(options)
    if not hasattr(editor_cls, "statistics"):
        users = [entry.name for entry in EDITORS.entries() if hasattr(entry.obj, "statistics")]
        raise UserError(f"editor {args.editor!r} uses no key statistics; stats is for {', '.join(users[:-1])} and "
                        f"{users[-1]} (--editor NAME)")
    adapter = models.load(options.model, options.device, options.dtype, options.max_memory, options.offload_folder)
    editor = build_editor(options, adapter, adapter.weights_fingerprint())
    started = time.time()
    moments = editor.statistics()
    for layer, moment in sorted(moments.items()):
        print(f"layer {layer}: E[k k^T] {tuple(moment.shape)}, trace {moment.double().trace().item():.4g}")
    print(f"{time.time() - started:.1f} s (cached under {options.cache / 'stats'})")
    return 0


def _cmd_train_mend(args: argparse.Namespace) -> int:
    from flextape_bench import models
    from flextape_bench.editors import load_hparams
    from flextape_bench.editors.mend import MENDHparams, default_checkpoint
    from flextape_bench.editors.mend_train import split_requests, train_mend
    from flextape_bench.runner import RunOptions, check_editor, prepare_tasks

    if args.holdout < 0:
        raise UserError(f"--holdout must be 0 or more, got {args.holdout}")
    options = RunOptions(model=args.model, editor="mend", tasks=args.tasks, hparams=args.hparams,
                         data_dir=args.data_dir, include_paths=args.include_path, seed=args.seed, device=args.device,
                         max_memory=args.max_memory, offload_folder=args.offload_folder, dtype=args.dtype)
    _, overrides = check_editor(options)
    tasks = prepare_tasks(options)
    adapter = models.load(options.model, options.device, options.dtype, options.max_memory, options.offload_folder)
    hparams = load_hparams("mend", MENDHparams, adapter.layout.family, overrides)
    split = split_requests({t.spec.task: t.cases for t in tasks}, args.holdout, hparams.val_size, args.seed)
    weights = adapter.weights_fingerprint()
    path = args.output or default_checkpoint(options.cache, weights)
    print(f"training MEND on {len(split.train)} edits ({len(split.val)} held back for validation, "
          f"{split.excluded} excluded as held-out subjects) for {hparams.steps} steps", file=sys.stderr)
    started = time.time()
    record = train_mend(adapter, hparams, split, weights, options.cache, args.seed, path)
    print(f"validation efficacy (p_new > p_true, one edit at a time): {record['val_efficacy_pre']:.2f} before, "
          f"{record['val_efficacy_post']:.2f} after; {time.time() - started:.0f} s")
    print(f"checkpoint: {path}")
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    from flextape_bench.judges import judge_kind, judge_run, long_form_tasks, make_judge
    from flextape_bench.tables import markdown_table

    judge_kind(args.judge, args.base_url)  # flags first: they need no file
    if not (args.run_dir / "summary.json").exists():
        raise UserError(f"{args.run_dir} is not a finished run directory (no summary.json); give "
                        "results/<model>/<editor>/run_NNN")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be a positive integer, got {args.limit}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    long_form_tasks(args.run_dir, tasks)  # the run's files and --tasks checked before a judge model loads
    judge = make_judge(args.judge, base_url=args.base_url, api_key_env=args.api_key_env, device=args.device,
                       dtype=args.dtype, max_new_tokens=args.max_new_tokens)
    result = judge_run(args.run_dir, judge, tasks, args.limit)
    rows = [{"task": task, "category": category, "texts": r["n"], "flagged pre": r["pre"], "flagged post": r["post"],
             "change": r["change"], "introduced": r["introduced"], "unparseable pre/post":
             f"{values['unparseable']['pre']}/{values['unparseable']['post']}"}
            for task, values in result["tasks"].items() for category, r in values["flaws"].items()]
    print(markdown_table(rows))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.kind == "tasks":
        from flextape_bench.tasks import TaskIndex

        rows = TaskIndex(args.include_path).describe()
        print(tabulate(rows, headers=["name", "kind", "description"], tablefmt="plain"))
        return 0
    if args.kind == "models":
        from flextape_bench.models import MODELS as registry
    elif args.kind == "editors":
        from flextape_bench.editors import EDITORS as registry
    else:
        from flextape_bench.metrics import METRICS as registry
    rows = [(e.name, ", ".join(e.aliases), e.description) for e in registry.entries()]
    print(tabulate(rows, headers=["name", "aliases", "description"], tablefmt="plain"))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from flextape_bench.tasks import TaskIndex, validate_file

    index = TaskIndex(args.include_path)
    for path in args.files:
        validate_file(path, index)
        print(f"{path}: ok")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from flextape_bench.models import DEFAULT_MODEL

    parser = _Parser(prog="flextape-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    _run_parser(sub.add_parser("run", help="edit and score (the default command)"))
    listing = sub.add_parser("list", help="list registered models, editors, tasks or metrics")
    listing.add_argument("kind", choices=["models", "editors", "tasks", "metrics"])
    listing.add_argument("--include-path", type=Path, action="append", default=[])
    stats = sub.add_parser("stats", help="precompute the key statistics (E[k k^T]) an editor needs, cached on disk")
    stats.add_argument("--model", default=DEFAULT_MODEL)
    stats.add_argument("--editor", default="memit")
    stats.add_argument("--hparams", action="append", default=[], metavar="KEY=VALUE",
                       help="e.g. --hparams mom2_dataset=model (offline) --hparams mom2_n_samples=1000")
    stats.add_argument("--seed", type=_seed, default=0)
    stats.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    _placement_arguments(stats)
    stats.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    mend = sub.add_parser("train-mend", help="train MEND's editor network for a model on edits that evaluation "
                                             "does not use, and save the checkpoint the mend editor loads")
    mend.add_argument("--model", default=DEFAULT_MODEL)
    mend.add_argument("--tasks", type=_tasks, default="seesaw_eff",
                      help="tasks whose edits train it (default seesaw_eff)")
    mend.add_argument("--holdout", type=int, default=100,
                      help="leave out each task's first N cases and every edit about their subjects (default 100, "
                           "so that runs with --limit up to 100 evaluate on unseen edits)")
    mend.add_argument("--hparams", action="append", default=[], metavar="KEY=VALUE", help="e.g. --hparams steps=200")
    mend.add_argument("--output", type=Path, help="checkpoint path (default: the cache path the mend editor reads)")
    mend.add_argument("--data-dir", type=Path, help="directory with the task data files (or set FLEXTAPE_DATA_DIR)")
    mend.add_argument("--include-path", type=Path, action="append", default=[])
    mend.add_argument("--seed", type=_seed, default=0)
    mend.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    _placement_arguments(mend)
    mend.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    demographics.add_parser(sub)
    agreement.add_parser(sub)
    leaderboard.add_parser(sub)
    judge = sub.add_parser("judge", help="score a finished run's long-form texts on the flaw categories with a judge "
                                         "model (local Hugging Face model or OpenAI-compatible endpoint)")
    judge.add_argument("run_dir", type=Path, help="results/<model>/<editor>/run_NNN of a run with long_form tasks")
    judge.add_argument("--judge", required=True, metavar="hf:MODEL|openai:MODEL",
                       help="hf:NAME (registered model, Hub id or local directory) or openai:MODEL (with --base-url)")
    judge.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    judge.add_argument("--api-key-env", default="OPENAI_API_KEY",
                       help="environment variable holding the endpoint's API key (default OPENAI_API_KEY; never "
                            "written to results)")
    judge.add_argument("--tasks", help="comma-separated tasks of the run (default: every long-form task)")
    judge.add_argument("--limit", type=int, help="judge the first N cases of each task")
    judge.add_argument("--max-new-tokens", type=int, default=200, help="longest judge answer in tokens")
    judge.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    judge.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    validate = sub.add_parser("validate", help="check task YAML files and report every problem with file, key and line")
    validate.add_argument("files", type=Path, nargs="+")
    validate.add_argument("--include-path", type=Path, action="append", default=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")  # `flextape-bench --model ... --editor ...` runs
    handlers = {"run": _cmd_run, "list": _cmd_list, "validate": _cmd_validate, "stats": _cmd_stats,
                "train-mend": _cmd_train_mend, "demographics": demographics.run, "agreement": agreement.run,
                "judge": _cmd_judge, "leaderboard": leaderboard.run}
    try:
        args = build_parser().parse_args(argv, argparse.Namespace(argv=argv))  # argv: for --num-processes
        return handlers[args.command](args)
    except UserError as exc:
        print(f"flextape-bench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"flextape-bench: error: no space left on the device while writing {exc.filename or 'a file'}; free "
              "some space and run the same command again: it goes on where it stopped", file=sys.stderr)
        return 2
