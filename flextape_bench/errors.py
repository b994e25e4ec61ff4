"""User-facing errors: raised for bad input, printed as one line by the CLI (exit code 2)."""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad flag, file, key or name); the message says what and how."""


class UnknownNameError(UserError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(known)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]
