"""Block-wise integer grids: the one quantizer format every weight-only method writes.

A weight W (K, N) of a MatMul (y = x @ W) is cut into blocks of `block_size` consecutive input rows per output
column. Each block has one float scale and, if asymmetric, one integer zero point:  w ~ (code - zp) * scale.
Symmetric grids store no zero point; the runtime assumes 2^(bits-1) (MatMulNBits' convention).

The formulas match onnxruntime's own block quantizer (`quantize_matmul_4bits/8bits`), so RTN here is bit-for-bit
what the genai builder writes; tests/compress/test_grid.py checks that against the C++ kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewise.errors import EdgewiseError

BLOCK_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Grid:
    """bits 4 or 8, block_size a power of two in 16..256, symmetric (no zero point) or asymmetric."""

    bits: int = 4
    block_size: int = 32
    symmetric: bool = True

    def __post_init__(self):
        if self.bits not in (4, 8):
            raise EdgewiseError(f"bits must be 4 or 8, got {self.bits!r}")
        if self.block_size not in BLOCK_SIZES:
            raise EdgewiseError(f"block_size must be one of {', '.join(map(str, BLOCK_SIZES))}, got {self.block_size!r}")

    @property
    def qmax(self) -> int:
        return (1 << self.bits) - 1

    @property
    def mid(self) -> int:
        # The implicit zero point of a symmetric grid.
        return 1 << (self.bits - 1)

    def bits_per_weight(self) -> float:
        """Storage per weight: the code, plus a 32-bit scale and (asymmetric) a packed zero point per block."""
        return self.bits + (32 + (0 if self.symmetric else self.bits)) / self.block_size


@dataclass
class QTensor:
    """One quantized MatMul weight: codes (N, Kp) in [0, 2^bits), scales (N, kb), zero points (N, kb) or None."""

    codes: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray | None
    grid: Grid
    K: int

    @property
    def N(self) -> int:
        return self.codes.shape[0]

    @property
    def k_blocks(self) -> int:
        return self.scales.shape[1]

    def dequantize(self) -> np.ndarray:
        """The weight the runtime computes with, (K, N) float32."""
        if self.zero_points is None:
            z = np.full(self.scales.shape, self.grid.mid, np.float32)
        else:
            z = self.zero_points.astype(np.float32)
        c = self.codes.reshape(self.N, self.k_blocks, self.grid.block_size).astype(np.float32)
        w = (c - z[..., None]) * self.scales[..., None]
        return np.ascontiguousarray(w.reshape(self.N, -1)[:, : self.K].T)

    def packed(self) -> np.ndarray:
        """MatMulNBits input B: (N, k_blocks, block_size * bits / 8) uint8, low nibble first for 4 bits."""
        c = self.codes.astype(np.uint8)
        if self.grid.bits == 4:
            c = (c[:, 0::2] & 0x0F) | ((c[:, 1::2] & 0x0F) << 4)
        return np.ascontiguousarray(c.reshape(self.N, self.k_blocks, -1))

    def packed_zero_points(self) -> np.ndarray | None:
        """MatMulNBits zero_points: 4-bit ones two per byte (odd tail padded with 8, as onnxruntime does)."""
        if self.zero_points is None:
            return None
        z = self.zero_points.astype(np.uint8)
        if self.grid.bits == 8:
            return np.ascontiguousarray(z)
        if z.shape[1] % 2:
            z = np.concatenate([z, np.full((self.N, 1), 8, np.uint8)], axis=1)
        return np.ascontiguousarray((z[:, 0::2] & 0x0F) | ((z[:, 1::2] & 0x0F) << 4))

    def nbytes(self) -> int:
        zp = self.packed_zero_points()
        return self.packed().nbytes + self.scales.nbytes + (zp.nbytes if zp is not None else 0)


def _blocks(w: np.ndarray, bs: int) -> tuple[np.ndarray, int]:
    """(K, N) -> (N, kb, bs) with the K axis zero-padded to a whole number of blocks."""
    K, N = w.shape
    kb = -(-K // bs)
    wt = np.zeros((N, kb * bs), np.float32)
    wt[:, :K] = w.T
    return wt.reshape(N, kb, bs), kb


def block_params(blocks: np.ndarray, grid: Grid, clip: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale (and zero point) per block of `blocks` (..., bs). `clip` < 1 shrinks the range (a clip search)."""
    if grid.symmetric:
        mx, mn = blocks.max(-1), blocks.min(-1)
        # The signed extreme maps to code 0 exactly (scale may be negative): all 2^bits levels stay usable.
        extreme = np.where(np.abs(mx) > np.abs(mn), mx, mn) * clip
        return (extreme / -grid.mid).astype(np.float32), None
    mn = np.minimum(blocks.min(-1), 0) * clip
    mx = np.maximum(blocks.max(-1), 0) * clip
    scale = ((mx - mn) / grid.qmax).astype(np.float32)
    safe = np.where(scale == 0, 1, scale)
    zp = np.where(scale == 0, grid.mid, np.clip(np.round(-mn / safe), 0, grid.qmax)).astype(np.uint8)
    return scale, zp


def quantize_block_values(x: np.ndarray, scale: np.ndarray, zp: np.ndarray | None, grid: Grid) -> np.ndarray:
    """Codes for values x (..., m) given per-row scale/zero point (...,)."""
    z = np.float32(grid.mid) if zp is None else zp.astype(np.float32)[..., None]
    safe = np.where(scale == 0, 1, scale)[..., None]
    q = np.round(x / safe + z)
    q = np.where(scale[..., None] == 0, z, q)
    return np.clip(q, 0, grid.qmax).astype(np.uint8)


def rtn(w: np.ndarray, grid: Grid, clip: np.ndarray | float = 1.0) -> QTensor:
    """Round-to-nearest block quantization of a (K, N) weight."""
    w = np.asarray(w, np.float32)
    if w.ndim != 2:
        raise EdgewiseError(f"block quantization needs a 2-D weight, got shape {w.shape}")
    b, kb = _blocks(w, grid.block_size)
    scale, zp = block_params(b, grid, clip)
    codes = quantize_block_values(b, scale, zp, grid).reshape(b.shape[0], -1)
    return QTensor(codes, scale, zp, grid, w.shape[0])


def rtn_mse(w: np.ndarray, grid: Grid, shrink: tuple[float, ...] = (1.0, 0.95, 0.9, 0.85, 0.8)) -> QTensor:
    """RTN with a per-block clip search: pick the range shrink that minimises each block's squared error."""
    w = np.asarray(w, np.float32)
    b, _ = _blocks(w, grid.block_size)
    best_err = np.full(b.shape[:2], np.inf, np.float32)
    best_clip = np.ones(b.shape[:2], np.float32)
    for c in shrink:
        s, z = block_params(b, grid, c)
        q = quantize_block_values(b, s, z, grid).astype(np.float32)
        zz = np.float32(grid.mid) if z is None else z.astype(np.float32)[..., None]
        err = (((q - zz) * s[..., None] - b) ** 2).sum(-1)
        better = err < best_err
        best_err, best_clip = np.where(better, err, best_err), np.where(better, c, best_clip)
    return rtn(w, grid, best_clip)
