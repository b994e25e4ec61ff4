"""Load task and group YAML files into specs, reporting every problem of a file with its file, key and line.

Files are read through `flextape_bench.specfile`: every value keeps the file and line where it was written, through
`include` merging (an error in an included base points into the base). An include is looked up next to the
including file, then in the --include-path folders, then in the packaged specs (by file name, or by a packaged
task's name), and may only name files in the including spec's folder tree, those folders and the packaged specs.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from pathlib import Path

from flextape_bench.errors import UserError
from flextape_bench.specfile import INVALID, Converter, Located, Problem, Problems, SpecFileError, load_merged
from flextape_bench.specfile.include import SUFFIXES, IncludeSearch
from flextape_bench.tasks.spec import GroupSpec, TaskSpec

PACKAGED_SPECS = "flextape_bench.tasks_yaml"  # the packaged specs as a resource package (tasks_yaml/ in the source)
EMPTY = "write a `task:` or `group:` mapping"
TaskSpecError = SpecFileError  # every problem of one or more spec files


@functools.cache
def packaged_tasks_dir() -> Path:
    """The folder of the packaged specs: the resource package `flextape_bench.tasks_yaml` of an installed (or
    editable) flextape-bench. Only a source checkout used without installing it (its root on sys.path) has no
    such package; its specs are then `tasks_yaml/` beside `flextape_bench/`."""
    try:
        folder = importlib.resources.files(PACKAGED_SPECS)
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[2] / "tasks_yaml"
    if not (isinstance(folder, Path) and folder.is_dir()):
        raise UserError(
            f"the packaged task specs ({PACKAGED_SPECS}) are not a folder at {folder}; reinstall flextape-bench"
        )
    return folder.resolve()


def packaged_task_files() -> dict[str, Path]:
    """Each packaged task's file by the task's name (a packaged task is defined in `<name>.yaml`)."""
    folder = packaged_tasks_dir()
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES and not p.name.startswith("_")}


def include_search(path: Path, include_path: Sequence[Path] = ()) -> IncludeSearch:
    """Where the includes of spec file `path` are looked up, in order: next to the including file, the
    `include_path` folders (--include-path), the packaged specs, then the packaged tasks by name; only files in
    `path`'s folder tree and those folders are read."""
    return IncludeSearch.of(path, (*include_path, packaged_tasks_dir()), packaged_task_files())


def include_roots(path: Path, include_path: Sequence[Path] = ()) -> tuple[Path, ...]:
    """The folders (symlinks resolved) whose files the includes of spec file `path` may name: its own folder, the
    `include_path` folders (--include-path) and the packaged specs."""
    return include_search(path, include_path).roots


def _load_located(path: Path, include_path: Sequence[Path], problems: Problems) -> Located | None:
    """The resolved spec file `path` include-merged, or None (problems recorded)."""
    return load_merged(path, include_search(path, include_path), problems, EMPTY)


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
