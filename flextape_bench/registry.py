"""One registry object per kind (models, editors, metrics), filled by decorators at import time. A registry may name
the package that fills it (`plugins`): it imports that package on its first lookup, so that a lower layer (task specs
checking metric names) can look names up without importing the layer that registers them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flextape_bench.errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str
    aliases: tuple[str, ...] = ()


class Registry(Generic[T]):
    """Maps names and aliases to registered objects; unknown names are answered with the known ones."""

    def __init__(self, kind: str, plugins: str | None = None):
        self.kind, self.plugins = kind, plugins
        self._entries: dict[str, Entry[T]] = {}
        self._lookup: dict[str, str] = {}

    def _discover(self) -> None:
        """Import the plugin package once (its modules register their entries as they are imported)."""
        if self.plugins is not None:
            plugins, self.plugins = self.plugins, None  # None first: the package's own lookups do not recurse
            try:
                importlib.import_module(plugins)
            except BaseException:
                self.plugins = plugins
                raise

    def register(self, name: str, *, description: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, description=description, aliases=aliases)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, description: str, aliases: tuple[str, ...] = ()) -> None:
        for key in (name, *aliases):
            if key in self._lookup:
                raise ValueError(f"{self.kind} name {key!r} is registered twice")
        self._entries[name] = Entry(name, obj, description, tuple(aliases))
        self._lookup.update({key: name for key in (name, *aliases)})

    def entry(self, name: str) -> Entry[T]:
        self._discover()
        if name not in self._lookup:
            raise UnknownNameError(self.kind, name, self.names())
        return self._entries[self._lookup[name]]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._lookup

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]


METRICS: Registry[Any] = Registry("metric", plugins="flextape_bench.metrics")  # filled by flextape_bench.metrics
