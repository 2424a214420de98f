"""One tiny registry type, used by every extension point (sources, backends, tasks, detectors, policies).

Lookups load the plugins first (`edgewise.plugins.load(kind)`: the built-ins of this kind, then the installed
entry points), so whatever registers on import is listed without anyone importing it by hand. `register` loads
nothing: it runs while those modules import.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from edgewise import plugins
from edgewise.errors import EdgewiseError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        plugins.load(self.kind)
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise EdgewiseError(f"unknown {self.kind} {name!r}: choose one of {known}") from None

    def names(self) -> list[str]:
        plugins.load(self.kind)
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        plugins.load(self.kind)
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
