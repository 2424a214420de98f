"""Compression: typed configs, dispatched through a registry of handlers.

    from edgewise.compress import quantize, Int4WeightOnly, Gptq, MixedPrecision
    r = quantize("smollm2-135m", Gptq(block_size=32))      # prints bits per weight
    r.path                                                  # a folder edgewise.runtime.load_model opens

Methods: Fp32, TorchFp32, Int8WeightOnly, Int8Dynamic, Int8Static, Int4WeightOnly (rtn | hqq | k_quant), Gptq,
MixedPrecision, GgufTranscode, and llama.cpp types (LlamaCppQuant, optional), each with its handler in
compress/methods/. Each built artifact is cached by content hash. A lookup (`quantize`, `parse_method`, `METHODS`)
loads the method modules first through edgewise.plugins, so a method is one module that registers itself
(docs/quantization-methods.md).
"""

from __future__ import annotations

from pathlib import Path

from edgewise.compress.configs import METHODS, config_dict, parse_method
from edgewise.compress.context import Calibration, CompressContext, QuantResult
from edgewise.compress.methods.baselines import Fp32, TorchFp32
from edgewise.compress.methods.int8_ort import Int8Dynamic, Int8Static
from edgewise.compress.methods.mixed import MixedPrecision
from edgewise.compress.methods.weight_only import Gptq, Int4WeightOnly, Int8WeightOnly
from edgewise.compress.registry import HANDLERS, NAMES, handler_for, register_handler
from edgewise.models import ModelSource, load


def quantize(model, config, *, name: str | None = None, calibration: Calibration | None = None,
             threads: int | None = None, ctx: CompressContext | None = None) -> QuantResult:
    """Compress `model` (a reference, a ModelSource, or an existing context) with `config`; returns the variant."""
    if ctx is None:
        source = model if isinstance(model, ModelSource) else load(str(model) if isinstance(model, Path) else model)
        ctx = CompressContext(source, calibration, threads, say=print)
    return handler_for(config)(config, ctx, name or getattr(config, "label", type(config).__name__.lower()))


__all__ = ["quantize", "Calibration", "CompressContext", "QuantResult", "register_handler", "HANDLERS", "NAMES",
           "METHODS", "parse_method", "config_dict", "Fp32", "TorchFp32", "Int8WeightOnly", "Int8Dynamic", "Int8Static",
           "Int4WeightOnly", "Gptq", "MixedPrecision"]
