"""GGUF quantized blocks -> the block-wise integer grids ONNX Runtime computes with, without requantizing.

Every supported GGML type is rewritten as `w = scale * (code - mid) + min` per block of 16 or 32 consecutive
input elements of one output row, where `mid` is MatMulNBits' implicit zero point (8 for 4 bits, 128 for 8 bits):

| GGML type | GGML formula | container | exact? |
|---|---|---|---|
| Q4_0 | d (q - 8) | 4-bit, block 32, no min | yes: the same codes and scales |
| Q4_1 | d q + m | 4-bit, block 32, min = m + 8d | to fp32 rounding of the folded min |
| Q4_K | d·sc q - dmin·mn (8 sub-blocks of 32) | 4-bit, block 32, min = 8·d·sc - dmin·mn | to fp32 rounding of the min |
| Q5_0 | d (q - 16) | 8-bit, block 32, code q + 112 | yes |
| Q5_1 | d q + m | 8-bit, block 32, min = m + 16d | to fp32 rounding of the min |
| Q5_K | d·sc q - dmin·mn | 8-bit, block 32 | to fp32 rounding of the min |
| Q6_K | d·sc (q - 32) (16 sub-blocks of 16) | 8-bit, block 16, code q + 96 | yes |
| Q8_0 | d q | 8-bit, block 32, code q + 128 | yes |

A 5- or 6-bit code has no 5- or 6-bit kernel in onnxruntime, so it rides in an 8-bit container (same blocks, more
bytes). Mins are not integer zero points: MatMulNBits' float zero points are exact but leave its fast kernel
(1,700 vs 28 µs per call with packed uint8 zero points: one 576 x 1536 layer, onnxruntime 1.32, 1 thread), so the graph adds them as a small extra MatMul (see gguf_transcode).

The unpacking follows ggml's block layouts (ggml-common.h); tests/export/test_gguf_blocks.py checks every type
against gguf-py's reference dequantizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES, QK_K

from edgewise.errors import UnsupportedModelError



@dataclass
class Blocks:
    """One weight of `rows` output rows and K inputs: codes (rows, K) uint8 in [0, 2^bits), scales and mins
    (rows, K / block) float32; the weight is scales * (codes - 2^(bits-1)) + mins, block by block."""

    codes: np.ndarray
    scales: np.ndarray
    mins: np.ndarray | None
    bits: int
    block: int

    @property
    def rows(self) -> int:
        return self.codes.shape[0]

    @property
    def K(self) -> int:
        return self.codes.shape[1]

    def dequantize(self) -> np.ndarray:
        """(rows, K) float32: the weight these blocks stand for."""
        c = self.codes.reshape(self.rows, -1, self.block).astype(np.float32) - float(1 << (self.bits - 1))
        w = c * self.scales[..., None]
        if self.mins is not None:
            w = w + self.mins[..., None]
        return w.reshape(self.rows, self.K)

    def take_rows(self, order: np.ndarray) -> "Blocks":
        return Blocks(self.codes[order], self.scales[order], None if self.mins is None else self.mins[order],
                      self.bits, self.block)

    def widen(self, bits: int, block: int) -> "Blocks":
        """The same weight in a wider container (4 -> 8 bits, 32 -> 16 elements per block): exact, more bytes."""
        if bits < self.bits or block > self.block or self.block % block:
            raise ValueError(f"cannot widen {self.bits}-bit/{self.block} blocks to {bits}-bit/{block}")
        codes = self.codes.astype(np.int16) - (1 << (self.bits - 1)) + (1 << (bits - 1))
        rep = self.block // block
        return Blocks(codes.astype(np.uint8), np.repeat(self.scales, rep, axis=1),
                      None if self.mins is None else np.repeat(self.mins, rep, axis=1), bits, block)

    @staticmethod
    def concat_rows(parts: list["Blocks"]) -> "Blocks":
        bits, block = max(p.bits for p in parts), min(p.block for p in parts)
        parts = [p if (p.bits, p.block) == (bits, block) else p.widen(bits, block) for p in parts]
        mins = None
        if any(p.mins is not None for p in parts):
            mins = np.concatenate([p.mins if p.mins is not None else np.zeros_like(p.scales) for p in parts])
        return Blocks(np.concatenate([p.codes for p in parts]), np.concatenate([p.scales for p in parts]),
                      mins, bits, block)


def _f16(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """(n, 16) bytes -> (n, 32) codes: element j is the low nibble of byte j, element j + 16 its high nibble."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _high_bits32(qh: np.ndarray) -> np.ndarray:
    """(n, 4) bytes of a little-endian uint32 -> (n, 32) bits, element j being bit j."""
    return np.unpackbits(np.ascontiguousarray(qh), axis=-1, bitorder="little")


def _q4_0(b):
    return _nibbles(b[:, 2:18]), _f16(b[:, 0:2])[:, 0:1], None


def _q4_1(b):
    d, m = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    return _nibbles(b[:, 4:20]), d, m + 8.0 * d


def _q5_0(b):
    q = _nibbles(b[:, 6:22]) | (_high_bits32(b[:, 2:6]) << 4)
    return q + 112, _f16(b[:, 0:2]), None


def _q5_1(b):
    d, m = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    q = _nibbles(b[:, 8:24]) | (_high_bits32(b[:, 4:8]) << 4)
    return q + 112, d, m + 16.0 * d


def _q8_0(b):
    return (b[:, 2:34].view(np.int8).astype(np.int16) + 128).astype(np.uint8), _f16(b[:, 0:2]), None


def _k_scale_min(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 12 packed bytes of a Q4_K/Q5_K super-block -> 8 six-bit scales and 8 six-bit mins."""
    a, m, hi = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    sc = np.concatenate([a & 0x3F, (hi & 0x0F) | ((a >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (hi >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.astype(np.float32), mn.astype(np.float32)


def _k_low_nibbles(qs: np.ndarray) -> np.ndarray:
    """(n, 128) bytes -> (n, 8, 32): 64-element chunk c holds sub-block 2c in low nibbles, 2c + 1 in high ones."""
    qs = qs.reshape(-1, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    return (qs & 0x0F).reshape(-1, 8, 32)


def _q4_k(b):
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k_scale_min(b[:, 4:16])
    scale = d * sc
    return _k_low_nibbles(b[:, 16:144]).reshape(-1, QK_K), scale, 8.0 * scale - dmin * mn


def _q5_k(b):
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _k_scale_min(b[:, 4:16])
    # qh: bit s of byte l is the fifth bit of element l of sub-block s.
    qh = (b[:, 16:48].reshape(-1, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)) & 1
    q = _k_low_nibbles(b[:, 48:176]) | (qh << 4)
    scale = d * sc
    return (q + 112).reshape(-1, QK_K), scale, 16.0 * scale - dmin * mn


def _q6_k(b):
    ql, qh, sc, d = b[:, 0:128], b[:, 128:192], b[:, 192:208], b[:, 208:210]
    # Two halves of 128 elements, each four chunks of 32: low nibbles of ql[0:32], ql[32:64], then high nibbles,
    # with two high bits each from qh[0:32] at shifts 0, 2, 4, 6.
    lo = (ql.reshape(-1, 2, 1, 64) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)) & 0x0F
    hi = (qh.reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 0x03
    q = lo.reshape(-1, 8, 32) | (hi.reshape(-1, 8, 32) << 4)
    scale = _f16(d) * sc.view(np.int8).astype(np.float32)
    return (q + 96).reshape(-1, QK_K), scale, None


# type -> (unpack(raw blocks (n, type_size)) -> (codes (n, elems), scales (n, subs), mins), container bits, block).
# Elements and bytes per GGML block come from gguf's GGML_QUANT_SIZES, the table every GGUF reader uses.
UNPACKERS = {
    T.Q4_0: (_q4_0, 4, 32),
    T.Q4_1: (_q4_1, 4, 32),
    T.Q5_0: (_q5_0, 8, 32),
    T.Q5_1: (_q5_1, 8, 32),
    T.Q8_0: (_q8_0, 8, 32),
    T.Q4_K: (_q4_k, 4, 32),
    T.Q5_K: (_q5_k, 8, 32),
    T.Q6_K: (_q6_k, 8, 16),
}
FLOAT_TYPES = (T.F32, T.F16, T.BF16)


def supported(qtype) -> bool:
    return qtype in UNPACKERS or qtype in FLOAT_TYPES


def unpack(raw: np.ndarray, qtype, rows: int, K: int) -> Blocks:
    """Raw GGUF tensor bytes of a (rows, K) weight (K fastest, as ggml stores it) -> Blocks."""
    try:
        fn, bits, block = UNPACKERS[qtype]
    except KeyError:
        known = ", ".join(t.name for t in UNPACKERS)
        raise UnsupportedModelError(f"GGML type {T(qtype).name} cannot be transcoded exactly yet (known: {known}); "
                                    "use a requantizing method such as int4 or int8") from None
    elems, type_size = GGML_QUANT_SIZES[T(qtype)]
    if K % elems:
        raise UnsupportedModelError(f"a {T(qtype).name} row of {K} elements is not whole blocks of {elems}")
    b = np.ascontiguousarray(raw, dtype=np.uint8).reshape(rows * (K // elems), type_size)
    codes, scales, mins = fn(b)
    kb = K // block
    return Blocks(np.ascontiguousarray(codes, dtype=np.uint8).reshape(rows, K),
                  np.ascontiguousarray(scales, dtype=np.float32).reshape(rows, kb),
                  None if mins is None else np.ascontiguousarray(mins, dtype=np.float32).reshape(rows, kb),
                  bits, block)


def requantize_4bit(b: Blocks, block: int = 32) -> Blocks:
    """The weight `b` stands for, requantized to 4-bit blocks with a scale and a min (Q4_1's grid), both chosen
    as fp16 values so the graph can store them in 16 bits exactly.

    Per block the scale and min come from a small search (the block's range shrunk by up to 20%, by the lowest
    squared error), the same idea as llama.cpp's make_qkx search; used only where a bits budget asks for it.
    """
    w = b.dequantize()
    rows, K = w.shape
    if K % block:
        raise UnsupportedModelError(f"a row of {K} elements is not whole blocks of {block}")
    x = w.reshape(rows, K // block, block)
    lo, hi = x.min(-1, keepdims=True), x.max(-1, keepdims=True)
    best_err = best_codes = best_d = best_m = None
    for shrink in (1.0, 0.95, 0.9, 0.85, 0.8):
        for anchor in (0.0, 0.5, 1.0):  # where the shrunk range sits: at the low end, centred, at the high end
            span = (hi - lo) * shrink
            low = lo + anchor * (hi - lo - span)
            d = (span / 15).astype(np.float16).astype(np.float32)
            d = np.where(d > 0, d, np.float32(1.0))
            m = (low + 8 * d).astype(np.float16).astype(np.float32)  # w = d (code - 8) + m
            codes = np.clip(np.rint((x - m) / d + 8), 0, 15)
            err = np.square(d * (codes - 8) + m - x).sum(-1, keepdims=True)
            if best_err is None:
                best_err, best_codes, best_d, best_m = err, codes, d, m
                continue
            take = err < best_err
            best_err = np.where(take, err, best_err)
            best_codes = np.where(take, codes, best_codes)
            best_d, best_m = np.where(take, d, best_d), np.where(take, m, best_m)
    return Blocks(best_codes.astype(np.uint8).reshape(rows, K), best_d[..., 0], best_m[..., 0], 4, block)
