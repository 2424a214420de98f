"""edgewise.numerics against values worked by hand and against torch, the plain reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgewise.numerics import kl_divergence, log_softmax, mean_kl, token_logprob


def test_log_softmax_of_known_logits():
    # softmax([0, ln 2, ln 5]) = [1, 2, 5] / 8
    lp = log_softmax(np.array([0.0, math.log(2), math.log(5)]))
    np.testing.assert_allclose(lp, np.log([1 / 8, 2 / 8, 5 / 8]), rtol=1e-6)
    assert lp.dtype == np.float32
    # equal logits: the uniform distribution, whatever their size
    np.testing.assert_allclose(log_softmax(np.full(4, 7.5)), np.full(4, -math.log(4)), rtol=1e-6)


def test_log_softmax_is_stable_on_huge_logits():
    # exp(1000) overflows float64; a shift by the max keeps every value finite and exact.
    lp = log_softmax(np.array([1000.0, 1000.0, -1000.0]), np.float64)
    assert lp.dtype == np.float64 and np.isfinite(lp).all()
    assert lp[0] == pytest.approx(-math.log(2)) and lp[2] == pytest.approx(-2000 - math.log(2))


def test_log_softmax_works_on_the_last_axis_and_matches_torch():
    x = np.random.default_rng(0).normal(0, 5, (3, 4, 50)).astype(np.float32)
    want = torch.log_softmax(torch.from_numpy(x).double(), -1).numpy()
    np.testing.assert_allclose(log_softmax(x), want, atol=1e-5)
    np.testing.assert_allclose(log_softmax(x, np.float64), want, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(x, np.float64)).sum(-1), 1.0, atol=1e-12)


def test_token_logprob_equals_the_row_of_the_full_log_softmax():
    x = np.random.default_rng(1).normal(0, 3, 1000).astype(np.float32)
    full = log_softmax(x, np.float64)
    for tok in (0, 17, int(x.argmax()), 999):
        assert token_logprob(x, tok) == pytest.approx(float(full[tok]), abs=1e-5)


def test_kl_of_known_distributions():
    # KL([1/2, 1/2] || [1/4, 3/4]) = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3)
    p = np.log([[0.5, 0.5], [0.9, 0.1]])
    q = np.log([[0.25, 0.75], [0.9, 0.1]])
    per = kl_divergence(p, q)
    assert per.shape == (2,)
    assert per[0] == pytest.approx(0.5 * math.log(4 / 3)) and per[1] == pytest.approx(0.0, abs=1e-15)
    assert mean_kl(p, q) == pytest.approx(0.25 * math.log(4 / 3))


def test_kl_is_asymmetric_and_matches_torch():
    rng = np.random.default_rng(2)
    p = log_softmax(rng.normal(0, 2, (6, 40)), np.float64)
    q = log_softmax(rng.normal(0, 2, (6, 40)), np.float64)
    want = torch.nn.functional.kl_div(torch.from_numpy(q), torch.from_numpy(p), log_target=True,
                                      reduction="none").sum(-1).numpy()  # torch's kl_div(input=log Q, target=log P)
    np.testing.assert_allclose(kl_divergence(p, q), want, rtol=1e-10)
    assert mean_kl(p, q) != pytest.approx(mean_kl(q, p))
    assert (kl_divergence(p, q) > 0).all() and mean_kl(p, p) == 0.0


def test_kl_dtype_follows_the_inputs_unless_asked():
    p = log_softmax(np.array([[1.0, 2.0, 3.0]]))
    q = log_softmax(np.array([[3.0, 2.0, 1.0]]))
    assert kl_divergence(p, q).dtype == np.float32
    wide = kl_divergence(p, q, np.float64)
    assert wide.dtype == np.float64 and wide[0] == pytest.approx(float(kl_divergence(p, q)[0]), rel=1e-6)
