"""The one home of the small numeric helpers every layer reads: log-softmax, a token's log-probability, and the
KL divergence between two next-token distributions given as log-probs. Pure numpy, over the last axis.
"""

from __future__ import annotations

import numpy as np


def log_softmax(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """log softmax over the last axis, computed in `dtype` (float32 by default: a (T, V) window of a 49k-152k
    vocabulary is large, and float32 keeps ~7 digits of each log-prob; ask for np.float64 where sums of many
    positions must agree with another tool's to more). Shifted by the max, so large logits never overflow."""
    x = np.asarray(x, dtype)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def token_logprob(logits: np.ndarray, tok: int) -> float:
    """log softmax(logits)[tok] of one (V,) row, without building the whole log-softmax: on a 49k vocabulary that
    array cost about half a millisecond per generated token, a few percent of a small model's decode step."""
    x = np.asarray(logits, dtype=np.float32)
    m = float(x.max())
    return float(x[tok]) - m - float(np.log(np.exp(x - m).sum(dtype=np.float64)))


def kl_divergence(p: np.ndarray, q: np.ndarray, dtype=None) -> np.ndarray:
    """KL(p || q) per position, (..., V) log-probs -> (...): sum over the vocabulary of P * (log P - log Q).

    Computed in the inputs' own dtype unless `dtype` is given (np.float64 for benchmark figures summed over many
    positions). Rounding can make a position's value a hair below zero; callers that report it clamp as they need."""
    if dtype is not None:
        p, q = np.asarray(p, dtype), np.asarray(q, dtype)
    return (np.exp(p) * (p - q)).sum(-1)


def mean_kl(p: np.ndarray, q: np.ndarray, dtype=None) -> float:
    """The mean of kl_divergence over every position."""
    return float(kl_divergence(p, q, dtype).mean())
