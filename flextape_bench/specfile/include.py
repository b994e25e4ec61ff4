"""`include: FILE` or `include: [FILES]`: bases deep-merged under a file, confined to a set of folders.

Later includes win over earlier ones and the file wins over all; mappings merge key by key, anything else replaces.
Diamonds are allowed, cycles are reported, and an include must name a file under one of the allowed folders
(checked before the file is read, so the content of a file outside them cannot reach an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flextape_bench.specfile.located import Located, Problems, describe_value
from flextape_bench.specfile.parsing import parse

INCLUDE = "include"


def include_roots(path: Path, folders: Sequence[Path] = ()) -> tuple[Path, ...]:
    """The folders (symlinks resolved) whose files the includes of file `path` may name: its own folder, then
    `folders`."""
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in (Path(path).resolve().parent, *folders)))


def merge(base: Located, over: Located) -> Located:
    """Deep merge: mappings merge key by key, anything else in `over` replaces `base`."""
    if not (isinstance(base.value, dict) and isinstance(over.value, dict)):
        return over
    merged = dict(base.value)
    for key, node in over.value.items():
        merged[key] = merge(base.value[key], node) if key in base.value else node
    return Located(merged, over.file, over.line)


def _include_paths(node: Located, problems: Problems) -> list[tuple[Path, Located, str]]:
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


def load_merged(
    path: Path, roots: tuple[Path, ...], problems: Problems, empty: str, chain: tuple[Path, ...] = ()
) -> Located | None:
    """The resolved file `path` with its includes merged in, or None (problems recorded) when it cannot be read;
    includes must name files under `roots` (see `include_roots`); `empty` says what an empty file should hold."""
    own = parse(path, problems, empty)
    if own is None:
        return None
    entries = dict(own.value)
    include = entries.pop(INCLUDE, None)
    merged = Located({}, path, 1)
    for target, item, key in _include_paths(include, problems) if include else []:
        base = None
        if not any(target.is_relative_to(root) for root in roots):
            problems.add(
                item,
                key,
                f"{target} is outside the folders a task file may include from "
                f"({', '.join(map(str, roots))}); move it into one of them or add its folder with "
                "--include-path",
            )
        elif target in chain or target == path:
            names = " -> ".join(p.name for p in (*chain, path, target))
            problems.add(item, key, f"include cycle {names}; remove one of these includes")
        elif not target.is_file():
            problems.add(item, key, f"included file {target} does not exist; fix the path (relative to this file)")
        else:
            base = load_merged(target, roots, problems, empty, (*chain, path))
        problems.include_failed |= base is None
        merged = merge(merged, base) if base else merged
    return merge(merged, Located(entries, path, 1))
