"""Compression methods as typed values: `quantize(model, Int4WeightOnly(block_size=64))`.

Each config validates itself in __post_init__ and carries what the registry needs: `names` (CLI name -> preset
options), `nominal_bits` (bits per stored weight it aims at, the search's cost rank; None: not rankable) and
`weight_only` (quantizes MatMul weights alone on a block grid, so mixed precision can place it per layer). Its
handler's `@register_handler` registers both (`compress.registry`); `METHODS` is the derived CLI name -> factory view.
A new method is one file under compress/ (docs/quantization-methods.md); these are the built-in ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Iterator, Protocol

from edgewise.compress.grid import BLOCK_SIZES, Grid
from edgewise.compress.registry import NAMES, MethodName, is_weight_only, names_where
from edgewise.errors import EdgewiseError

ACCURACY_LEVELS = (0, 1, 2, 3, 4)


def _check_block(block_size: int) -> None:
    if block_size not in BLOCK_SIZES:
        raise EdgewiseError(f"block_size must be one of {', '.join(map(str, BLOCK_SIZES))}, got {block_size!r}")


def _check_accuracy(level: int) -> None:
    if level not in ACCURACY_LEVELS:
        raise EdgewiseError(f"accuracy_level must be 0-4 (4 = int8 compute, fastest on CPU), got {level!r}")


@dataclass(frozen=True)
class Fp32:
    """The full model, exported as is: the reference every variant is measured against."""

    label = "fp32"
    names = {"fp32": {}}
    nominal_bits = 32.0
    weight_only = False

    def describe(self) -> str:
        return "full precision (fp32), the reference"


@dataclass(frozen=True)
class TorchFp32:
    """The full model on PyTorch eager: a speed reference (same weights as Fp32)."""

    label = "torch"
    names = {"torch": {}}
    nominal_bits = None  # the search ranks quantized ONNX and GGUF recipes, not the eager speed reference
    weight_only = False

    def describe(self) -> str:
        return "full precision on PyTorch (speed reference)"


@dataclass(frozen=True)
class Int8Dynamic:
    """onnxruntime `quantize_dynamic`: int8 weights, activations quantized on the fly. Encoders only: on language
    models it raised SmolLM2's perplexity from 21.0 to 30.5 (463 tokens of the GPL-3 preamble), so decoders get Int8WeightOnly."""

    per_channel: bool = False
    reduce_range: bool = False
    label = "int8-dynamic"
    names = {"int8-dynamic": {}}
    nominal_bits = None  # encoders only; the search explores language models
    weight_only = False

    def describe(self) -> str:
        return f"int8 dynamic (weights + on-the-fly activations){', per-channel' if self.per_channel else ''}"


@dataclass(frozen=True)
class Int8Static:
    """Static QDQ int8 with activation ranges calibrated on text (encoders)."""

    calibration: str = "minmax"  # minmax | percentile | entropy
    per_channel: bool = True
    max_samples: int = 64
    label = "int8-static"
    names = {"int8-static": {}}
    nominal_bits = None  # encoders only; the search explores language models
    weight_only = False

    def __post_init__(self):
        if self.calibration not in ("minmax", "percentile", "entropy"):
            raise EdgewiseError(f"calibration must be minmax, percentile or entropy, got {self.calibration!r}")
        if not isinstance(self.max_samples, int) or self.max_samples < 1:
            raise EdgewiseError(f"max_samples must be a positive integer, got {self.max_samples!r}")

    def describe(self) -> str:
        return f"int8 static QDQ, {self.calibration} calibration{', per-channel weights' if self.per_channel else ''}"


@dataclass(frozen=True)
class Int8WeightOnly:
    """8-bit block-wise weights (MatMulNBits); activations stay float. Lossless on SmolLM2 (perplexity 21.04 -> 20.91)."""

    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4
    label = "int8"
    names = {"int8": {}}
    nominal_bits = 8.0
    weight_only = True

    def __post_init__(self):
        _check_block(self.block_size)
        _check_accuracy(self.accuracy_level)

    @property
    def grid(self) -> Grid:
        return Grid(8, self.block_size, self.symmetric)

    def describe(self) -> str:
        return f"int8 weight-only, block {self.block_size}, {'symmetric' if self.symmetric else 'asymmetric'}"


@dataclass(frozen=True)
class Int4WeightOnly:
    """4-bit block-wise weights without calibration: round-to-nearest, HQQ or k-quant.

    accuracy_level 4 computes with int8 activations: 86 vs 59 tokens/s at level 1 for the same perplexity here.
    """

    block_size: int = 32
    symmetric: bool = True
    algo: str = "rtn"  # rtn | hqq | k_quant
    accuracy_level: int = 4
    label = "int4"
    names = {"int4": {}, "int4-asym": {"symmetric": False}, "int4-hqq": {"algo": "hqq"},
             "int4-kquant": {"algo": "k_quant"}}
    nominal_bits = 4.0
    weight_only = True

    def __post_init__(self):
        _check_block(self.block_size)
        _check_accuracy(self.accuracy_level)
        if self.algo not in ("rtn", "hqq", "k_quant"):
            raise EdgewiseError(f"algo must be rtn, hqq or k_quant, got {self.algo!r}")

    @property
    def grid(self) -> Grid:
        return Grid(4, self.block_size, self.symmetric)

    def describe(self) -> str:
        return (f"int4 weight-only {self.algo.upper() if self.algo != 'k_quant' else 'k-quant'}, block {self.block_size}, "
                f"{'symmetric' if self.symmetric else 'asymmetric'}")


@dataclass(frozen=True)
class Gptq:
    """Calibration-aware weights (GPTQ with a per-block clip search): same storage as RTN at `bits`, less error.

    Hessians come from `calib_tokens` tokens of calibration text run through the fp32 model.
    """

    bits: int = 4
    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4
    damp: float = 0.01
    clip_search: bool = True
    calib_tokens: int = 2048
    names = {"int4-gptq": {}}
    weight_only = True

    def __post_init__(self):
        Grid(self.bits, self.block_size, self.symmetric)  # validates bits and block size
        _check_accuracy(self.accuracy_level)
        if not 0 < self.damp < 1:
            raise EdgewiseError(f"damp must be in (0, 1), got {self.damp!r}")
        if not isinstance(self.calib_tokens, int) or self.calib_tokens < 64:
            raise EdgewiseError(f"calib_tokens must be an integer >= 64, got {self.calib_tokens!r}")

    @property
    def grid(self) -> Grid:
        return Grid(self.bits, self.block_size, self.symmetric)

    @property
    def label(self) -> str:
        return f"int{self.bits}-gptq"

    @property
    def nominal_bits(self) -> float:
        return float(self.bits)

    def describe(self) -> str:
        return (f"int{self.bits} GPTQ (calibrated{', clip search' if self.clip_search else ''}), block {self.block_size}, "
                f"{'symmetric' if self.symmetric else 'asymmetric'}")


class WeightConfig(Protocol):
    """What a weight-only config (`weight_only = True`) offers the graph rewrite and mixed precision."""

    label: str
    accuracy_level: int

    @property
    def grid(self) -> Grid: ...

    def describe(self) -> str: ...


def _weight_only_names() -> str:
    return ", ".join(names_where(lambda t: getattr(t, "weight_only", False) is True))


@dataclass(frozen=True)
class MixedPrecision:
    """Per-layer precision. `layers` is the one per-layer mechanism: (regex, config) pairs matched against weight
    names in order, where config None keeps that weight in full precision. Weights no pattern matches get `base`,
    then, with a `budget_bpw`, the layers that hurt most when quantized alone (measured: KL divergence of the
    output with only that unit at `base`) move to `high` while the whole model stays within the budget."""

    base: WeightConfig = field(default_factory=Gptq)
    high: WeightConfig = field(default_factory=lambda: Gptq(bits=8))
    layers: tuple[tuple[str, WeightConfig | None], ...] = ()
    budget_bpw: float | None = 5.5
    unit: str = "block"  # sensitivity granularity: block (one per transformer layer, plus the head) | matmul
    probe_tokens: int = 128
    label = "mixed"
    names = {"mixed": {}}
    weight_only = False  # it chooses among weight-only configs; it is not one a layer can be given

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple((p, c) for p, c in self.layers))
        for pattern, cfg in self.layers:
            try:
                re.compile(pattern)
            except re.error as e:
                raise EdgewiseError(f"bad layer pattern {pattern!r}: {e}") from None
            if cfg is not None and not is_weight_only(cfg):
                raise EdgewiseError(f"layer {pattern!r}: use a weight-only config or None (keep full precision)")
        for cfg in (self.base, self.high):
            if not is_weight_only(cfg):
                raise EdgewiseError(f"mixed precision base/high must be weight-only configs ({_weight_only_names()})")
            if isinstance(cfg, Int4WeightOnly) and cfg.algo != "rtn":
                raise EdgewiseError("mixed precision supports RTN or GPTQ weights; use algo='rtn'")
        if self.budget_bpw is not None and not 1.0 < float(self.budget_bpw) <= 32:
            raise EdgewiseError(f"budget_bpw must be in (1, 32], got {self.budget_bpw!r}")
        if self.unit not in ("block", "matmul"):
            raise EdgewiseError(f"unit must be block or matmul, got {self.unit!r}")

    @property
    def nominal_bits(self) -> float:
        return float(self.budget_bpw) if self.budget_bpw else float(self.high.nominal_bits)

    def describe(self) -> str:
        budget = f", most sensitive layers at {self.high.label} within {self.budget_bpw} bpw" if self.budget_bpw else ""
        return f"mixed: {self.base.describe()}{budget}"


# --- CLI names ----------------------------------------------------------------------------------------------------

class _MethodNames(Mapping):
    """CLI name -> config factory, read from the registry (every method module registers its own names)."""

    def __getitem__(self, name: str) -> MethodName:
        return NAMES[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(NAMES))

    def __len__(self) -> int:
        return len(NAMES)


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


__all__ = ["Fp32", "TorchFp32", "Int8Dynamic", "Int8Static", "Int8WeightOnly", "Int4WeightOnly", "Gptq",
           "MixedPrecision", "METHODS", "parse_method", "config_dict", "asdict"]
