"""Config type -> handler: `@register_handler(Int4WeightOnly)` fills the table, `quantize` dispatches through it."""

from __future__ import annotations

from typing import Callable

from edgewise.errors import EdgewiseError

HANDLERS: dict[type, Callable] = {}


def register_handler(config_type: type):
    def deco(fn: Callable) -> Callable:
        if config_type in HANDLERS:
            raise RuntimeError(f"a handler for {config_type.__name__} is registered twice")
        HANDLERS[config_type] = fn
        return fn

    return deco


def handler_for(config) -> Callable:
    try:
        return HANDLERS[type(config)]
    except KeyError:
        known = ", ".join(sorted(t.__name__ for t in HANDLERS))
        raise EdgewiseError(f"no compression handler for {type(config).__name__}: use one of {known}") from None
