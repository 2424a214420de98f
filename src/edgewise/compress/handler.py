"""The steps method handlers share: refuse a model kind, measure what was written, and the one graph rewrite.

`rewrite` quantizes each MatMul weight of the fp32 graph by the config a per-weight plan gives it (None: kept fp32),
so uniform weight-only methods (`uniform_plan`), GPTQ and mixed precision (`match_plan`) share one path.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Callable

from edgewise.compress import onnx_graph as og
from edgewise.compress.configs import WeightConfig
from edgewise.compress.context import DECODER, ENCODER_KIND, CompressContext, QuantResult
from edgewise.compress.grid import rtn
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.formats import folder_bytes, weight_bytes

# torch and onnxruntime.quantization are imported inside the builds that use them: importing them costs seconds,
# and every method module imports this one when a registry lookup loads it.


def check_kind(ctx: CompressContext, allowed: str, method: str, hint: str) -> None:
    if ctx.kind != allowed:
        raise EdgewiseError(f"{method} is for {allowed}s, and {ctx.source.ref} is a {ctx.kind}: {hint}")


def finish(ctx: CompressContext, name: str, cfg, path: Path, t0: float, backend: str = "ort",
           notes: list[str] | None = None) -> QuantResult:
    """Measure what was written: bits per weight over the base model's parameters, size on disk."""
    bpw = 8.0 * weight_bytes(og.model_file(path)) / ctx.params()
    res = QuantResult(name=name, config=cfg, path=Path(path), backend=backend, bits_per_weight=bpw,
                      size_bytes=folder_bytes(path), params=ctx.params(), seconds=time.perf_counter() - t0,
                      notes=list(notes or []))
    ctx.say(f"{name}: {bpw:.2f} bits per weight, {res.size_mb:.1f} MB ({res.seconds:.0f} s)")
    return res


def skip_files(ctx: CompressContext) -> tuple[str, ...]:
    """Side files a variant folder must not copy. An encoder folder with config.json would resolve as a
    (weightless) Hugging Face folder instead of ONNX."""
    return ("config.json",) if ctx.kind == ENCODER_KIND else ()


def quiet_ort_quantizers() -> None:
    """onnxruntime's quantizers call logging.basicConfig(level=INFO) on import and log a line per node through the
    root logger (and warn about every norm weight); keep the root at ERROR so a run stays readable."""
    import onnxruntime.quantization  # noqa: F401 - the import is what reconfigures logging
    from onnxruntime.quantization import matmul_nbits_quantizer  # noqa: F401

    logging.getLogger().setLevel(logging.ERROR)


# --- the graph rewrite --------------------------------------------------------------------------------------------

PlanFn = Callable[[], "tuple[dict[str, WeightConfig | None], dict[str, str]]"]


def calib_tokens(plan: dict) -> int:
    """Calibration tokens the plan's Hessians need: the most any of its configs asks for (0: no calibration)."""
    return max((c.calib_tokens for c in plan.values() if c is not None), default=0)


def rewrite(ctx: CompressContext, kind: str, plan_fn: PlanFn, cache_opts: dict) -> Path:
    """A new folder where each MatMul weight named in the plan is quantized by its config (None: kept fp32).

    plan_fn -> (plan, extra files to write beside the model); it runs only when the result is not cached yet.
    """

    def build(out: Path) -> None:
        import torch

        plan, extra_files = plan_fn()
        base = ctx.base_model()
        tokens = calib_tokens(plan)
        hs = ctx.hessians(tokens) if tokens else {}
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
                    ctx.qtensors[key] = cfg.quantize(og.weight_array(model, w.weight), hs.get(w.input))
                quantized[w.weight] = ctx.qtensors[key]
                levels[w.weight] = cfg.accuracy_level
        finally:
            torch.set_num_threads(threads)
        og.apply(model, quantized, levels)
        if emb is not None:
            og.quantize_embeddings(model, lambda w: rtn(w, emb.grid))
        og.save(model, base.parent, out, model_name=base.name, skip=skip_files(ctx))
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


def uniform_plan(ctx: CompressContext, cfg: WeightConfig) -> PlanFn:
    """Every MatMul weight at `cfg`."""
    return lambda: ({w.weight: cfg for w in og.matmul_weights(og.load(ctx.base_model(), with_data=False))}, {})


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


__all__ = ["PlanFn", "calib_tokens", "check_kind", "finish", "match_plan", "quiet_ort_quantizers", "rewrite",
           "skip_files", "uniform_plan"]
