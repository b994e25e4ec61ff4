"""Load task and group YAML files into specs, reporting every problem of a file with its file, key and line.

Files are read through `flextape_bench.specfile`: every value keeps the file and line where it was written, through
`include` merging (an error in an included base points into the base); includes may only name files in the
including spec's folder tree, the --include-path folders and the packaged specs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flextape_bench.errors import UserError
from flextape_bench.specfile import INVALID, Converter, Located, Problem, Problems, SpecFileError, load_merged
from flextape_bench.specfile import include_roots as _include_roots
from flextape_bench.tasks.spec import GroupSpec, TaskSpec

PACKAGE_DIR = Path(__file__).resolve().parents[1]
EMPTY = "write a `task:` or `group:` mapping"
TaskSpecError = SpecFileError  # every problem of one or more spec files


def packaged_tasks_dir() -> Path:
    """The packaged specs: `flextape_bench/tasks_yaml` when installed as package data, else `tasks_yaml/` of the
    source checkout (next to the `flextape_bench` folder; also what an editable install sees)."""
    for candidate in (PACKAGE_DIR / "tasks_yaml", PACKAGE_DIR.parent / "tasks_yaml"):
        if candidate.is_dir():
            return candidate
    raise UserError(f"the packaged task folder tasks_yaml/ is missing next to {PACKAGE_DIR}; reinstall flextape-bench")


def include_roots(path: Path, include_path: Sequence[Path] = ()) -> tuple[Path, ...]:
    """The folders (symlinks resolved) whose files the includes of spec file `path` may name: its own folder, the
    `include_path` folders (--include-path) and the packaged specs."""
    return _include_roots(path, (*include_path, packaged_tasks_dir()))


def _load_located(path: Path, include_path: Sequence[Path], problems: Problems) -> Located | None:
    """The resolved spec file `path` include-merged, or None (problems recorded)."""
    return load_merged(path, include_roots(path, include_path), problems, EMPTY)


def spec_kind(root: Located) -> type[TaskSpec] | type[GroupSpec] | None:
    """TaskSpec for a mapping with `task:`, GroupSpec for one with `group:`, None when unclear."""
    keys = {"task", "group"} & set(root.value)
    return None if len(keys) != 1 else (TaskSpec if "task" in keys else GroupSpec)


def _convert_file(path: Path, base: bool, include_path: Sequence[Path]) -> TaskSpec | GroupSpec | None:
    """Parse, merge and convert one file, raising TaskSpecError with every problem found on the way.

    Missing keys are reported only for a complete spec (`base` False) whose includes all merged, so that a broken
    include is not echoed as a list of missing keys. Returns None only for an incomplete base.
    """
    problems = Problems()
    include_path = tuple(map(Path, include_path))
    root = _load_located(path, include_path, problems)
    if root is None:
        raise TaskSpecError(problems)
    kind = spec_kind(root)
    if kind is None and not base:
        problems.add(root, "", "a spec file needs exactly one of `task: NAME` or `group: NAME`")
        raise TaskSpecError(problems)
    converter = Converter(problems, require=not base and not problems.include_failed)
    spec = converter.spec_class(root, kind or TaskSpec, "", extra={"source": path, "include_path": include_path})
    if problems:
        raise TaskSpecError(problems)
    return None if spec is INVALID else spec


def load_spec(path: Path, include_path: Sequence[Path] = ()) -> TaskSpec | GroupSpec:
    """A task or group spec from one YAML file, its includes confined to `include_roots`; raises TaskSpecError
    listing every problem in it."""
    spec = _convert_file(Path(path).resolve(), False, include_path)
    assert spec is not None  # only an incomplete base converts to None
    return spec


def load_task(path: Path, include_path: Sequence[Path] = ()) -> TaskSpec:
    """A task spec from one YAML file (see `load_spec`); raises TaskSpecError (also when the file defines a group)."""
    spec = load_spec(path, include_path)
    if not isinstance(spec, TaskSpec):
        raise TaskSpecError([Problem(spec.source, 1, "group", "this file defines a group; a task file needs `task:`")])
    return spec


def check_base(path: Path, include_path: Sequence[Path] = ()) -> None:
    """Validate an include-only base (`_*.yaml`): keys, types and values, not completeness; raises TaskSpecError."""
    _convert_file(Path(path).resolve(), True, include_path)


def locate(path: Path, keys: Sequence[str | int], include_path: Sequence[Path] = ()) -> tuple[Path, int]:
    """File and line where the value at `keys` (mapping keys and list indices) of a spec file was written."""
    problems = Problems()
    node = _load_located(Path(path).resolve(), include_path, problems)
    if problems or node is None:
        raise TaskSpecError(problems)
    for key in keys:
        node = node.value[key]
    return node.file, node.line
