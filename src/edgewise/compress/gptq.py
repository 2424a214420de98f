"""GPTQ (Frantar et al. 2022, arXiv 2210.17323) onto the block grids of `grid.py`.

Round-to-nearest treats every weight alone. GPTQ quantizes one input row of W at a time and pushes the rounding
error onto the rows not yet quantized, weighted by the inverse Hessian H = X^T X of the layer's real inputs, so the
layer's *output* on calibration data moves as little as possible. Same storage as RTN; only the codes differ.

W here is (K, N) as ONNX stores it (y = x @ W): GPTQ's "columns" are our rows, processed in order k = 0..K-1.
"""

from __future__ import annotations

import numpy as np

from edgewise.compress.grid import Grid, QTensor, block_params, quantize_block_values
from edgewise.errors import EdgewiseError

# torch (about 3 s to import) is imported inside the functions that run the linear algebra, not when the package
# is discovered.
SHRINK = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75)


def _group_params(w: np.ndarray, grid: Grid, clip_search: bool, weights: np.ndarray | None = None):
    """Scale/zero point per output column for one block of input rows w (N, bs); optional error-weighted clip search."""
    if not clip_search:
        return block_params(w, grid)
    best = None
    for c in SHRINK:
        s, z = block_params(w, grid, c)
        q = quantize_block_values(w, s, z, grid).astype(np.float32)
        zz = np.float32(grid.mid) if z is None else z.astype(np.float32)[:, None]
        d = (q - zz) * s[:, None] - w
        err = (d * d * weights).sum(-1) if weights is not None else (d * d).sum(-1)
        if best is None:
            best = (err, s, z)
            continue
        better = err < best[0]
        best = (np.where(better, err, best[0]), np.where(better, s, best[1]),
                None if z is None else np.where(better, z, best[2]))
    return best[1], best[2]


def gptq(w: np.ndarray, h: np.ndarray, grid: Grid, percdamp: float = 0.01, lazy_block: int = 32,
         clip_search: bool = True) -> QTensor:
    """Quantize w (K, N) given H (K, K) of its inputs. Returns codes on `grid` (MatMulNBits layout)."""
    w = np.asarray(w, np.float32)
    K, N = w.shape
    if h.shape != (K, K):
        raise EdgewiseError(f"Hessian shape {h.shape} does not match weight rows {K}")
    bs = grid.block_size
    if lazy_block % bs:
        lazy_block = bs * max(1, lazy_block // bs)
    kb = -(-K // bs)
    Kp = kb * bs
    W = np.zeros((N, Kp), np.float32)  # GPTQ's orientation: rows = outputs, columns = inputs
    W[:, :K] = w.T
    H = np.zeros((Kp, Kp), np.float64)
    H[:K, :K] = h
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0  # inputs never seen (and padding): no error feedback through them
    W[:, dead] = 0.0
    H[np.diag_indices(Kp)] += percdamp * float(np.mean(np.diag(H)))
    U = _inverse_cholesky_upper(H)
    codes = np.zeros((N, Kp), np.uint8)
    scales = np.zeros((N, kb), np.float32)
    zps = None if grid.symmetric else np.zeros((N, kb), np.uint8)
    hdiag = np.diag(H).astype(np.float32)
    for i1 in range(0, Kp, lazy_block):
        i2 = min(i1 + lazy_block, Kp)
        W1 = W[:, i1:i2].copy()
        E1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if col % bs == 0:
                g = col // bs
                # Block scale from the current (error-updated) weights, weighting each row's error by its H diagonal.
                s, z = _group_params(W1[:, i:i + bs], grid, clip_search, hdiag[col:col + bs][None, :])
                scales[:, g] = s
                if zps is not None:
                    zps[:, g] = z
            g = col // bs
            s = scales[:, g]
            z = None if zps is None else zps[:, g]
            q = quantize_block_values(W1[:, i:i + 1], s, z, grid)[:, 0]
            zz = np.float32(grid.mid) if z is None else z.astype(np.float32)
            deq = (q.astype(np.float32) - zz) * s
            codes[:, col] = q
            err = (W1[:, i] - deq) / U1[i, i]
            W1[:, i:] -= np.outer(err, U1[i, i:])
            E1[:, i] = err
        if i2 < Kp:
            W[:, i2:] -= matmul(E1, U[i1:i2, i2:])
    return QTensor(codes, scales, zps, grid, K)


def _inverse_cholesky_upper(H: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor of H^-1, in torch on one thread: numpy's threaded OpenBLAS (and torch's own pool)
    stall for up to a second per call on a busy 2-core machine; one thread takes milliseconds."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = torch.from_numpy(H)
        hinv = torch.cholesky_inverse(torch.linalg.cholesky(t))
        return torch.linalg.cholesky(hinv, upper=True).float().numpy()
    except RuntimeError:  # torch.linalg.LinAlgError is a RuntimeError: H not positive definite
        raise EdgewiseError("GPTQ: the calibration Hessian is not positive definite; use more calibration text "
                            "or a larger percdamp") from None
    finally:
        torch.set_num_threads(n)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b through torch (see above: numpy's BLAS threads stall on a busy machine)."""
    import torch

    return (torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))).numpy()


def output_error(w: np.ndarray, q: QTensor, h: np.ndarray) -> float:
    """Mean squared output error tr((W - Q)^T H (W - Q)) / N: what GPTQ minimises, for tests and logs."""
    d = (np.asarray(w, np.float64) - q.dequantize()).astype(np.float64)
    return float(np.einsum("kn,kj,jn->", d, h, d) / d.shape[1])
