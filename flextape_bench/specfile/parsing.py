"""YAML files as `Located` mappings: every value with its file and line, anchors and aliases refused, duplicate
keys reported, and no error quoting the content of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flextape_bench.specfile.located import Located, Problems, SpecFileError


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


def is_alias_error(exc: yaml.YAMLError) -> bool:
    """Whether `NoAliasLoader` refused an anchor or alias."""
    return isinstance(exc, _AliasError)


def _located(
    node: yaml.Node, file: Path, line: int, problems: Problems, key: str, constructor: yaml.constructor.SafeConstructor
) -> Located:
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
        return Located(
            [
                _located(item, file, item.start_mark.line + 1, problems, f"{key}[{i}]", constructor)
                for i, item in enumerate(node.value)
            ],
            file,
            line,
        )
    try:
        return Located(constructor.construct_object(node, deep=True), file, line)
    except yaml.YAMLError as exc:
        problems.add(Located(None, file, line), key, f"cannot read this value ({yaml_why(exc)}); drop the tag")
        return Located(None, file, line)


def _mark_line(exc: yaml.YAMLError, mark: str) -> int:
    found = getattr(exc, mark, None)
    return found.line + 1 if found else 1


def _error_line(exc: yaml.YAMLError, text: str) -> int:
    """The line of `text` a YAML error points at (a reader error gives a character position instead)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return text.count("\n", 0, exc.position) + 1
    return _mark_line(exc, "problem_mark")


def yaml_why(exc: yaml.YAMLError) -> str:
    """PyYAML's explanation, with the line of the construct it was reading; never `str(exc)`, which quotes the
    offending line of the file (content that may be a secret) over several lines."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"unacceptable character #x{exc.character:04x}: {exc.reason}"
    problem = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    return f"{context} (line {_mark_line(exc, 'context_mark')}): {problem}" if context else problem


def parse(path: Path, problems: Problems, empty: str) -> Located | None:
    """One file as a Located mapping, or None (problems recorded) when it cannot be read as one; `empty` says what
    an empty file should hold."""
    top = Located(None, path, 1)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(top, "", f"cannot read the file ({exc}); check the path")
        return None
    try:
        node = yaml.compose(text, Loader=NoAliasLoader)
    except _AliasError as exc:
        problems.add(
            Located(None, path, _error_line(exc, text)),
            "",
            "YAML anchors (&name) and aliases (*name) are not allowed; write each value out",
        )
        return None
    except yaml.YAMLError as exc:
        problems.add(
            Located(None, path, _error_line(exc, text)),
            "",
            f"YAML syntax error: {yaml_why(exc)}; close every quote and bracket, and indent with spaces (not tabs)",
        )
        return None
    except RecursionError:
        problems.add(top, "", "the YAML is nested too deeply to read; flatten it")
        return None
    if node is None:
        problems.add(top, "", f"the file is empty; {empty}")
        return None
    root = _located(node, path, 1, problems, "", yaml.constructor.SafeConstructor())
    if not isinstance(root.value, dict):
        kind = "a list" if isinstance(root.value, list) else "a single value"  # its content is not quoted
        problems.add(top, "", f"the file must be a mapping of keys to values, not {kind}")
        return None
    return root


def parse_located(path: Path, empty: str = "write a mapping of keys to values") -> Located:
    """One YAML file as a Located mapping, without include merging; raises SpecFileError for an unreadable file, a
    syntax error, an anchor or alias, duplicate keys or a non-mapping."""
    problems = Problems()
    root = parse(Path(path).resolve(), problems, empty)
    if problems or root is None:
        raise SpecFileError(problems)
    return root
