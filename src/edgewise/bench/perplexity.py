"""llama-perplexity's tokens and chunks, and the scores Edgewise's variants are compared by on exactly those.

llama-perplexity splits the tokenized text into chunks of n_ctx tokens (BOS in the first slot when the vocabulary
adds one) and scores the second half of each chunk. benchmarks/gguf_perplexity.py and benchmarks/kld_frontier.py
both score their variants this way, so a difference between two rows is the weights' and kernels' alone.

    tokens, bos = llama_tokens(gguf, text)
    cks = chunks(tokens, 512, bos)
    ref = score(full_model, cks, 512); kld, same_top = divergence(ref, score(variant, cks, 512))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgewise.numerics import kl_divergence, log_softmax


def llama_tokens(gguf: Path, text: str) -> tuple[list[int], int | None]:
    """The tokens llama-perplexity evaluates (its common_tokenize with add_special), and the BOS it puts first in
    each chunk (None when the vocabulary adds none)."""
    from edgewise.runtime.llamacpp_backend import import_llama_cpp

    llama_cpp = import_llama_cpp()
    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    with_bos = vocab.tokenize(text.encode(), add_bos=True, special=False)
    without = vocab.tokenize(text.encode(), add_bos=False, special=False)
    bos = with_bos[0] if len(with_bos) == len(without) + 1 else None
    return with_bos, bos


def chunks(tokens: list[int], n_ctx: int, bos: int | None) -> list[list[int]]:
    """Consecutive whole chunks of n_ctx tokens (a shorter tail is dropped), each starting with `bos` if given."""
    out = []
    for i in range(len(tokens) // n_ctx):
        c = list(tokens[i * n_ctx:(i + 1) * n_ctx])
        if bos is not None:
            c[0] = bos
        out.append(c)
    return out


def score(lm, cks: list[list[int]], n_ctx: int) -> list[np.ndarray]:
    """float64 log-probabilities (positions n_ctx // 2 .. n_ctx - 2 of each chunk, over the whole vocabulary)."""
    from edgewise.runtime.api import forward_logits

    first = n_ctx // 2
    return [log_softmax(forward_logits(lm, c)[first:n_ctx - 1], np.float64) for c in cks]


def divergence(ref: list[np.ndarray], q: list[np.ndarray]) -> tuple[float, float]:
    """(mean KL(ref || q) per scored position, share of positions with the same top-1), from per-chunk log-probs;
    the KL in float64 whatever the inputs' dtype."""
    k = np.concatenate([kl_divergence(r, s, np.float64) for r, s in zip(ref, q)])
    same = np.concatenate([r.argmax(-1) == s.argmax(-1) for r, s in zip(ref, q)])
    return float(k.mean()), float(same.mean())
