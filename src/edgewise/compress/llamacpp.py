"""llama.cpp types (Q8_0, Q4_K_M, ...) as comparators, measured on the same task through the llamacpp backend."""

from __future__ import annotations

import time
from pathlib import Path

from edgewise.compress.context import DECODER, CompressContext, QuantResult
from edgewise.compress.llamacpp_quant import LlamaCppQuant, llamacpp_quantize
from edgewise.compress.registry import register_handler
from edgewise.compress.weight_only import check_kind
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.export.hf_folder import hf_folder_for
from edgewise.formats import gguf_bits_per_weight
from edgewise.runtime.llamacpp_backend import import_llama_cpp


@register_handler(LlamaCppQuant)
def llamacpp(cfg: LlamaCppQuant, ctx: CompressContext, name: str) -> QuantResult:
    check_kind(ctx, DECODER, name, "llama.cpp types are for language models")
    import_llama_cpp()  # fails early, with the install hint, when the optional extra is missing
    if not ctx.has_hf_weights:
        raise EdgewiseError(f"{ctx.source.ref}: llama.cpp types are written from Hugging Face weights (HF folder or GGUF)")
    t0 = time.perf_counter()
    hf = hf_folder_for(ctx.source)
    bpw = {}

    def build(out: Path) -> None:
        res = llamacpp_quantize(hf, out / f"model.{cfg.qtype}.gguf", cfg)
        bpw["v"] = res.bits_per_weight

    folder = cached_build(f"q-{name}", hf, {"qtype": cfg.qtype, "base": cfg.base, "v": 1}, build)
    gguf = folder / f"model.{cfg.qtype}.gguf"
    if "v" not in bpw:
        bpw["v"] = gguf_bits_per_weight(gguf)
    res = QuantResult(name=name, config=cfg, path=gguf, backend="llamacpp", bits_per_weight=bpw["v"],
                      size_bytes=gguf.stat().st_size, params=ctx.params(), seconds=time.perf_counter() - t0)
    ctx.say(f"{name}: {res.bits_per_weight:.2f} bits per weight, {res.size_mb:.1f} MB (llama.cpp {cfg.qtype})")
    return res
