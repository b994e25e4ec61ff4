"""One registry object per kind (models, editors, metrics), filled by decorators at import time."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

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

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._lookup: dict[str, str] = {}

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
        if name not in self._lookup:
            raise UnknownNameError(self.kind, name, self.names())
        return self._entries[self._lookup[name]]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def __contains__(self, name: str) -> bool:
        return name in self._lookup

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]
