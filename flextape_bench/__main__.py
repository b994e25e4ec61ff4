"""The `flextape-bench` command and `python -m flextape_bench`. SIGTERM and Ctrl-C (SIGINT) end it at any moment,
even while the heavy modules are still being imported, with one line and exit code 128 + the signal's number; every
file is written atomically, so what was finished is kept and the same command goes on from there."""

from __future__ import annotations

import os
import signal
import sys


class Stopped(Exception):
    """SIGTERM, raised where the process is, so that it unwinds as after Ctrl-C (edited weights restored)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def entry() -> int:
    signal.signal(signal.SIGTERM, _stop)
    try:
        from flextape_bench.cli import main

        return main()
    except (KeyboardInterrupt, Stopped) as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print(
            _line_start(),
            f"flextape-bench: stopped by {signal.Signals(signum).name}; what was finished is kept: run the same "
            "command again to go on where it stopped",
            sep="",
            file=sys.stderr,
        )
        _forget_unhandled_interrupt()
        return 128 + signum
    except BrokenPipeError:  # the reader of stdout went away (`flextape-bench list tasks | head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _line_start() -> str:
    """A newline where progress bars may have been drawn: a bar closed by the stop (in this process or in another of
    a `--num-processes` run) can leave the cursor mid-line, and the stop line must start a line of its own."""
    progress = sys.modules.get("flextape_bench.progress")  # not loaded: no bar was drawn
    return "\n" if progress is not None and progress.bars_shown() else ""


def _forget_unhandled_interrupt() -> None:
    """CPython marks a KeyboardInterrupt that escapes code run from a string (`exec`, as dataclasses and namedtuple do
    while modules import) as unhandled even when it is caught later, and then ends the process by SIGINT instead of
    with our exit code. Running a string to its end clears that mark."""
    exec("pass", {})


if __name__ == "__main__":
    raise SystemExit(entry())
