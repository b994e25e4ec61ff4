"""`include: NAME` or `include: [NAMES]`: bases deep-merged under a file, found in an ordered search and confined to
a set of folders.

Later includes win over earlier ones and the file wins over all; mappings merge key by key, anything else replaces.
Diamonds are allowed and cycles are reported. An include names a file next to the including file, else in one of
the search folders (in order), else by a known name (`IncludeSearch`); only files under the allowed folders are
read (checked before a file is read, so the content of a file outside them cannot reach an error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flextape_bench.errors import closest
from flextape_bench.specfile.located import Located, Problems, describe_value
from flextape_bench.specfile.parsing import parse

INCLUDE = "include"
SUFFIXES = (".yaml", ".yml")


def include_roots(path: Path, folders: Sequence[Path] = ()) -> tuple[Path, ...]:
    """The folders (symlinks resolved) whose files the includes of file `path` may name: its own folder, then
    `folders`."""
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in (Path(path).resolve().parent, *folders)))


@dataclass(frozen=True)
class IncludeSearch:
    """Where the includes of one file (and of its bases) are found: a relative name next to the including file,
    then in each of `folders` in order, then as a key of `named` (a name for a file, e.g. a packaged task's);
    only files under `roots` are read."""

    roots: tuple[Path, ...]
    folders: tuple[Path, ...] = ()
    named: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def of(cls, path: Path, folders: Sequence[Path] = (), named: Mapping[str, Path] | None = None) -> IncludeSearch:
        """The search for file `path`: its own folder tree and `folders` (in this order) allowed and searched."""
        searched = tuple(dict.fromkeys(Path(folder).resolve() for folder in folders))
        return cls(include_roots(path, searched), searched, dict(named or {}))

    def allows(self, target: Path) -> bool:
        return any(target.is_relative_to(root) for root in self.roots)

    def find(self, written: str, including: Path) -> Path | str:
        """The resolved file that `written` in file `including` names, or why there is none."""
        candidates = []
        for folder in dict.fromkeys((including.parent, *self.folders)):
            try:
                candidates.append((folder / written).resolve())
            except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
                return f"cannot resolve the path ({exc}); fix it"
        found = next((c for c in candidates if self.allows(c) and c.is_file()), None) or self.named.get(written)
        if found is not None:
            return found
        if not self.allows(candidates[0]):
            return (
                f"{candidates[0]} is outside the folders a task file may include from "
                f"({', '.join(map(str, self.roots))}); move it into one of them or add its folder with --include-path"
            )
        return self._not_found(written, including)

    def _not_found(self, written: str, including: Path) -> str:
        """Why `written` names no file: where it was looked for, and the closest name there."""
        where = " or in " + ", ".join(map(str, self.folders)) if self.folders else ""
        named = ", nor a packaged task" if self.named else ""
        known = [*self.named, *(p.name for f in (including.parent, *self.folders) for p in _spec_files_in(f))]
        close = closest(written, known)
        forms = ", a file name in those folders or a packaged task's name" if self.named else " or a file name there"
        hint = f"did you mean {close!r}?" if close else f"give a path relative to this file{forms}"
        return f"{written!r} names no file next to this file{where}{named}; {hint}"


def _spec_files_in(folder: Path) -> list[Path]:
    """The YAML files directly in `folder` (names for a "did you mean")."""
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES) if folder.is_dir() else []


def merge(base: Located, over: Located) -> Located:
    """Deep merge: mappings merge key by key, anything else in `over` replaces `base`."""
    if not (isinstance(base.value, dict) and isinstance(over.value, dict)):
        return over
    merged = dict(base.value)
    for key, node in over.value.items():
        merged[key] = merge(base.value[key], node) if key in base.value else node
    return Located(merged, over.file, over.line)


def _include_items(node: Located, problems: Problems) -> list[tuple[str, Located, str]]:
    """(written name, where it is written, key) of each include."""
    items = node.value if isinstance(node.value, list) else [node]
    found = []
    for i, item in enumerate(items):
        key = f"{INCLUDE}[{i}]" if isinstance(node.value, list) else INCLUDE
        if isinstance(item.value, str) and item.value:
            found.append((item.value, item, key))
        else:
            problems.add(item, key, f"expected a file or task name, got {describe_value(item.value)}")
    return found


def load_merged(
    path: Path, search: IncludeSearch, problems: Problems, empty: str, chain: tuple[Path, ...] = ()
) -> Located | None:
    """The resolved file `path` with its includes merged in, or None (problems recorded) when it cannot be read;
    includes are found and confined by `search`; `empty` says what an empty file should hold."""
    own = parse(path, problems, empty)
    if own is None:
        return None
    entries = dict(own.value)
    include = entries.pop(INCLUDE, None)
    merged = Located({}, path, 1)
    for written, item, key in _include_items(include, problems) if include else []:
        base, target = None, search.find(written, path)
        if isinstance(target, str):
            problems.add(item, key, target)
        elif target in chain or target == path:
            names = " -> ".join(p.name for p in (*chain, path, target))
            problems.add(item, key, f"include cycle {names}; remove one of these includes")
        else:
            base = load_merged(target, search, problems, empty, (*chain, path))
        problems.include_failed |= base is None
        merged = merge(merged, base) if base else merged
    return merge(merged, Located(entries, path, 1))
