"""llama.cpp types (Q8_0, Q4_K_M, ...) as comparators, measured on the same task through the llamacpp backend."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgewise.compress.context import DECODER, CompressContext, QuantResult
from edgewise.compress.handler import check_kind
from edgewise.compress.llamacpp_quant import BASE_TYPES, FTYPES, llamacpp_quantize
from edgewise.compress.registry import register_handler
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.export.hf_folder import hf_folder_for
from edgewise.formats import gguf_bits_per_weight
from edgewise.runtime.llamacpp_backend import import_llama_cpp


# Typical bits per weight of each type (block scales included); the search's cost rank only.
NOMINAL_BITS = {"Q8_0": 8.5, "Q6_K": 6.56, "Q4_K_M": 4.89, "Q4_0": 4.5}


@dataclass(frozen=True)
class LlamaCppQuant:
    """Quantize to one llama.cpp type. `base` is the intermediate GGUF (f32 keeps every bit)."""

    qtype: str = "Q4_K_M"
    base: str = "f32"
    threads: int | None = None
    names = {"q8_0": {"qtype": "Q8_0"}, "q4_k_m": {"qtype": "Q4_K_M"}}
    weight_only = False  # a GGUF for llama.cpp, not a block grid the ONNX rewrite can place per layer

    def __post_init__(self):
        object.__setattr__(self, "qtype", str(self.qtype).upper())
        if self.qtype not in FTYPES:
            raise EdgewiseError(f"unknown llama.cpp type {self.qtype!r}: choose one of {', '.join(FTYPES)}")
        if self.base not in BASE_TYPES:
            raise EdgewiseError(f"base must be one of {BASE_TYPES}, got {self.base!r}")
        if self.threads is not None and self.threads < 1:
            raise EdgewiseError(f"threads must be at least 1, got {self.threads}")

    @property
    def nominal_bits(self) -> float:
        return NOMINAL_BITS.get(self.qtype, 8.0)


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
