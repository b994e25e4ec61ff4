"""Values that know where they were written, and problems that say where: file, line and dotted key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flextape_bench.errors import UserError


@dataclass(frozen=True)
class Located:
    """A YAML value (dict of Located, list of Located, or scalar) with the file and line it was written at."""

    value: Any
    file: Path
    line: int


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a spec file, with where it was written and what to do."""

    file: Path
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class SpecFileError(UserError):
    """Every problem found in one or more spec files: one line for one problem, else a count, then one per line."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line))
        if len(self.problems) == 1:
            super().__init__(str(self.problems[0]))
            return
        files = sorted({str(p.file) for p in self.problems})
        header = f"{len(self.problems)} problems in {', '.join(files)}:"
        super().__init__("\n".join([header, *map(str, self.problems)]))


def as_located(value: Any, file: Path, line: int) -> Located:
    """A value not read from a YAML file (e.g. typed in a flag) as Located throughout, every part at `file`, `line`."""
    if isinstance(value, dict):
        value = {key: as_located(item, file, line) for key, item in value.items()}
    elif isinstance(value, list):
        value = [as_located(item, file, line) for item in value]
    return Located(value, file, line)


class Problems(list[Problem]):
    """Problems found so far; `include_failed` when an include could not be merged (its keys will be missing)."""

    include_failed = False

    def add(self, node: Located, key: str, message: str) -> None:
        self.append(Problem(node.file, node.line, key or "(top level)", message))


def describe_value(value: Any) -> str:
    """How a YAML value reads in an error message ("the string 'x'", "a list", ...); never more than one line."""
    if isinstance(value, Located):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"the {type(value).__name__} {value!r}"
