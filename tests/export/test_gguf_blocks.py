"""GGUF block unpacking checked against gguf-py's reference dequantizer, for every type we transcode."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf.quants import dequantize

from edgewise.errors import UnsupportedModelError
from edgewise.export.gguf_blocks import UNPACKERS, Blocks, unpack

# Byte offsets of the f16 fields in each block (everything else is codes and packed scales: any byte is valid).
F16_FIELDS = {T.Q4_0: (0,), T.Q4_1: (0, 2), T.Q5_0: (0,), T.Q5_1: (0, 2), T.Q8_0: (0,), T.Q4_K: (0, 2),
              T.Q5_K: (0, 2), T.Q6_K: (208,)}


def random_blocks(qtype, rows: int, K: int, rng) -> np.ndarray:
    elems, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows * K // elems, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = rng.normal(0, 0.02, (raw.shape[0], 1)).astype(np.float16).view(np.uint8)
    return raw.reshape(rows, -1)


@pytest.mark.parametrize("qtype", list(UNPACKERS), ids=lambda t: t.name)
def test_unpack_matches_gguf_reference(qtype):
    rng = np.random.default_rng(int(qtype))
    rows, K = 6, 512
    raw = random_blocks(qtype, rows, K, rng)
    ref = dequantize(raw, qtype).reshape(rows, K)
    b = unpack(raw, qtype, rows, K)
    assert b.codes.max() < (1 << b.bits)
    np.testing.assert_allclose(b.dequantize(), ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_1, T.Q5_0, T.Q8_0, T.Q6_K], ids=lambda t: t.name)
def test_codes_without_min_are_bit_exact(qtype):
    # Types with no min term (or a min folded in fp32) reproduce the reference bit for bit when the min is absent.
    rng = np.random.default_rng(7)
    raw = random_blocks(qtype, 4, 256, rng)
    b = unpack(raw, qtype, 4, 256)
    if b.mins is None:
        assert np.array_equal(b.dequantize(), dequantize(raw, qtype).reshape(4, 256))


def test_widen_and_concat_are_exact():
    rng = np.random.default_rng(3)
    a = unpack(random_blocks(T.Q4_1, 3, 256, rng), T.Q4_1, 3, 256)
    c = unpack(random_blocks(T.Q6_K, 2, 256, rng), T.Q6_K, 2, 256)
    both = Blocks.concat_rows([a, c])
    assert (both.bits, both.block) == (8, 16)
    np.testing.assert_allclose(both.dequantize(), np.concatenate([a.dequantize(), c.dequantize()]), rtol=1e-6, atol=1e-7)


def test_unsupported_type_is_one_clear_error():
    with pytest.raises(UnsupportedModelError, match="cannot be transcoded exactly"):
        unpack(np.zeros((1, 110), np.uint8), T.IQ4_XS, 1, 256)
