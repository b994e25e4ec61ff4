"""Load task and group YAML files into specs, reporting every problem of a file with its file, key and line.

YAML is read with `yaml.compose`, so every value keeps the file and line where it was written, through `include`
merging: an error in an included base points into the base. Anchors and aliases are refused (a recursive alias or an
alias bomb would hang the reader), includes may only name files in the including spec's folder, the --include-path
folders and the packaged specs, and no error quotes the content of a file.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from flextape_bench.errors import UserError, closest
from flextape_bench.tasks.spec import GroupSpec, TaskSpec, yaml_fields

INCLUDE = "include"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
_INVALID = object()  # result of converting a value that has problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a spec file, with where it was written and what to do."""

    file: Path
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class TaskSpecError(UserError):
    """Every problem found in one or more spec files: one line for one problem, else a count, then one per line."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line))
        if len(self.problems) == 1:
            super().__init__(str(self.problems[0]))
            return
        files = sorted({str(p.file) for p in self.problems})
        header = f"{len(self.problems)} problems in {', '.join(files)}:"
        super().__init__("\n".join([header, *map(str, self.problems)]))


@dataclass(frozen=True)
class Located:
    """A YAML value (dict of Located, list of Located, or scalar) with the file and line it was written at."""

    value: Any
    file: Path
    line: int


class _Problems(list):
    """Problems found so far; `include_failed` when an include could not be merged (its keys will be missing)."""

    include_failed = False

    def add(self, node: Located, key: str, message: str) -> None:
        self.append(Problem(node.file, node.line, key or "(top level)", message))


# ---------------------------------------------------------------------------------------------------------------
# YAML -> Located, with includes merged


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
    folders = (Path(path).resolve().parent, *include_path, packaged_tasks_dir())
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in folders))


class _AliasError(yaml.composer.ComposerError):
    """An anchor or alias in a file read by `NoAliasLoader`."""


class NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors (&name) and aliases (*name) at the first one, before any is expanded: a
    recursive alias makes the reader recurse without end, an alias bomb ("billion laughs") takes minutes."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasError(problem="anchor or alias", problem_mark=event.start_mark)
        return super().compose_node(parent, index)


def _located(node: yaml.Node, file: Path, line: int, problems: _Problems, key: str,
             constructor: yaml.constructor.SafeConstructor) -> Located:
    """A composed YAML node as Located values; duplicate and non-scalar keys are recorded and skipped."""
    if isinstance(node, yaml.MappingNode):
        entries: dict[str, Located] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            where = Located(None, file, key_line)
            if not isinstance(key_node, yaml.ScalarNode):
                problems.add(where, key, "a key must be a plain word; write `name: value`")
                continue
            name = key_node.value
            sub = f"{key}.{name}" if key else name
            if name in entries:
                problems.add(where, sub, f"duplicate key (first written at line {first_line[name]}); keep one")
                continue
            first_line[name] = key_line
            entries[name] = _located(value_node, file, key_line, problems, sub, constructor)
        return Located(entries, file, line)
    if isinstance(node, yaml.SequenceNode):
        return Located([_located(item, file, item.start_mark.line + 1, problems, f"{key}[{i}]", constructor)
                        for i, item in enumerate(node.value)], file, line)
    try:
        return Located(constructor.construct_object(node, deep=True), file, line)
    except yaml.YAMLError as exc:
        problems.add(Located(None, file, line), key, f"cannot read this value ({_yaml_why(exc)}); drop the tag")
        return Located(None, file, line)


def _mark_line(exc: yaml.YAMLError, mark: str) -> int:
    found = getattr(exc, mark, None)
    return found.line + 1 if found else 1


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    """The line of `text` a YAML error points at (a reader error gives a character position instead)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return text.count("\n", 0, exc.position) + 1
    return _mark_line(exc, "problem_mark")


def _yaml_why(exc: yaml.YAMLError) -> str:
    """PyYAML's explanation, with the line of the construct it was reading; never `str(exc)`, which quotes the
    offending line of the file (content that may be a secret) over several lines."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"unacceptable character #x{exc.character:04x}: {exc.reason}"
    problem = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    return f"{context} (line {_mark_line(exc, 'context_mark')}): {problem}" if context else problem


def _parse(path: Path, problems: _Problems) -> Located | None:
    """One file as a Located mapping, or None (problems recorded) when it cannot be read as one."""
    top = Located(None, path, 1)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(top, "", f"cannot read the file ({exc}); check the path")
        return None
    try:
        node = yaml.compose(text, Loader=NoAliasLoader)
    except _AliasError as exc:
        problems.add(Located(None, path, _error_line(exc, text)), "",
                     "YAML anchors (&name) and aliases (*name) are not allowed; write each value out")
        return None
    except yaml.YAMLError as exc:
        problems.add(Located(None, path, _error_line(exc, text)), "",
                     f"YAML syntax error: {_yaml_why(exc)}; close every quote and bracket, and indent with spaces "
                     "(not tabs)")
        return None
    except RecursionError:
        problems.add(top, "", "the YAML is nested too deeply to read; flatten it")
        return None
    if node is None:
        problems.add(top, "", "the file is empty; write a `task:` or `group:` mapping")
        return None
    root = _located(node, path, 1, problems, "", yaml.constructor.SafeConstructor())
    if not isinstance(root.value, dict):
        kind = "a list" if isinstance(root.value, list) else "a single value"  # its content is not quoted
        problems.add(top, "", f"the file must be a mapping of keys to values, not {kind}")
        return None
    return root


def _merge(base: Located, over: Located) -> Located:
    """Deep merge: mappings merge key by key, anything else in `over` replaces `base`."""
    if not (isinstance(base.value, dict) and isinstance(over.value, dict)):
        return over
    merged = dict(base.value)
    for key, node in over.value.items():
        merged[key] = _merge(base.value[key], node) if key in base.value else node
    return Located(merged, over.file, over.line)


def _include_paths(node: Located, problems: _Problems) -> list[tuple[Path, Located, str]]:
    """(resolved path, where it is written, key) of each include."""
    items = node.value if isinstance(node.value, list) else [node]
    paths = []
    for i, item in enumerate(items):
        key = f"{INCLUDE}[{i}]" if isinstance(node.value, list) else INCLUDE
        if not (isinstance(item.value, str) and item.value):
            problems.add(item, key, f"expected a file name relative to this file, got {describe_value(item.value)}")
            continue
        try:
            paths.append(((node.file.parent / item.value).resolve(), item, key))
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            problems.add(item, key, f"cannot resolve the path ({exc}); fix it")
    return paths


def _load_merged(path: Path, chain: tuple[Path, ...], problems: _Problems, roots: tuple[Path, ...]
                 ) -> Located | None:
    """`path` with its includes merged in (later includes win over earlier ones, the file wins over all); includes
    must name files under `roots` (checked before the file is read, so its content cannot reach an error)."""
    own = _parse(path, problems)
    if own is None:
        return None
    entries = dict(own.value)
    include = entries.pop(INCLUDE, None)
    merged = Located({}, path, 1)
    for target, item, key in _include_paths(include, problems) if include else []:
        base = None
        if not any(target.is_relative_to(root) for root in roots):
            problems.add(item, key, f"{target} is outside the folders a task file may include from "
                                    f"({', '.join(map(str, roots))}); move it into one of them or add its folder with "
                                    "--include-path")
        elif target in chain or target == path:
            names = " -> ".join(p.name for p in (*chain, path, target))
            problems.add(item, key, f"include cycle {names}; remove one of these includes")
        elif not target.is_file():
            problems.add(item, key, f"included file {target} does not exist; fix the path (relative to this file)")
        else:
            base = _load_merged(target, (*chain, path), problems, roots)
        problems.include_failed |= base is None
        merged = _merge(merged, base) if base else merged
    return _merge(merged, Located(entries, path, 1))


# ---------------------------------------------------------------------------------------------------------------
# Located -> typed spec


def describe_value(value: Any) -> str:
    """How a YAML value reads in an error message (\"the string 'x'\", \"a list\", ...)."""
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


def _suggest(word: str, known: Sequence[str]) -> str:
    close = closest(word, known)
    return f"did you mean {close!r}?" if close else f"known: {', '.join(known)}"


@dataclass
class _Converter:
    problems: _Problems
    require: bool  # False for include-only bases: missing keys are not problems there

    def value(self, node: Located, tp: Any, key: str, field: dataclasses.Field | None = None) -> Any:
        """`node` converted to type `tp`, or _INVALID after recording why not."""
        origin = typing.get_origin(tp)
        if origin in (types.UnionType, typing.Union):
            if node.value is None:
                return None
            (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            return self.value(node, inner, key, field)
        if dataclasses.is_dataclass(tp):
            return self.spec_class(node, tp, key)
        if origin is tuple:
            return self.sequence(node, typing.get_args(tp)[0], key, field)
        if origin is typing.Literal:
            options = [str(option) for option in typing.get_args(tp)]
            if node.value in options:
                return node.value
            return self.fail(node, key, f"{describe_value(node)} is not one of {', '.join(options)}; "
                                        f"{_suggest(str(node.value), options)}")
        return self.scalar(node, tp, key, field)

    def fail(self, node: Located, key: str, message: str) -> Any:
        self.problems.add(node, key, message)
        return _INVALID

    def scalar(self, node: Located, tp: type, key: str, field: dataclasses.Field | None) -> Any:
        value = node.value
        if tp is str:
            if not isinstance(value, str):
                hint = "; put it in quotes" if isinstance(value, (int, float, bool)) else ""
                return self.fail(node, key, f"expected a string, got {describe_value(node)}{hint}")
        elif tp is bool:
            if not isinstance(value, bool):
                return self.fail(node, key, f"expected true or false, got {describe_value(node)}")
        elif tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                hint = "; drop the quotes" if isinstance(value, str) and value.strip().lstrip("+-").isdigit() else ""
                return self.fail(node, key, f"expected a whole number, got {describe_value(node)}{hint}")
        elif tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return self.fail(node, key, f"expected a number, got {describe_value(node)}{_number_hint(value)}")
            value = float(value)
        else:
            raise TypeError(f"spec field type {tp!r} is not supported")
        check = field.metadata.get("check") if field else None
        problem = check(value) if check else None
        return self.fail(node, key, problem) if problem else value

    def sequence(self, node: Located, item_type: Any, key: str, field: dataclasses.Field | None) -> Any:
        if not isinstance(node.value, list):
            return self.fail(node, key, f"expected a list, got {describe_value(node)}; write `[a, b]` or one `- item` "
                                        "per line")
        if field and field.metadata.get("nonempty") and not node.value:
            return self.fail(node, key, "the list is empty; name at least one")
        items = [self.value(item, item_type, f"{key}[{i}]", field) for i, item in enumerate(node.value)]
        return _INVALID if _INVALID in items else tuple(items)

    def spec_class(self, node: Located, cls: type, key: str, extra: dict[str, Any] | None = None) -> Any:
        """An instance of the spec dataclass `cls` from a mapping (unknown and missing keys recorded)."""
        if not isinstance(node.value, dict):
            return self.fail(node, key, f"expected a mapping of keys (see {cls.__name__}), got {describe_value(node)}")
        fields = {f.name: f for f in yaml_fields(cls)}
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, child in node.value.items():
            sub = f"{key}.{name}" if key else name
            if name in fields:
                kwargs[name] = self.value(child, hints[name], sub, fields[name])
            else:
                self.fail(child, sub, f"unknown key; {_suggest(name, list(fields))}")
        missing = [f for f in fields.values() if f.name not in kwargs and _required(f)]
        for f in missing if self.require else []:
            sub = f"{key}.{f.name}" if key else f.name
            self.fail(node, sub, f"required key missing; add `{f.name}:` ({f.metadata['doc']})")
        if missing or _INVALID in kwargs.values():
            return _INVALID
        instance = cls(**kwargs, **(extra or {}))
        cross_check = getattr(instance, "cross_check", None)
        for name, message in cross_check() if cross_check else []:
            self.fail(node.value.get(name, node), f"{key}.{name}" if key else name, message)
        return instance


def _number_hint(value: Any) -> str:
    """Why a string that looks like a number was not read as one (YAML 1.1 reads 1e-3 as a string)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return "; drop the quotes, and write exponents with a decimal point (1.0e-3, not 1e-3)"


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


# ---------------------------------------------------------------------------------------------------------------
# Public API


def load_located(path: Path, include_path: Sequence[Path] = ()) -> Located:
    """`path` parsed and include-merged, every value with its file and line; raises TaskSpecError."""
    problems = _Problems()
    merged = _load_merged(Path(path).resolve(), (), problems, include_roots(path, include_path))
    if problems or merged is None:
        raise TaskSpecError(problems)
    return merged


def parse_located(path: Path) -> Located:
    """One YAML file as a Located mapping, without include merging (for files that are not specs, such as
    lexicons); raises TaskSpecError for an unreadable file, a syntax error, duplicate keys or a non-mapping."""
    problems = _Problems()
    root = _parse(Path(path).resolve(), problems)
    if problems or root is None:
        raise TaskSpecError(problems)
    return root


def spec_kind(root: Located) -> type[TaskSpec] | type[GroupSpec] | None:
    """TaskSpec for a mapping with `task:`, GroupSpec for one with `group:`, None when unclear."""
    keys = {"task", "group"} & set(root.value)
    return None if len(keys) != 1 else (TaskSpec if "task" in keys else GroupSpec)


def _convert_file(path: Path, base: bool, include_path: Sequence[Path]) -> TaskSpec | GroupSpec | None:
    """Parse, merge and convert one file, raising TaskSpecError with every problem found on the way.

    Missing keys are reported only for a complete spec (`base` False) whose includes all merged, so that a broken
    include is not echoed as a list of missing keys. Returns None only for an incomplete base.
    """
    problems = _Problems()
    include_path = tuple(map(Path, include_path))
    root = _load_merged(path, (), problems, include_roots(path, include_path))
    if root is None:
        raise TaskSpecError(problems)
    kind = spec_kind(root)
    if kind is None and not base:
        problems.add(root, "", "a spec file needs exactly one of `task: NAME` or `group: NAME`")
        raise TaskSpecError(problems)
    converter = _Converter(problems, require=not base and not problems.include_failed)
    spec = converter.spec_class(root, kind or TaskSpec, "", extra={"source": path, "include_path": include_path})
    if problems:
        raise TaskSpecError(problems)
    return None if spec is _INVALID else spec


def load_spec(path: Path, include_path: Sequence[Path] = ()) -> TaskSpec | GroupSpec:
    """A task or group spec from one YAML file, its includes confined to `include_roots`; raises TaskSpecError
    listing every problem in it."""
    return _convert_file(Path(path).resolve(), False, include_path)


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
    node = load_located(path, include_path)
    for key in keys:
        node = node.value[key]
    return node.file, node.line
