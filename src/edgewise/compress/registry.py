"""The quantization-method registry: one decorator per method.

    @register_handler(Int4WeightOnly)          # the config class carries `names`, `nominal_bits`, `weight_only`
    def int4_weight_only(cfg, ctx, name) -> QuantResult: ...

fills two tables: HANDLERS (config type -> handler, what `quantize` dispatches through) and NAMES (CLI name ->
config type and preset options, what `parse_method` reads). Lookups load the method modules first
(`edgewise.plugins.load`: the built-ins in compress/methods/, then installed plugins), so a new method is one module
that registers on import (docs/quantization-methods.md, docs/plugins.md). Pruning keeps its own type -> handler
table of the same kind (`edgewise.compress.prune.PRUNERS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from edgewise import plugins
from edgewise.compress.method_config import check_method_config
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
        plugins.load(self.kind)
        try:
            return self[type(config)]
        except KeyError:
            known = ", ".join(sorted(t.__name__ for t in self))
            raise EdgewiseError(f"no {self.kind} for {type(config).__name__}: use one of {known}") from None


@dataclass(frozen=True)
class MethodName:
    """One CLI name: the config type it builds and the options it presets (`int4-hqq` = Int4WeightOnly(algo="hqq"))."""

    name: str
    config_type: type
    preset: Mapping[str, Any]

    def __call__(self, **options):
        clash = sorted(set(options) & set(self.preset))
        if clash:
            raise TypeError(f"{self.name} sets {', '.join(clash)} itself; use another method name to change it")
        return self.config_type(**self.preset, **options)


HANDLERS = TypeRegistry("compression method")
NAMES: dict[str, MethodName] = {}


def register_handler(config_type: type) -> Callable[[Callable], Callable]:
    """Register a quantization method: `handler(cfg, ctx, name) -> QuantResult` for `config_type`, and the CLI names
    the config class lists in `names` ({cli name: preset options}; none for a library-only config)."""

    def deco(fn: Callable) -> Callable:
        check_method_config(config_type)  # a misspelled member is refused here, not read later as "unrankable"
        names = dict(getattr(config_type, "names", {}) or {})
        taken = sorted(n for n in names if n in NAMES)
        if taken:
            raise RuntimeError(f"method name {taken[0]!r} of {config_type.__name__} is already taken by "
                               f"{NAMES[taken[0]].config_type.__name__}")
        HANDLERS.register(config_type)(fn)
        for name, preset in names.items():
            NAMES[name] = MethodName(name, config_type, dict(preset))
        return fn

    return deco


handler_for = HANDLERS.for_config


def method_names() -> dict[str, MethodName]:
    """NAMES once every method module has registered (the read side of the table; `register_handler` writes it)."""
    plugins.load(HANDLERS.kind)
    return NAMES


def is_weight_only(cfg) -> bool:
    """True for configs that quantize MatMul weights alone onto a block grid (`cfg.grid`, `cfg.accuracy_level`):
    the ones mixed precision and the graph rewrite can place per layer."""
    return getattr(type(cfg), "weight_only", False) is True


def names_where(predicate: Callable[[type], bool]) -> list[str]:
    """CLI names (sorted) whose config type satisfies `predicate`, for error messages that list the choices."""
    return sorted(n for n, m in method_names().items() if predicate(m.config_type))


__all__ = ["HANDLERS", "NAMES", "MethodName", "TypeRegistry", "handler_for", "is_weight_only", "method_names",
           "names_where", "register_handler"]
