"""GGUF -> ONNX Runtime without a float round trip: the GGUF's own quantized blocks, carried into MatMulNBits.

Requantizing a shipped Q4_1/Q4_K_M GGUF onto our own int4 grid loses what the GGUF's author kept (+14-32%
perplexity on SmolLM2); transcoding keeps the codes, scales and mins, so the ONNX model computes with exactly the
weights llama.cpp would (export.gguf_transcode checks every tensor against the dequantized GGUF). This is the
default method for a GGUF input, and `edgewise run` uses the same folder for a GGUF unless told otherwise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from edgewise.compress.context import DECODER, CompressContext, QuantResult
from edgewise.compress.handler import check_kind, finish
from edgewise.compress.registry import register_handler
from edgewise.errors import EdgewiseError


@dataclass(frozen=True)
class GgufTranscode:
    """Re-pack a GGUF's quantized blocks as MatMulNBits, keeping its codes.

    accuracy_level is MatMulNBits' compute type: 4 quantizes activations to int8 per block (what llama.cpp's own
    dot products do: Q4_1 x Q8_1), 1 computes in fp32 and reproduces the dequantized weights' logits exactly.
    """

    accuracy_level: int = 4
    max_bpw: float | None = None
    label = "gguf"
    # gguf-5.5bpw: the same blocks, with the token table's rarest rows moved from 8 to 4 bits to fit 5.5 bits per
    # weight (SmolLM2's Q8_0 table alone puts the exact transcode at 5.8; llama.cpp's own file is 5.85).
    names = {"gguf": {}, "gguf-exact": {"accuracy_level": 1}, "gguf-5.5bpw": {"max_bpw": 5.5}}
    nominal_bits = 4.5  # Q4_1 / Q4_K_M with their 8-bit containers; the report measures the real figure
    weight_only = False

    def __post_init__(self):
        if self.accuracy_level not in (0, 1, 2, 3, 4):
            raise EdgewiseError(f"gguf: accuracy_level must be 0-4 (MatMulNBits compute type), "
                                f"got {self.accuracy_level!r}: use 4 (int8 activations, fast) or 1 (fp32, exact)")
        if self.max_bpw is not None and not (isinstance(self.max_bpw, (int, float)) and 2 <= self.max_bpw <= 32):
            raise EdgewiseError(f"gguf: max_bpw must be a number of bits per weight in [2, 32], got {self.max_bpw!r}")

    def describe(self) -> str:
        how = "int8 activations" if self.accuracy_level == 4 else "fp32 compute"
        if self.max_bpw is not None:
            return (f"GGUF blocks transcoded to MatMulNBits ({how}); the token table's highest-id rows requantized "
                    f"8 -> 4 bits to fit {self.max_bpw:g} bits per weight")
        return f"GGUF blocks transcoded to MatMulNBits ({how}, no requantization)"


@register_handler(GgufTranscode)
def gguf_transcode(cfg: GgufTranscode, ctx: CompressContext, name: str) -> QuantResult:
    check_kind(ctx, DECODER, name, "GGUF transcoding is for language models")
    # transcode_gguf refuses a source that is not a quantized GGUF, before any build. Imported here: the transcoder pulls in onnx and the genai builder, and a registry lookup imports this module often.
    from edgewise.export.gguf_transcode import transcode_gguf

    t0 = time.perf_counter()
    path = transcode_gguf(ctx.source, accuracy_level=cfg.accuracy_level, max_bpw=cfg.max_bpw)
    notes = []
    report = path / "transcode.json"
    if report.exists():
        info = json.loads(report.read_text())
        by_type = info.get("by_type", {})
        notes.append("GGUF types kept: " + ", ".join(
            f"{t} x{s['tensors']} -> {s['container']}" for t, s in sorted(by_type.items()) if t != "requantized"))
        if info.get("head_rows4"):
            notes.append(f"{info['head_rows4']} highest-id head rows requantized to 4 bits (budget "
                         f"{info.get('max_bpw')} bits per weight)")
    return finish(ctx, name, cfg, path, t0, notes=notes)
