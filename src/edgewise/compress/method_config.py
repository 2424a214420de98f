"""The contract every quantization method's config class keeps, as a typing.Protocol.

`register_handler` reads `names`, the search ranks recipes by `nominal_bits`, and mixed precision places only
`weight_only` configs per layer. Each is read with getattr(..., default), so a class that misspells one
(`nominal_bit = 4.0`) would pass for "not rankable" or "not weight-only" in silence; `check_method_config` names
what such a class lacks, for registration to refuse it in one line.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

MEMBERS = ("names", "nominal_bits", "weight_only")


@runtime_checkable
class MethodConfig(Protocol):
    # CLI name -> the options it presets (`"int4-hqq": {"algo": "hqq"}`); {} for a library-only config.
    names: ClassVar[Mapping[str, Mapping[str, Any]]]
    # Bits per stored weight it aims at, the search's cost rank (the report measures the real figure); None: the
    # search does not rank it. A class attribute, or a property where it depends on the options (mixed, llama.cpp).
    nominal_bits: float | None
    # Quantizes MatMul weights alone on a block grid (configs.WeightConfig), so mixed precision can give it to a layer.
    weight_only: bool


def check_method_config(config_type: type) -> None:
    """Raise TypeError naming the MethodConfig members `config_type` lacks (a plugin author's mistake, not a user's)."""
    missing = [m for m in MEMBERS if not hasattr(config_type, m)]
    if missing:
        raise TypeError(f"{config_type.__name__} is not a MethodConfig: it has no {', '.join(missing)} "
                        "(docs/quantization-methods.md lists what a method config carries)")
