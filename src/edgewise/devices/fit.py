"""Will a model run on a device, at which precision, and how fast? An estimate made from shapes alone.

memory       = weights at bits per weight + KV cache at the context length + a fixed runtime overhead
tokens/s     = EFFICIENCY x device bandwidth / weight bytes read per token       (an estimate, never a measurement)

Decoding is memory-bound: each new token streams every weight from RAM once, so bandwidth over bytes per token is
the ceiling, and runtimes reach about 50-70% of it (vllm issue 7379, llmfit PR 137, zeux.io "LLM inference speed of
light"). On small models and few cores the runtime's per-token overhead can dominate instead; docs/devices.md gives
the error measured on this machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgewise.devices.catalog import ModelShape, get_model_shape
from edgewise.devices.profiles import DeviceProfile, get_device
from edgewise.errors import EdgewiseError

# Midpoint of the 50-70% of the bandwidth ceiling that real runtimes reach (anchors above).
EFFICIENCY = 0.6
# Measured here (docs/devices.md): a Python process with onnxruntime-genai imported holds 54 MiB before any model
# loads, and the int4 build of SmolLM2-135M peaked 151 MiB above its weight files (that base, the runtime, tokenizer,
# prepacked weights and scratch). A constant, not a share of the weights: it matters most for the smallest models.
RUNTIME_OVERHEAD_MB = 150.0
DEFAULT_CONTEXT = 4096  # capped at the model's own context; a common working size for on-device chat

MiB = 1 << 20


@dataclass(frozen=True)
class Precision:
    """How weights are stored. `embed_bits` None: the embedding is stored like the rest (and shared if tied)."""

    name: str
    bits_per_weight: float
    kv_bytes: int  # bytes per cached K or V value
    embed_bits: float | None = None
    note: str = ""

    def __post_init__(self):
        if not 1 <= self.bits_per_weight <= 32 or self.kv_bytes not in (1, 2, 4):
            raise EdgewiseError(f"precision {self.name}: bits_per_weight must be in [1, 32] and kv_bytes 1, 2 or 4")


# The int8 / int4 rows describe onnxruntime-genai CPU builds as inspected here (builder 0.18, `-p int8|int4 -e cpu`):
# MatMulNBits with block size 32 and one fp32 scale per block, KV cache in fp32. The int8 build keeps an fp32 copy
# of the embedding table for the lookup; the int4 build shares one 4-bit table between lookup and lm_head.
PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", 32.0, 4, note="full precision"),
    Precision("fp16", 16.0, 2, note="half precision weights and KV cache"),
    Precision("int8", 9.0, 4, embed_bits=32.0,
              note="8-bit block-32 + fp32 scale (onnxruntime-genai CPU int8), fp32 embedding table"),
    Precision("int4", 5.0, 4, note="4-bit block-32 + fp32 scale (onnxruntime-genai CPU int4)"),
    Precision("q8_0", 8.5, 2, note="llama.cpp Q8_0: 8-bit blocks of 32 with an fp16 scale (8.5 bpw), f16 KV cache"),
    Precision("q4_k_m", 4.89, 2,
              note="llama.cpp Q4_K_M: 4.89 bpw on Llama-3-8B (llama.cpp quantize), f16 KV cache"),
)}


@dataclass(frozen=True)
class FitRow:
    precision: str
    bits_per_weight: float
    weights_mb: float
    kv_cache_mb: float
    overhead_mb: float
    memory_mb: float
    fits_ram: bool
    fits_storage: bool
    est_tokens_per_s: float  # ESTIMATE: EFFICIENCY x bandwidth / bytes read per token
    bytes_per_token_mb: float

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_storage


@dataclass(frozen=True)
class FitReport:
    model: ModelShape
    device: DeviceProfile
    context: int
    efficiency: float
    overhead_mb: float
    rows: list[FitRow]

    def row(self, precision: str) -> FitRow:
        for r in self.rows:
            if r.precision == precision:
                return r
        raise EdgewiseError(f"no {precision!r} row in this fit; rows: {', '.join(r.precision for r in self.rows)}")

    def as_dict(self) -> dict:
        return {
            "model": self.model.as_dict(),
            "device": self.device.as_dict(),
            "context": self.context,
            "efficiency": self.efficiency,
            "overhead_mb": self.overhead_mb,
            "estimate_note": "tokens/s are estimates: efficiency x device bandwidth / weight bytes read per token",
            "rows": [{**asdict(r), "fits": r.fits} for r in self.rows],
        }


def weight_bytes(model: ModelShape, p: Precision) -> float:
    """Bytes the weights take in memory (and, near enough, on disk)."""
    stored = model.matmul_params * p.bits_per_weight / 8
    if not model.tied or p.embed_bits is not None:
        # An untied model has its own embedding table; a runtime may also keep a separate full-precision copy.
        stored += model.embed_params * (p.embed_bits or p.bits_per_weight) / 8
    return stored + model.position_params * (p.embed_bits or p.bits_per_weight) / 8


def bytes_per_token(model: ModelShape, p: Precision) -> float:
    """Weight bytes streamed per generated token: every layer and the output head."""
    return model.matmul_params * p.bits_per_weight / 8


def estimate_tps(bytes_per_tok: float, bandwidth_gbs: float, efficiency: float = EFFICIENCY) -> float:
    """ESTIMATED decode tokens/s of a memory-bound runtime."""
    if bytes_per_tok <= 0 or not bandwidth_gbs > 0:
        raise EdgewiseError("estimate_tps needs positive bytes per token and bandwidth")
    return efficiency * bandwidth_gbs * 1e9 / bytes_per_tok


def fit(model: str | ModelShape, device: str | DeviceProfile = "host", context: int | None = None,
        precisions: list[str] | None = None, efficiency: float = EFFICIENCY,
        overhead_mb: float = RUNTIME_OVERHEAD_MB) -> FitReport:
    """Estimate memory and decode speed of `model` on `device` at each precision, before any download."""
    shape = get_model_shape(model)
    dev = get_device(device)
    if context is None:
        context = min(DEFAULT_CONTEXT, shape.context)
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise EdgewiseError(f"context must be a positive number of tokens, got {context!r}")
    if context > shape.context:
        raise EdgewiseError(f"context {context} exceeds {shape.name}'s trained context of {shape.context} tokens: "
                            "lower --context")
    if not 0 < efficiency <= 1:
        raise EdgewiseError(f"efficiency must be in (0, 1], got {efficiency}")
    names = list(PRECISIONS) if precisions is None else precisions
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown:
        raise EdgewiseError(f"unknown precision {unknown[0]!r}: choose from {', '.join(PRECISIONS)}")
    rows = []
    for n in names:
        p = PRECISIONS[n]
        w = weight_bytes(shape, p) / MiB
        kv = shape.kv_cache_bytes(context, p.kv_bytes) / MiB
        total = w + kv + overhead_mb
        bpt = bytes_per_token(shape, p)
        rows.append(FitRow(
            precision=n, bits_per_weight=p.bits_per_weight, weights_mb=w, kv_cache_mb=kv, overhead_mb=overhead_mb,
            memory_mb=total, fits_ram=total <= dev.usable_ram_mb, fits_storage=w <= dev.storage_gb * 1024,
            est_tokens_per_s=estimate_tps(bpt, dev.bandwidth_gbs, efficiency), bytes_per_token_mb=bpt / MiB))
    return FitReport(model=shape, device=dev, context=context, efficiency=efficiency, overhead_mb=overhead_mb,
                     rows=rows)


# What `bench` calls: measured on the host, projected to a device.

def estimate_device_tps(achieved_tps: float, host_bandwidth_gbs: float, device: str | DeviceProfile) -> float:
    """ESTIMATED tokens/s on `device`: tokens/s measured here x device bandwidth / this machine's probed bandwidth.

    It assumes the runtime reaches the same share of the device's bandwidth as it did of the host's. Device figures
    are spec peaks while the host figure is a measured read rate, so the projection leans optimistic.
    """
    if not achieved_tps >= 0 or not host_bandwidth_gbs > 0 or math.isinf(achieved_tps):
        raise EdgewiseError("estimate_device_tps needs tokens/s >= 0 and a positive host bandwidth")
    return achieved_tps * get_device(device).bandwidth_gbs / host_bandwidth_gbs


def fits_device(peak_rss_mb: float, device: str | DeviceProfile) -> bool:
    """Whether a process that peaked at `peak_rss_mb` MiB fits the device's usable RAM."""
    if not peak_rss_mb >= 0:
        raise EdgewiseError(f"peak_rss_mb must be >= 0, got {peak_rss_mb!r}")
    return peak_rss_mb <= get_device(device).usable_ram_mb
