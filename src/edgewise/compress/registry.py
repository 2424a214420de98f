"""Config type -> handler tables: `@register_handler(Int4WeightOnly)` fills the quantizers' table and `quantize`
dispatches through it; pruning keeps its own table of the same kind (`edgewise.compress.prune.PRUNERS`)."""

from __future__ import annotations

from typing import Callable

from edgewise.errors import EdgewiseError


class TypeRegistry(dict):
    """Handlers keyed by the config dataclass they take; `kind` names them in errors."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, config_type: type):
        def deco(fn: Callable) -> Callable:
            if config_type in self:
                raise RuntimeError(f"a {self.kind} for {config_type.__name__} is registered twice")
            self[config_type] = fn
            return fn

        return deco

    def for_config(self, config) -> Callable:
        try:
            return self[type(config)]
        except KeyError:
            known = ", ".join(sorted(t.__name__ for t in self))
            raise EdgewiseError(f"no {self.kind} for {type(config).__name__}: use one of {known}") from None


HANDLERS = TypeRegistry("compression handler")
register_handler = HANDLERS.register
handler_for = HANDLERS.for_config
