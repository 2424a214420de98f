"""Token choice from one logits vector: greedy, temperature, top-k, top-p. Pure numpy, shared by all backends."""

from __future__ import annotations

import numpy as np

from edgewise.runtime.types import GenerationConfig


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64, copy=False)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def sample(logits: np.ndarray, cfg: GenerationConfig, rng: np.random.Generator) -> tuple[int, float]:
    """Pick a token; return it with its log-probability under the unmodified model distribution."""
    logprobs = log_softmax(logits)
    if cfg.greedy:
        tok = int(np.argmax(logits))
        return tok, float(logprobs[tok])
    # Shift before dividing: a tiny temperature (1e-309) then sends the others to -inf, never inf - inf = nan.
    x = logits.astype(np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        scaled = (x - x.max()) / cfg.temperature
    if cfg.top_k and cfg.top_k < scaled.size:
        kth = np.partition(scaled, -cfg.top_k)[-cfg.top_k]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled)
    probs /= probs.sum()
    if cfg.top_p < 1.0:
        order = np.argsort(-probs)
        cum = np.cumsum(probs[order])
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        cut = int(np.searchsorted(cum, cfg.top_p)) + 1
        keep = np.zeros_like(probs, dtype=bool)
        keep[order[:cut]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    tok = int(rng.choice(probs.size, p=probs))
    return tok, float(logprobs[tok])
