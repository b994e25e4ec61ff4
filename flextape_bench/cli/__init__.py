"""The `flextape-bench` command line: one module per command, each adding its own parser, registered in COMMANDS
(adding a command: a module with NAME, `add_parser` and its function, and one entry there)."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from flextape_bench import logs
from flextape_bench.cli import agreement, demographics, judge, leaderboard, listing, run, stats, train_mend, validate
from flextape_bench.cli.arguments import Parser, canonical_argv, verbosity_argument
from flextape_bench.errors import UserError


class Command(Protocol):
    """A command module: its NAME (and optional ALIASES), and `add_parser`, which adds its parser to the subcommands
    with `func` (the command, `func(args) -> exit code`) as a default."""

    NAME: str

    def add_parser(self, subparsers: Any) -> argparse.ArgumentParser: ...


# The commands, in the order `--help` lists them; the first is the default.
COMMANDS: tuple[Command, ...] = (run, listing, stats, train_mend, demographics, agreement, leaderboard, judge, validate)


class TopParser(Parser):
    """The `flextape-bench` parser, whose help also shows the flags of the default command (run), as
    lm-evaluation-harness's top-level help shows its run flags."""

    default_command: argparse.ArgumentParser | None = None

    def format_help(self) -> str:
        commands = super().format_help()
        if self.default_command is None:
            return commands
        return f"{commands}\n{self.default_command.prog} (the default command; `run` may be left out):\n\n" + (
            self.default_command.format_help()
        )


def build_parser() -> TopParser:
    parser = TopParser(
        prog="flextape-bench",
        description="Command line: `flextape-bench [run] --model M --editor E --tasks T`, and the commands below.",
    )
    subparsers = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        sub = command.add_parser(subparsers)
        verbosity_argument(sub)
        parser.default_command = parser.default_command or sub
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = canonical_argv(list(sys.argv[1:] if argv is None else argv))
    if not argv:  # a bare command explains itself rather than starting a run of every task
        build_parser().print_help()
        return 0
    names = [name for command in COMMANDS for name in (command.NAME, *getattr(command, "ALIASES", ()))]
    if argv[0] not in names and argv[0] not in ("-h", "--help"):
        argv.insert(0, COMMANDS[0].NAME)  # `flextape-bench --model ... --editor ...` runs
    try:
        args = build_parser().parse_args(argv, argparse.Namespace(argv=argv))  # argv: for --num-processes
        logs.set_verbosity(args.verbosity)
        return args.func(args)
    except UserError as exc:
        print(f"flextape-bench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"flextape-bench: error: no space left on the device while writing {exc.filename or 'a file'}; free "
            "some space and run the same command again: it goes on where it stopped",
            file=sys.stderr,
        )
        return 2
