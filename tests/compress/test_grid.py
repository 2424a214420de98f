"""The block grid against onnxruntime's C++ quantizer (the reference), and GPTQ against RTN on real statistics."""

import numpy as np
import pytest

from edgewise.compress.gptq import gptq, output_error
from edgewise.compress.grid import Grid, rtn, rtn_mse
from edgewise.errors import EdgewiseError


def ort_reference(w, grid):
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    K, N = w.shape
    bs, kpack = grid.block_size, 8 // grid.bits
    kb = -(-K // bs)
    wp = np.zeros((kb * bs, N), np.float32)
    wp[:K] = w
    packed = np.zeros((N, kb, bs // kpack), np.uint8)
    zp = np.zeros((N, (kb + kpack - 1) // kpack), np.uint8)
    scales = np.zeros((N, kb), np.float32)
    fn = quantize_matmul_4bits if grid.bits == 4 else quantize_matmul_8bits
    fn(packed, wp, scales, zp, bs, N, kb * bs, grid.symmetric)
    return packed, scales, zp


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("block_size,K", [(16, 64), (32, 100), (128, 256)])
def test_rtn_matches_onnxruntime_bit_for_bit(bits, symmetric, block_size, K):
    w = np.random.default_rng(bits + K).normal(size=(K, 24)).astype(np.float32)
    grid = Grid(bits, block_size, symmetric)
    q = rtn(w, grid)
    packed, scales, zp = ort_reference(w, grid)
    np.testing.assert_array_equal(q.packed(), packed)
    np.testing.assert_array_equal(q.scales, scales)
    if not symmetric:
        np.testing.assert_array_equal(q.packed_zero_points(), zp)
    # dequantized error: half a step, except a symmetric grid's +2^(bits-1) edge, which clips by up to one step
    step = np.abs(np.repeat(q.scales, block_size, axis=1)[:, :K].T)
    assert np.all(np.abs(q.dequantize() - w) <= (1.0 if symmetric else 0.5) * step * (1 + 1e-5) + 1e-6)


def test_bits_per_weight_counts_scales_and_zero_points():
    assert Grid(4, 32, True).bits_per_weight() == 5.0
    assert Grid(4, 32, False).bits_per_weight() == 5.125
    assert Grid(8, 128, True).bits_per_weight() == 8.25
    with pytest.raises(EdgewiseError):
        Grid(3, 32)
    with pytest.raises(EdgewiseError):
        Grid(4, 48)


def test_clip_search_never_worse_than_rtn():
    w = np.random.default_rng(1).standard_t(3, size=(128, 64)).astype(np.float32)  # heavy tails: clipping helps
    g = Grid(4, 32, True)
    e_rtn = ((rtn(w, g).dequantize() - w) ** 2).sum()
    e_mse = ((rtn_mse(w, g).dequantize() - w) ** 2).sum()
    assert e_mse < e_rtn


def test_gptq_lowers_output_error_on_correlated_inputs():
    rng = np.random.default_rng(0)
    K, N = 128, 64
    x = rng.normal(size=(1024, K)).astype(np.float32) @ rng.normal(size=(K, K)).astype(np.float32)
    x[:, :4] *= 8  # a few outlier channels, as in real activations
    h = (x.T @ x / len(x)).astype(np.float64)
    w = rng.normal(size=(K, N)).astype(np.float32) * 0.05
    for sym in (True, False):
        g = Grid(4, 32, sym)
        q = gptq(w, h, g)
        assert q.codes.max() <= 15 and q.scales.shape == (N, K // 32)
        assert output_error(w, q, h) < 0.5 * output_error(w, rtn(w, g), h)


def test_gptq_with_identity_hessian_is_close_to_rtn():
    # With uncorrelated inputs there is no error to push anywhere: GPTQ reduces to (clip-searched) rounding.
    w = np.random.default_rng(2).normal(size=(64, 16)).astype(np.float32)
    g = Grid(8, 32, True)
    q = gptq(w, np.eye(64), g, clip_search=False)
    np.testing.assert_array_equal(q.codes, rtn(w, g).codes)
