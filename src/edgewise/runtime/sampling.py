"""Token choice, composed as mlx-lm composes it: logits processors reshape the logits, then a sampler picks a token.

`make_sampler(...)` returns `sampler(logits) -> token id` (greedy, temperature, top-k, top-p; it owns its seeded
generator, so one sampler serves one generation); `make_logits_processors(...)` returns a list of
`processor(tokens, logits) -> logits` (logit bias, repetition penalty). `samplers_for(cfg)` builds both from a
GenerationConfig; the generation loop in api.py only calls them. Pure numpy, shared by all backends.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from edgewise.numerics import token_logprob

Sampler = Callable[[np.ndarray], int]
LogitsProcessor = Callable[[Sequence[int], np.ndarray], np.ndarray]


def _choose(logits: np.ndarray, temperature: float, top_k: int, top_p: float, rng: np.random.Generator) -> int:
    """One draw from softmax(logits / temperature), cut to the top_k tokens and the top_p mass."""
    # Shift before dividing: a tiny temperature (1e-309) then sends the others to -inf, never inf - inf = nan.
    # In place on one float64 copy: at a 152k vocabulary every full-size temporary costs a fraction of a millisecond.
    x = logits.astype(np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        np.subtract(x, x.max(), out=x)
        x /= temperature
    if top_k and top_k < x.size:
        kth = np.partition(x, -top_k)[-top_k]
        x[x < kth] = -np.inf
    probs = np.exp(x, out=x)
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        cum = np.cumsum(probs[order])
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        cut = int(np.searchsorted(cum, top_p)) + 1
        keep = np.zeros_like(probs, dtype=bool)
        keep[order[:cut]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    # rng.choice(size, p=probs) draws exactly this (the cumulative sum, scaled to end at 1, searched with one uniform
    # draw) after checking p, which costs as much again at this size; the one check that matters is kept.
    cdf = np.cumsum(probs)
    if not (np.isfinite(cdf[-1]) and cdf[-1] > 0):
        raise ValueError("the logits give no finite probability to sample from (NaN or all -inf)")
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))


def make_sampler(temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, seed: int | None = None) -> Sampler:
    """`sampler(logits) -> token id`. temperature 0 is greedy (argmax); otherwise a seeded draw, reproducible for
    one seed: the sampler owns its generator, so make one per generation."""
    if temperature == 0.0:
        return lambda logits: int(np.argmax(logits))
    rng = np.random.default_rng(seed)
    return lambda logits: _choose(logits, temperature, top_k, top_p, rng)


def logit_bias_processor(bias: dict[int, float]) -> LogitsProcessor:
    ids = np.fromiter(bias, dtype=np.int64)
    add = np.fromiter(bias.values(), dtype=np.float64)

    def process(tokens: Sequence[int], logits: np.ndarray) -> np.ndarray:
        out = logits.astype(np.float64)
        out[ids] += add
        return out
    return process


def repetition_penalty_processor(penalty: float, context_size: int = 20) -> LogitsProcessor:
    """CTRL's penalty, as mlx-lm and transformers apply it: each of the last `context_size` tokens' logits is
    divided by `penalty` when positive, multiplied when negative."""

    def process(tokens: Sequence[int], logits: np.ndarray) -> np.ndarray:
        recent = np.unique(np.asarray(tokens[-context_size:], dtype=np.int64))
        if recent.size == 0:
            return logits
        out = logits.astype(np.float64)
        sel = out[recent]
        out[recent] = np.where(sel > 0, sel / penalty, sel * penalty)
        return out
    return process


def make_logits_processors(logit_bias: dict[int, float] | None = None, repetition_penalty: float | None = None,
                           repetition_context_size: int = 20) -> list[LogitsProcessor]:
    """The processors each step's logits pass through, in order, before the sampler: none by default."""
    procs: list[LogitsProcessor] = []
    if logit_bias:
        procs.append(logit_bias_processor(dict(logit_bias)))
    if repetition_penalty is not None and repetition_penalty != 1.0:
        procs.append(repetition_penalty_processor(repetition_penalty, repetition_context_size))
    return procs


def samplers_for(cfg) -> tuple[Sampler, list[LogitsProcessor]]:
    """The sampler and logits processors a GenerationConfig asks for."""
    return (make_sampler(cfg.temperature, cfg.top_p, cfg.top_k, cfg.seed),
            make_logits_processors(dict(cfg.logit_bias), cfg.repetition_penalty, cfg.repetition_context_size))


def sample(logits: np.ndarray, cfg, rng: np.random.Generator) -> tuple[int, float]:
    """Pick one token with `cfg`'s settings and the caller's generator; return it with its log-probability under
    the unmodified model distribution. (The generation loop builds a sampler once instead: make_sampler.)"""
    tok = int(np.argmax(logits)) if cfg.temperature == 0.0 else _choose(logits, cfg.temperature, cfg.top_k, cfg.top_p,
                                                                         rng)
    return tok, token_logprob(logits, tok)
