"""The `flextape_bench` logger. Modules log through `logging.getLogger(__name__)`, its children; its handler writes
each message as one plain line to stderr (the stderr of the moment, so that redirections and tests see it). The level
is INFO until the command line's `--verbosity` sets another."""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("flextape_bench")
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
DEFAULT_LEVEL = "INFO"


class StderrHandler(logging.Handler):
    """Writes a record's message and a newline to `sys.stderr` as it is when the record comes."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{self.format(record)}\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def install() -> None:
    """Give the `flextape_bench` logger its stderr handler and the default level, once."""
    if not any(isinstance(handler, StderrHandler) for handler in LOGGER.handlers):
        LOGGER.addHandler(StderrHandler())
        LOGGER.setLevel(DEFAULT_LEVEL)


def set_verbosity(level: str) -> None:
    """Show the messages of `level` (one of LEVELS) and above."""
    LOGGER.setLevel(level)
