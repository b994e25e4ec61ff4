"""User-facing errors: raised for bad input, printed as one line by the CLI (exit code 2)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def closest(word: str, known: Sequence[str]) -> str | None:
    """The known name most like `word` (a likely typo of it), or None when none is close."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return close[0] if close else None


class UserError(Exception):
    """A problem the user can fix (bad flag, file, key or name); the message says what and how."""


class UnknownNameError(UserError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str], otherwise: str = ""):
        """`otherwise`: what else the user may give instead of a known name (appended as "; or give ...")."""
        self.kind, self.name, self.known = kind, name, known
        close = closest(name, known)
        hint = f"did you mean {close!r}? " if close else ""
        other = f"; or give {otherwise}" if otherwise else ""
        super().__init__(f"unknown {kind} {name!r}; {hint}known {kind}s: {', '.join(known)}{other}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]
