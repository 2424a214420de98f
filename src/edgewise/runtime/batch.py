"""n completions of one prompt (OpenAI's `n`), decoded side by side in one batch where the backend can.

A decode step on CPU reads every weight once whatever the batch: on Qwen2.5-Coder-0.5B (int4, 2 threads) 4 long
samples decoded 2.4 times faster as one batch than in turn (BENCHMARKS §3, benchmarks/sample_batch.py). The price is the prompt: each
row prefills it again (onnxruntime-genai cannot share one prompt's cache across a batch), so for short answers after
long prompts one session that keeps the prompt and samples in turn is cheaper: `batch_pays` says which.

Every row has its own sampler and seed (runtime.sampling, as generate's): the batch only computes the logits. Rows
run the weights as a matrix product instead of a vector one, so their logits can differ from a single row's in the
last bits: a row is a draw from the same distribution as `generate` with its seed, not always the same draw.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Sequence

from edgewise.errors import EdgewiseError
from edgewise.numerics import token_logprob
from edgewise.runtime.api import (Prompt, check_request, extend_text, generate, peak_rss_mb, prompt_ids,
                                  text_model)
from edgewise.runtime.backend import LoadedModel
from edgewise.runtime.detokenize import StreamingDetokenizer
from edgewise.runtime.sampling import samplers_for
from edgewise.runtime.types import GenerationConfig, GenerationResult

# The answer length from which batching pays: below it the rows' extra prefills cost more than the decode steps
# they share (measured on Qwen2.5-Coder-0.5B, 4 rows: 8-token answers to ~200-token prompts took 0.7 s in turn from
# one cached prompt; a 320-token answer cap is where the batch halves the time).
BATCH_MIN_TOKENS = 64


def batch_pays(model: LoadedModel, cfg: GenerationConfig, n: int) -> bool:
    """Whether `generate_many` decodes these n rows as one batch: the backend can, the answers may run long, and
    they end at end-of-sequence (a batched onnxruntime-genai row ends there whatever we ask: no ignore_eos)."""
    return n > 1 and _can_batch(model, cfg) and cfg.max_tokens >= BATCH_MIN_TOKENS


def _can_batch(model: LoadedModel, cfg: GenerationConfig) -> bool:
    return hasattr(text_model(model, "decoder").decoder.engine, "batch") and not cfg.ignore_eos


def generate_many(model: LoadedModel, prompt: Prompt, cfg: GenerationConfig, seeds: Sequence[int],
                  chat: bool = True, batch: bool | None = None) -> list[GenerationResult]:
    """One completion of `prompt` per seed, with cfg's settings (cfg.seed is replaced by each seed). Decoded as one
    batch where `batch_pays` (or `batch=True`, where the backend can batch at all); otherwise in turn on one session
    that keeps the prompt between them."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise EdgewiseError("generate_many needs at least one seed (one per completion)")
    ids = prompt_ids(model, prompt, chat=chat)
    check_request(model, len(ids), cfg)
    if batch and not _can_batch(model, cfg):
        raise EdgewiseError(f"the {model.backend} backend cannot decode a batch (or ignore_eos is set): "
                            "leave batch unset to generate in turn")
    if not (batch if batch is not None else batch_pays(model, cfg, len(seeds))):
        return _in_turn(model, ids, cfg, seeds)
    return _batched(model, ids, cfg, seeds)


def _in_turn(model: LoadedModel, ids: list[int], cfg: GenerationConfig, seeds: list[int]) -> list[GenerationResult]:
    try:
        session = model.session()
    except EdgewiseError:  # a backend with one session per model: its own cache, kept between calls
        session = None
    return [generate(model, ids, replace(cfg, seed=s), chat=False, session=session, reuse_cache=session is None)
            for s in seeds]


def _batched(model: LoadedModel, ids: list[int], cfg: GenerationConfig, seeds: list[int]) -> list[GenerationResult]:
    tok = model.tokenizer
    n = len(seeds)
    picks = [samplers_for(replace(cfg, seed=s)) for s in seeds]
    seen = [list(ids) for _ in seeds]  # what each row's logits processors see
    out = [[] for _ in seeds]
    lps = [[] for _ in seeds]
    detoks = [StreamingDetokenizer(tok) for _ in seeds]
    texts = [""] * n
    finish: list[str | None] = [None] * n
    filler = min(tok.eos_ids) if tok.eos_ids else 0  # fed to finished rows, whose logits nobody reads
    t0 = time.perf_counter()
    rows = text_model(model, "decoder").decoder.engine.batch(n, len(ids) + cfg.max_tokens)
    logits = rows.start(ids)
    t_first = time.perf_counter()
    for step in range(1, cfg.max_tokens + 1):
        chosen = []
        for i, (sampler, procs) in enumerate(picks):
            if finish[i] is not None:
                chosen.append(filler)
                continue
            picked = logits[i]
            for process in procs:
                picked = process(seen[i], picked)
            t = int(sampler(picked))
            chosen.append(t)
            out[i].append(t)
            lps[i].append(token_logprob(logits[i], t))
            seen[i].append(t)
            texts[i], finish[i] = extend_text(detoks[i], texts[i], t, step, cfg, tok.eos_ids)
        if all(f is not None for f in finish):
            break
        logits = rows.step(chosen, live=[f is None for f in finish])
    seconds = time.perf_counter() - t0
    rss = peak_rss_mb()
    gen_time = time.perf_counter() - t_first
    extra = {"backend": model.backend, "precision": model.precision, "model": model.name, "batch": n,
             "batch_seconds": seconds}
    return [GenerationResult(
        text=texts[i], token_ids=out[i], logprobs=lps[i], prompt_tokens=len(ids), generation_tokens=len(out[i]),
        prompt_tps=n * len(ids) / max(t_first - t0, 1e-9),
        generation_tps=(len(out[i]) - 1) / gen_time if len(out[i]) > 1 and gen_time > 0 else 0.0,
        ttft_ms=(t_first - t0) * 1000.0, peak_rss_mb=rss, finish_reason=finish[i], cached_tokens=0,
        extra=dict(extra)) for i in range(n)]
