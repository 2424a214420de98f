"""Weight-only methods (int8, int4 RTN/HQQ/k-quant, GPTQ) for decoders and encoders.

Decoders with Hugging Face weights take the onnxruntime-genai builder's own quantizer where it has the method (the
fast path: 10-15 s). Everything else goes through one rewrite of the fp32 graph (`rewrite`), which takes a
per-weight plan, so GPTQ and mixed precision share it.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgewise.compress import onnx_graph as og
from edgewise.compress.configs import Gptq, Int4WeightOnly, Int8WeightOnly, WeightConfig
from edgewise.compress.context import DECODER, ENCODER_KIND, CompressContext, QuantResult
from edgewise.compress.gptq import gptq
from edgewise.compress.grid import rtn
from edgewise.compress.registry import register_handler
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.export.genai import build_genai
from edgewise.formats import folder_bytes, weight_bytes

# torch and onnxruntime.quantization are imported inside the builds that use them: discovery imports this module
# whenever edgewise.compress is, and importing them costs seconds.


def finish(ctx: CompressContext, name: str, cfg, path: Path, t0: float, backend: str = "ort",
           notes: list[str] | None = None) -> QuantResult:
    """Measure what was written: bits per weight over the base model's parameters, size on disk."""
    bpw = 8.0 * weight_bytes(og.model_file(path)) / ctx.params()
    res = QuantResult(name=name, config=cfg, path=Path(path), backend=backend, bits_per_weight=bpw,
                      size_bytes=folder_bytes(path), params=ctx.params(), seconds=time.perf_counter() - t0,
                      notes=list(notes or []))
    ctx.say(f"{name}: {bpw:.2f} bits per weight, {res.size_mb:.1f} MB ({res.seconds:.0f} s)")
    return res


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


def _builder(ctx: CompressContext, precision: str, cfg) -> Path:
    return build_genai(ctx.source, precision, builder_extra(cfg))


# --- the graph rewrite --------------------------------------------------------------------------------------------

def quantize_weight(w: np.ndarray, cfg: WeightConfig, h: np.ndarray | None):
    if isinstance(cfg, Gptq):
        return gptq(w, h.astype(np.float64), cfg.grid, percdamp=cfg.damp, clip_search=cfg.clip_search)
    return rtn(w, cfg.grid)


def calib_tokens(plan: dict) -> int:
    return max((c.calib_tokens for c in plan.values() if isinstance(c, Gptq)), default=0)


PlanFn = Callable[[], "tuple[dict[str, WeightConfig | None], dict[str, str]]"]


def rewrite(ctx: CompressContext, kind: str, plan_fn: PlanFn, cache_opts: dict) -> Path:
    """A new folder where each MatMul weight named in the plan is quantized by its config (None: kept fp32).

    plan_fn -> (plan, extra files to write beside the model); it runs only when the result is not cached yet.
    """

    def build(out: Path) -> None:
        import torch

        plan, extra_files = plan_fn()
        base = ctx.base_model()
        hs = ctx.hessians(calib_tokens(plan)) if calib_tokens(plan) else {}
        model = og.load(base)
        emb = _embedding_config(og.matmul_weights(model), plan) if ctx.kind == DECODER else None
        quantized, levels = {}, {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # GPTQ's small matrix ops: one thread beats a contended pool (see gptq.py)
        try:
            for w in og.matmul_weights(model):
                cfg = plan.get(w.weight)
                if cfg is None:
                    continue
                # Methods share results: mixed precision reuses the int4-gptq codes of every layer it keeps at 4 bits.
                key = (w.weight, repr(cfg))
                if key not in ctx.qtensors:
                    ctx.qtensors[key] = quantize_weight(og.weight_array(model, w.weight), cfg, hs.get(w.input))
                quantized[w.weight] = ctx.qtensors[key]
                levels[w.weight] = cfg.accuracy_level
        finally:
            torch.set_num_threads(threads)
        og.apply(model, quantized, levels)
        if emb is not None:
            og.quantize_embeddings(model, lambda w: rtn(w, emb.grid))
        og.save(model, base.parent, out, model_name=base.name, skip=_skip_files(ctx))
        for fname, text in extra_files.items():
            (out / fname).write_text(text)
    return cached_build(kind, ctx.base_folder(), cache_opts, build)


def _embedding_config(weights: list, plan: dict) -> WeightConfig | None:
    """The grid an untied token embedding gets: the head's (the widest MatMul: vocabulary outputs), when it is
    symmetric, which GatherBlockQuantized needs; None keeps the table fp32. Round-to-nearest, since a lookup has no
    activations for GPTQ to weigh."""
    if not weights:
        return None
    cfg = plan.get(max(weights, key=lambda w: w.N).weight)
    return cfg if cfg is not None and cfg.grid.symmetric else None


def _skip_files(ctx: CompressContext) -> tuple[str, ...]:
    # An encoder folder with config.json would resolve as a (weightless) Hugging Face folder instead of ONNX.
    return ("config.json",) if ctx.kind == ENCODER_KIND else ()


def uniform_plan(ctx: CompressContext, cfg: WeightConfig) -> PlanFn:
    return lambda: ({w.weight: cfg for w in og.matmul_weights(og.load(ctx.base_model(), with_data=False))}, {})


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
        og.save(q.model.model, base.parent, out, model_name=base.name, skip=_skip_files(ctx))
    return cached_build(kind, ctx.base_folder(), ctx.cache_options(cfg, calibrated=False), build)


def quiet_ort_quantizers() -> None:
    """onnxruntime's quantizers call logging.basicConfig(level=INFO) on import and log a line per node through the
    root logger (and warn about every norm weight); keep the root at ERROR so a run stays readable."""
    import onnxruntime.quantization  # noqa: F401 - the import is what reconfigures logging
    from onnxruntime.quantization import matmul_nbits_quantizer  # noqa: F401

    logging.getLogger().setLevel(logging.ERROR)


# --- handlers -----------------------------------------------------------------------------------------------------

@register_handler(Int8WeightOnly)
def int8_weight_only(cfg: Int8WeightOnly, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    if ctx.kind == DECODER and ctx.has_hf_weights:
        path = _builder(ctx, "int8", cfg)
    else:
        path = rewrite(ctx, f"q-{name}", uniform_plan(ctx, cfg), ctx.cache_options(cfg, calibrated=False))
    return finish(ctx, name, cfg, path, t0)


@register_handler(Int4WeightOnly)
def int4_weight_only(cfg: Int4WeightOnly, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    if ctx.kind == DECODER and ctx.has_hf_weights and cfg.algo in ("rtn", "k_quant"):
        path = _builder(ctx, "int4", cfg)
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


def match_plan(weights: list, layers: tuple, default) -> tuple[dict, set]:
    """The per-layer map: the first (regex, config) whose pattern is found in a MatMul's node or weight name wins
    (None keeps it in full precision); unmatched weights get `default`. Returns (plan, names the map fixed)."""
    compiled = [(re.compile(p), c) for p, c in layers]
    plan, fixed = {}, set()
    for w in weights:
        hit = next(((rx, c) for rx, c in compiled if rx.search(w.node) or rx.search(w.weight)), None)
        plan[w.weight] = hit[1] if hit else default
        if hit:
            fixed.add(w.weight)
    return plan, fixed


def check_kind(ctx: CompressContext, allowed: str, method: str, hint: str) -> None:
    if ctx.kind != allowed:
        raise EdgewiseError(f"{method} is for {allowed}s, and {ctx.source.ref} is a {ctx.kind}: {hint}")
