"""Weight-only methods (int8, int4 RTN/HQQ/k-quant, GPTQ) for decoders and encoders: configs and handlers.

Decoders with Hugging Face weights take the onnxruntime-genai builder's own quantizer where it has the method (the
fast path: 10-15 s). Everything else goes through the one rewrite of the fp32 graph (`compress.handler.rewrite`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgewise.compress import onnx_graph as og
from edgewise.compress.configs import RoundToNearest, check_accuracy, check_block
from edgewise.compress.context import DECODER, CompressContext, QuantResult
from edgewise.compress.gptq import gptq
from edgewise.compress.grid import Grid, QTensor
from edgewise.compress.handler import finish, quiet_ort_quantizers, rewrite, skip_files, uniform_plan
from edgewise.compress.registry import register_handler
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.export.genai import build_genai


@dataclass(frozen=True)
class Int8WeightOnly(RoundToNearest):
    """8-bit block-wise weights (MatMulNBits); activations stay float. Lossless on SmolLM2 (perplexity 21.04 -> 20.91)."""

    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4
    label = "int8"
    names = {"int8": {}}
    nominal_bits = 8.0
    weight_only = True

    def __post_init__(self):
        check_block(self.block_size)
        check_accuracy(self.accuracy_level)

    @property
    def grid(self) -> Grid:
        return Grid(8, self.block_size, self.symmetric)

    def describe(self) -> str:
        return f"int8 weight-only, block {self.block_size}, {'symmetric' if self.symmetric else 'asymmetric'}"


@dataclass(frozen=True)
class Int4WeightOnly(RoundToNearest):
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
        check_block(self.block_size)
        check_accuracy(self.accuracy_level)
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
        check_accuracy(self.accuracy_level)
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

    def quantize(self, w: np.ndarray, h: np.ndarray | None) -> QTensor:
        return gptq(w, h.astype(np.float64), self.grid, percdamp=self.damp, clip_search=self.clip_search)

    def describe(self) -> str:
        return (f"int{self.bits} GPTQ (calibrated{', clip search' if self.clip_search else ''}), block {self.block_size}, "
                f"{'symmetric' if self.symmetric else 'asymmetric'}")


# --- the genai builder fast path ---------------------------------------------------------------------------------

def builder_extra(cfg: Int8WeightOnly | Int4WeightOnly) -> dict:
    """Builder --extra_options for a config; {} for the builder's defaults, so the runtime's cached build is reused.

    Only the unprefixed names work: builder 0.18 silently ignores the documented `int4_*` aliases (checked here by
    building with int4_block_size=64 and reading back block_size 32).
    """
    extra = {}
    if cfg.block_size != 32:
        extra["block_size"] = str(cfg.block_size)
    if not cfg.symmetric:
        # An asymmetric table cannot be shared with the lookup (the builder wrote one that would not load), nor
        # quantized for it: the embedding keeps fp32.
        extra["is_symmetric"] = "false"
        extra["shared_embeddings"] = "false"
        extra["op_types_to_quantize"] = "MatMul"
    if cfg.accuracy_level != 4:
        extra["accuracy_level"] = str(cfg.accuracy_level)
    if getattr(cfg, "algo", "rtn") == "k_quant":
        extra["algo_config"] = "k_quant"
    return extra


def ort_quantizer(ctx: CompressContext, kind: str, cfg: Int4WeightOnly) -> Path:
    """onnxruntime's own MatMulNBitsQuantizer, for the algorithms it has and we do not reimplement (HQQ, k-quant)."""

    def build(out: Path) -> None:
        from onnxruntime.quantization import matmul_nbits_quantizer as mq

        quiet_ort_quantizers()
        if cfg.algo == "hqq":
            algo = mq.HQQWeightOnlyQuantConfig(block_size=cfg.block_size, bits=4)
        else:
            algo = mq.KQuantWeightOnlyQuantConfig()
        base = ctx.base_model()
        q = mq.MatMulNBitsQuantizer(og.load(base), block_size=cfg.block_size, is_symmetric=cfg.symmetric,
                                    accuracy_level=cfg.accuracy_level, algo_config=algo)
        q.process()
        og.save(q.model.model, base.parent, out, model_name=base.name, skip=skip_files(ctx))
    return cached_build(kind, ctx.base_folder(), ctx.cache_options(cfg, calibrated=False), build)


# --- handlers -----------------------------------------------------------------------------------------------------

@register_handler(Int8WeightOnly)
def int8_weight_only(cfg: Int8WeightOnly, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    if ctx.kind == DECODER and ctx.has_hf_weights:
        path = build_genai(ctx.source, "int8", builder_extra(cfg))
    else:
        path = rewrite(ctx, f"q-{name}", uniform_plan(ctx, cfg), ctx.cache_options(cfg, calibrated=False))
    return finish(ctx, name, cfg, path, t0)


@register_handler(Int4WeightOnly)
def int4_weight_only(cfg: Int4WeightOnly, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    if ctx.kind == DECODER and ctx.has_hf_weights and cfg.algo in ("rtn", "k_quant"):
        path = build_genai(ctx.source, "int4", builder_extra(cfg))
    elif cfg.algo == "rtn":
        path = rewrite(ctx, f"q-{name}", uniform_plan(ctx, cfg), ctx.cache_options(cfg, calibrated=False))
    else:
        path = ort_quantizer(ctx, f"q-{name}", cfg)
    return finish(ctx, name, cfg, path, t0)


@register_handler(Gptq)
def gptq_handler(cfg: Gptq, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    path = rewrite(ctx, f"q-{name}", uniform_plan(ctx, cfg), ctx.cache_options(cfg, calibrated=True))
    return finish(ctx, name, cfg, path, t0)
