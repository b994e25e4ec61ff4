"""What the commands share in reading their arguments: the parser whose mistakes are one UserError line, the types
of values checked as they are read, and the flags several commands take alike (the model flags first)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NoReturn

from flextape_bench.errors import UserError
from flextape_bench.logs import DEFAULT_LEVEL, LEVELS

DTYPES = ["auto", "float32", "bfloat16", "float16"]


LM_EVAL_FLAGS = {"--output-path": "--output"}  # lm-evaluation-harness's names of this project's flags


def canonical_argv(argv: list[str]) -> list[str]:
    """`argv` with lm-evaluation-harness's spellings of flags accepted: underscores in a flag's name
    (`--include_path`, `--num_edits`, also as `--flag_name=value`) and its names (`--output_path` for `--output`)."""
    out = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            flag, sep, value = token.partition("=")
            flag = flag.replace("_", "-")
            token = LM_EVAL_FLAGS.get(flag, flag) + sep + value
        out.append(token)
    return out


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors (bad flag value, missing argument) are one UserError line, like every other
    mistake in what was typed; subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see `{self.prog} --help`)")


def batch_tokens(value: str) -> int | str:
    """`--batch-tokens`: auto or an integer (its range is checked with the other counts)."""
    from flextape_bench.memory import AUTO

    if value == AUTO:
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {value!r}: give {AUTO} or a positive integer") from None


def num_edits(value: str) -> int | None:
    """`--num-edits`: an integer (its range is checked with the other counts), or all: None, the whole task in one
    chunk."""
    if value == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {value!r}: give a positive integer (1 = one edit at a time) or all (the whole task at once)"
        ) from None


def seed(value: str) -> int:
    """`--seed`: a whole number that every seeded generator takes (numpy's are 32-bit; torch's take 64 bits, and
    each chunk i of a run is seeded with seed + i)."""
    most = 2**32 - 1
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= most:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a whole number from 0 to {most} (2**32 - 1, what torch and numpy seed with)"
        )
    return number


def tasks(value: str) -> list[str]:
    """`--tasks`: comma-separated task and group names, globs over them (seesaw_cf_P19_*) and task YAML files, at
    least one (checked against the known ones later), or one of lm-eval's `list` spellings."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"{value!r} names no task; give comma-separated task or group names, globs or task YAML files, e.g. "
            "seesaw_eff (`flextape-bench list tasks` lists them)"
        )
    return names


def samples(value: str) -> dict[str, list[int]]:
    """`--samples`: lm-eval's JSON mapping of task names to case indices, inline or in a file (types checked here,
    names and ranges once the tasks are known)."""
    path = Path(value)
    try:
        text = path.read_text() if value.lstrip()[:1] not in ("{", "") and path.is_file() else value
        mapping = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(
            f"not a JSON object or a readable JSON file ({type(exc).__name__}); write "
            "e.g. '{\"seesaw_cf_P19_P101\": [100, 101, 102]}'"
        ) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(type(i) is int for i in v) for k, v in mapping.items()
    ):
        raise argparse.ArgumentTypeError(
            "must map each task name to a list of case indices (integers), e.g. "
            "'{\"seesaw_cf_P19_P101\": [100, 101, 102]}'"
        )
    return mapping


def model_args(value: str) -> dict[str, Any]:
    """`--model-args k=v,...`: keyword arguments for the model's `from_pretrained`, values read as lm-eval reads
    them (keys checked against the model before it loads, `models.check_model`)."""
    from flextape_bench.models.model_args import parse_model_args

    try:
        return parse_model_args(value)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def model_arguments(
    parser: argparse.ArgumentParser, model: bool = True, placement: bool = True, scoring: bool = False
) -> None:
    """The model flags, as one group: `--model` and `--model-args` (unless the command names its model otherwise),
    `--device`, `--max-memory` and `--offload-folder` (how `--device spread` places the model, docs/models.md;
    unless the command loads without them), `--dtype`, and `--apply-chat-template` where the command scores."""
    from flextape_bench.models import DEFAULT_MODEL
    from flextape_bench.models.loading import DEVICES
    from flextape_bench.models.model_args import MODEL_ARGS

    group = parser.add_argument_group("model", "the model, and where and how it is loaded")
    if model:
        group.add_argument(
            "--model",
            default=DEFAULT_MODEL,
            help=f"registered name or alias (see `list models`), Hub id or local directory (default {DEFAULT_MODEL})",
        )
        group.add_argument(
            "--model-args",
            type=model_args,
            default={},
            metavar="KEY=VALUE,...",
            help=f"keyword arguments for the model's from_pretrained, as lm-eval's --model_args: {', '.join(MODEL_ARGS)}"
            " (a token: set HF_TOKEN instead)",
        )
    group.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="auto (default): cuda where torch sees a CUDA device, else cpu; spread: accelerate spreads the "
        "layers over the GPUs, then CPU memory, then disk",
    )
    if placement:
        group.add_argument(
            "--max-memory",
            metavar="DEVICE=SIZE,...",
            help="with --device spread: the most each device holds, e.g. 0=20GiB,1=20GiB,cpu=60GiB; "
            "devices left out get nothing, and what does not fit is offloaded to disk",
        )
        group.add_argument(
            "--offload-folder",
            type=Path,
            metavar="DIR",
            help="with --device spread: where weights offloaded to disk are written (weights already in "
            "a safetensors checkpoint are read from it)",
        )
    group.add_argument("--dtype", default="auto", choices=DTYPES)
    if scoring:
        group.add_argument(
            "--apply-chat-template",
            action="store_true",
            help="score (and generate) each prompt as a user turn of the tokenizer's chat template, the target "
            "continuing the model's turn; edits always use the plain prompt",
        )


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options the model flags of `model_arguments` give (those the command has)."""
    names = ("model", "model_args", "device", "max_memory", "offload_folder", "dtype", "apply_chat_template")
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed, default=0)


def hparams_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """`--hparams KEY=VALUE`, repeatable, with an `example` of the command's."""
    parser.add_argument(
        "--hparams",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override an editor hyperparameter (repeatable), e.g. {example}",
    )


def data_dir_argument(parser: argparse.ArgumentParser) -> None:
    from flextape_bench.tasks.data import DATA_DIR_ENV

    parser.add_argument("--data-dir", type=Path, help=f"directory with the task data files (or set {DATA_DIR_ENV})")


def include_path_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include-path",
        type=Path,
        action="append",
        default=[],
        help="extra directory of task YAML files (repeatable); an include is looked up next to its file, then "
        "in these directories, then in the packaged specs",
    )


def verbosity_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbosity",
        default=DEFAULT_LEVEL,
        choices=LEVELS,
        type=str.upper,
        help=f"the least severe diagnostics shown on stderr (default {DEFAULT_LEVEL})",
    )
