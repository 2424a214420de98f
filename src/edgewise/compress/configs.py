"""What every method config shares, and the CLI names: `parse_method("int4:block_size=64")` -> (name, config).

A config is a frozen dataclass that validates itself in __post_init__ and carries what the registry needs: `names`
(CLI name -> preset options), `nominal_bits` (bits per stored weight it aims at, the search's cost rank; None: not
rankable) and `weight_only` (quantizes MatMul weights alone on a block grid, so mixed precision can place it per
layer: see WeightConfig). Each built-in lives with its handler in compress/methods/ (docs/quantization-methods.md);
`METHODS` is the derived CLI name -> factory view of the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Iterator, Protocol

import numpy as np

from edgewise.compress.grid import BLOCK_SIZES, Grid, QTensor, rtn
from edgewise.compress.registry import MethodName, method_names
from edgewise.errors import EdgewiseError

ACCURACY_LEVELS = (0, 1, 2, 3, 4)


def check_block(block_size: int) -> None:
    if block_size not in BLOCK_SIZES:
        raise EdgewiseError(f"block_size must be one of {', '.join(map(str, BLOCK_SIZES))}, got {block_size!r}")


def check_accuracy(level: int) -> None:
    if level not in ACCURACY_LEVELS:
        raise EdgewiseError(f"accuracy_level must be 0-4 (4 = int8 compute, fastest on CPU), got {level!r}")


class WeightConfig(Protocol):
    """What a weight-only config (`weight_only = True`) offers the graph rewrite and mixed precision: its grid, how
    to quantize one MatMul weight onto it, and how many calibration tokens its Hessians need (0: none)."""

    label: str
    accuracy_level: int
    calib_tokens: int

    @property
    def grid(self) -> Grid: ...

    def quantize(self, w: np.ndarray, h: np.ndarray | None) -> QTensor: ...

    def describe(self) -> str: ...


class RoundToNearest:
    """The weight-only step of configs without calibration: round each block to the nearest grid point."""

    calib_tokens = 0

    def quantize(self, w: np.ndarray, h: np.ndarray | None = None) -> QTensor:
        return rtn(w, self.grid)


# --- CLI names ----------------------------------------------------------------------------------------------------

class _MethodNames(Mapping):
    """CLI name -> config factory, read from the registry (every method module registers its own names)."""

    def __getitem__(self, name: str) -> MethodName:
        return method_names()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(method_names()))

    def __len__(self) -> int:
        return len(method_names())


METHODS: Mapping[str, MethodName] = _MethodNames()


def option_value(text: str):
    """A `key=value` option's value: a bool, None, an int, a float, or the text itself."""
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_method(spec: str):
    """`int4` or `int4:block_size=64,symmetric=false` -> (variant name, config)."""
    spec = spec.strip()
    name, _, args = spec.partition(":")
    name = name.strip().lower()
    if name not in METHODS:
        raise EdgewiseError(f"unknown method {name!r}: choose from {', '.join(METHODS)}")
    kwargs = {}
    for part in filter(None, (a.strip() for a in args.split(","))):
        key, eq, val = part.partition("=")
        if not eq:
            raise EdgewiseError(f"method option {part!r} in {spec!r}: write key=value, e.g. int4:block_size=64")
        kwargs[key.strip()] = option_value(val.strip())
    try:
        cfg = METHODS[name](**kwargs)
    except TypeError as e:
        raise EdgewiseError(f"bad options for method {name!r}: {e}") from None
    return (variant_name(name, kwargs, cfg) if args else name), cfg


def variant_name(name: str, options: dict, cfg) -> str:
    """A name that reads well: the registered name whose preset covers the most of the options (`int4:symmetric=false`
    is `int4-asym`, `int4:block_size=64,symmetric=false` is `int4-asym-block_size64`), then what is left of them
    (`int4-block_size64`, booleans as `key` / `no-key`)."""
    full = {**METHODS[name].preset, **options}
    best = METHODS[name]
    for other in METHODS.values():
        if (other.config_type is type(cfg) and len(other.preset) > len(best.preset)
                and all(k in full and full[k] == v for k, v in other.preset.items())):
            best = other
    rest = {k: v for k, v in full.items() if k not in best.preset}
    parts = [(k if v else f"no-{k}") if isinstance(v, bool) else f"{k}{v}" for k, v in rest.items()]
    return "-".join([best.name, *parts])


def config_dict(cfg) -> dict:
    """A JSON-able view of a config (for reports, manifests and cache keys)."""
    out = {"type": type(cfg).__name__}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name == "layers":
            v = [[p, None if c is None else config_dict(c)] for p, c in v]
        elif hasattr(v, "__dataclass_fields__"):
            v = config_dict(v)
        out[f.name] = v
    return out


__all__ = ["ACCURACY_LEVELS", "METHODS", "RoundToNearest", "WeightConfig", "check_accuracy", "check_block",
           "config_dict", "option_value", "parse_method", "variant_name"]
