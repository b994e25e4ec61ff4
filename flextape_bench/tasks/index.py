"""Find task and group specs in the packaged specs, any `--include-path` folders and spec files given by path, and
select tasks by name, group, glob or file (`--tasks`).

Building the index parses and validates every spec file but reads no data, so listing tasks stays cheap.
Files whose name starts with `_` are include-only bases, not tasks.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence
from pathlib import Path

from flextape_bench.errors import UnknownNameError, UserError, closest
from flextape_bench.specfile.include import SUFFIXES
from flextape_bench.tasks.loader import Problem, TaskSpecError, check_base, load_spec, locate, packaged_tasks_dir
from flextape_bench.tasks.spec import GroupSpec, TaskSpec

GLOB_CHARACTERS = "*?["


def spec_files(folders: Iterable[Path]) -> list[Path]:
    """Every task/group file under `folders` (recursively; a file may be named directly), `_*` bases excluded."""
    found: dict[Path, None] = {}
    for folder in map(Path, folders):
        if folder.is_file():
            found[folder.resolve()] = None
            continue
        if not folder.is_dir():
            raise UserError(f"task folder {folder} does not exist; fix --include-path")
        for path in sorted(folder.rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and not path.name.startswith("_"):
                found[path.resolve()] = None
    return list(found)


def is_spec_path(item: str) -> bool:
    """Whether a `--tasks` item names a spec file (it ends in .yaml or .yml) rather than a task, group or glob."""
    return item.endswith(SUFFIXES)


def spec_paths(selection: Sequence[str]) -> list[Path]:
    """The spec files that `selection` (`--tasks` items) names by path; UserError for one that is not a task or
    group file."""
    paths = [Path(item) for item in selection if is_spec_path(item)]
    for path in paths:
        if not path.is_file():
            raise UserError(f"--tasks {path}: no such file; fix the path (an item ending in .yaml or .yml is a file)")
        if path.name.startswith("_"):
            raise UserError(
                f"--tasks {path}: a file whose name starts with _ is an include-only base; give a file that "
                "defines a task or group"
            )
    return paths


def _member_problem(group: GroupSpec, index: int, message: str) -> Problem:
    file, line = locate(group.source, ["tasks", index], group.include_path)
    return Problem(file, line, f"tasks[{index}]", message)


class TaskIndex:
    """All task and group specs, by name."""

    def __init__(self, extra_paths: Sequence[Path] = ()):
        """The packaged specs and `extra_paths`: folders (--include-path, read recursively) and spec files (read
        alone). Each folder, and each file's folder, is an include folder of every spec read."""
        extra = [Path(path) for path in extra_paths]
        files = spec_files([packaged_tasks_dir(), *extra])
        self.include_path = tuple(dict.fromkeys(path.parent if path.is_file() else path for path in extra))
        self._tasks: dict[str, TaskSpec] = {}
        self._groups: dict[str, GroupSpec] = {}
        self._by_file: dict[Path, str] = {}
        problems: list[Problem] = []
        for path in files:
            try:
                self._add(load_spec(path, self.include_path), problems)
            except TaskSpecError as exc:
                problems.extend(exc.problems)
        if problems:
            raise TaskSpecError(problems)

    def _add(self, spec: TaskSpec | GroupSpec, problems: list[Problem]) -> None:
        name = spec.task if isinstance(spec, TaskSpec) else spec.group
        earlier = self._tasks.get(name) or self._groups.get(name)
        if earlier is not None:
            key = "task" if isinstance(spec, TaskSpec) else "group"
            problems.append(
                Problem(
                    spec.source,
                    1,
                    key,
                    f"the name {name!r} is already defined in {earlier.source}; "
                    "rename one of them or leave one folder out",
                )
            )
        elif isinstance(spec, TaskSpec):
            self._tasks[name] = spec
        else:
            self._groups[name] = spec
        self._by_file[spec.source] = name

    def names(self) -> list[str]:
        """Task names, sorted."""
        return sorted(self._tasks)

    def groups(self) -> list[str]:
        """Group names, sorted."""
        return sorted(self._groups)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, "task" or "group", description) for every task, then every group."""
        return [(name, "task", self._tasks[name].description) for name in self.names()] + [
            (name, "group", self._groups[name].description) for name in self.groups()
        ]

    def spec(self, name: str) -> TaskSpec:
        """The spec of task `name`."""
        if name in self._groups:
            raise UserError(f"{name!r} is a group, not a task; its tasks are {', '.join(self.expand([name]))}")
        if name not in self._tasks:
            raise UnknownNameError("task", name, self.names() + self.groups())
        return self._tasks[name]

    def expand(self, selection: Sequence[str]) -> list[str]:
        """Task names for `selection` (`--tasks` items): task and group names (groups expanded recursively), globs
        over them (fnmatch) and spec files of the index by path; in order, each once."""
        out: dict[str, None] = {}
        for item in selection:
            for name in self._matching(item):
                self._expand(name, (), out)
        return list(out)

    def _matching(self, item: str) -> list[str]:
        """The task and group names `item` stands for: itself, the names its glob matches, or its file's name."""
        if is_spec_path(item):
            name = self._by_file.get(Path(item).resolve())
            if name is None:
                raise UserError(
                    f"--tasks {item}: this command does not read task files by path; give its folder with "
                    "--include-path and its task's name"
                )
            return [name]
        if not any(character in item for character in GLOB_CHARACTERS):
            return [item]
        known = self.names() + self.groups()
        matched = fnmatch.filter(known, item)
        if not matched:
            stem = "".join(c for c in item if c not in GLOB_CHARACTERS + "]")
            close = difflib.get_close_matches(stem, known, n=5, cutoff=0.5)
            hint = f"close names: {', '.join(close)}" if close else "`flextape-bench list tasks` lists the names"
            raise UserError(f"--tasks {item!r} matches no task or group; {hint}")
        return matched

    def _expand(self, name: str, chain: tuple[str, ...], out: dict[str, None]) -> None:
        if name in self._tasks:
            out[name] = None
        elif name in chain:
            group = self._groups[chain[-1]]
            cycle = " -> ".join((*chain, name))
            raise TaskSpecError(
                [_member_problem(group, group.tasks.index(name), f"group cycle {cycle}; remove one of these members")]
            )
        elif name in self._groups:
            for member in self._groups[name].tasks:
                self._expand(member, (*chain, name), out)
        else:
            raise UnknownNameError("task", name, self.names() + self.groups())

    def member_problems(self, group: GroupSpec) -> list[Problem]:
        """A problem for each member of `group` that names no known task or group."""
        known = self.names() + self.groups()
        problems = []
        for i, member in enumerate(group.tasks):
            if member not in known:
                close = closest(member, known)
                hint = f"did you mean {close!r}?" if close else "run `flextape-bench list tasks` for the names"
                problems.append(_member_problem(group, i, f"unknown task or group {member!r}; {hint}"))
        return problems

    def validate_all(self) -> None:
        """Check what single files cannot: group members exist and groups do not contain themselves."""
        problems = [p for name in self.groups() for p in self.member_problems(self._groups[name])]
        if problems:
            raise TaskSpecError(problems)
        for name in self.groups():
            self.expand([name])


def validate_file(path: Path, index: TaskIndex | None = None) -> None:
    """Validate one spec file (`flextape-bench validate FILE`); raises TaskSpecError listing every problem.

    A `_*` file is checked as an include-only base (no required keys). With `index`, a group's members must name
    tasks or groups known to it.
    """
    path = Path(path)
    include_path = index.include_path if index is not None else ()
    if path.name.startswith("_"):
        check_base(path, include_path)
        return
    spec = load_spec(path, include_path)
    if isinstance(spec, GroupSpec) and index is not None:
        problems = index.member_problems(spec)
        if problems:
            raise TaskSpecError(problems)


def select_tasks(selection: Sequence[str], include_path: Sequence[Path] = ()) -> tuple[TaskIndex, list[str]]:
    """The index of the packaged specs, the `include_path` folders and the spec files `selection` names by path,
    and the task names `selection` (`--tasks` items: names, groups, globs, files) runs."""
    index = TaskIndex([*include_path, *spec_paths(selection)])
    return index, index.expand(selection)
