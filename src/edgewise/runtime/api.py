"""The one generation API, in layers: generate_step -> stream_generate -> generate; plus embed.

The CLI, the server, the router and the benchmarks all call these, so timing, stop handling and
detokenisation behave identically everywhere.
"""

from __future__ import annotations

import resource
import time
from typing import Iterator, Sequence

import numpy as np

from edgewise.errors import EdgewiseError, PromptTooLongError
from edgewise.runtime.backend import LoadedModel
from edgewise.runtime.sampling import sample
from edgewise.runtime.types import GenerationConfig, GenerationResponse, GenerationResult

Prompt = str | Sequence[dict] | Sequence[int]


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark in MiB (weights and KV cache included).

    VmHWM belongs to the current address space; ru_maxrss survives exec on Linux, so a child started
    from a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prompt_ids(model: LoadedModel, prompt: Prompt, chat: bool = True) -> list[int]:
    """Token ids for a prompt: a string (wrapped in the chat template when the tokenizer has one and
    chat=True), a list of chat messages, or ids already."""
    if isinstance(prompt, str):
        if chat and model.tokenizer.has_chat_template:
            return model.tokenizer.chat_ids([{"role": "user", "content": prompt}])
        return model.tokenizer.encode(prompt, add_special_tokens=True)
    prompt = list(prompt)
    if prompt and isinstance(prompt[0], dict):
        if not model.tokenizer.has_chat_template:
            raise EdgewiseError(f"{model.name} has no chat template: send a plain prompt instead of messages")
        return model.tokenizer.chat_ids(prompt)
    if all(isinstance(t, (int, np.integer)) for t in prompt):
        return [int(t) for t in prompt]
    raise EdgewiseError("prompt must be a string, a list of {role, content} messages, or a list of token ids")


def check_fits(model: LoadedModel, n_prompt: int, max_tokens: int) -> None:
    if n_prompt == 0:
        raise EdgewiseError("empty prompt: send at least one token")
    if n_prompt + max_tokens > model.context_length:
        raise PromptTooLongError(n_prompt + max_tokens, model.context_length)


def generate_step(model: LoadedModel, ids: list[int], cfg: GenerationConfig) -> Iterator[tuple[int, float]]:
    """Yield (token, logprob) forever from a prompt; the caller decides when to stop.

    The next forward pass runs only when the caller asks for another token, so stopping costs nothing.
    """
    if model.decoder is None:
        raise EdgewiseError(f"{model.name} is an encoder: it embeds text but cannot generate")
    dec = model.decoder
    dec.start(len(ids) + cfg.max_tokens)
    logits = dec.append(ids)
    rng = np.random.default_rng(cfg.seed)
    while True:
        tok, lp = sample(logits, cfg, rng)
        yield tok, lp
        logits = dec.append([tok])


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing chars might start a stop string (hold them until we know)."""
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return hold


def stream_generate(model: LoadedModel, prompt: Prompt, cfg: GenerationConfig | None = None,
                    chat: bool = True) -> Iterator[GenerationResponse]:
    """Stream GenerationResponse objects, one per token (the text delta may be empty while held back)."""
    cfg = cfg or GenerationConfig()
    ids = prompt_ids(model, prompt, chat=chat)
    check_fits(model, len(ids), cfg.max_tokens)
    tok = model.tokenizer
    with model.lock:
        t0 = time.perf_counter()
        out_ids: list[int] = []
        emitted = ""  # text already sent to the caller
        t_first = prompt_tps = 0.0
        for n, (tid, lp) in enumerate(generate_step(model, ids, cfg), start=1):
            now = time.perf_counter()
            if n == 1:
                t_first = now
                prompt_tps = len(ids) / max(now - t0, 1e-9)
            finish = None
            if tid in tok.eos_ids and not cfg.ignore_eos:
                finish = "stop"
            else:
                out_ids.append(tid)
            text = tok.decode(out_ids)
            if finish is None and cfg.stop:
                hits = [text.find(s) for s in cfg.stop]
                hits = [h for h in hits if h >= 0]
                if hits:
                    text, finish = text[: min(hits)], "stop"
            if finish is None and n >= cfg.max_tokens:
                finish = "length"
            if finish is None:
                # Hold back an incomplete UTF-8 sequence and any possible stop-string prefix.
                safe = len(text) - (1 if text.endswith("\ufffd") else 0) - _held_back(text, cfg.stop)
                text = text[:max(safe, len(emitted))]
            delta, emitted = text[len(emitted):], text
            gen_time = now - t_first
            yield GenerationResponse(
                text=delta, token_ids=[tid], logprobs=[lp], prompt_tokens=len(ids), generation_tokens=n,
                prompt_tps=prompt_tps, generation_tps=(n - 1) / gen_time if n > 1 and gen_time > 0 else 0.0,
                ttft_ms=(t_first - t0) * 1000.0, peak_rss_mb=peak_rss_mb(), finish_reason=finish,
            )
            if finish:
                return


def generate(model: LoadedModel, prompt: Prompt, cfg: GenerationConfig | None = None,
             chat: bool = True) -> GenerationResult:
    parts, ids, lps, last = [], [], [], None
    for r in stream_generate(model, prompt, cfg, chat=chat):
        parts.append(r.text)
        ids += r.token_ids
        lps += r.logprobs
        last = r
    return GenerationResult(
        text="".join(parts), token_ids=ids, logprobs=lps, prompt_tokens=last.prompt_tokens,
        generation_tokens=last.generation_tokens, prompt_tps=last.prompt_tps, generation_tps=last.generation_tps,
        ttft_ms=last.ttft_ms, peak_rss_mb=last.peak_rss_mb, finish_reason=last.finish_reason,
        extra={"backend": model.backend, "precision": model.precision, "model": model.name},
    )


def embed(model: LoadedModel, texts: Sequence[str], normalize: bool = True, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled sentence embeddings (N, D), L2-normalised by default (sentence-transformers convention)."""
    if model.encoder is None:
        raise EdgewiseError(f"{model.name} is a generator without an embedding head: use an encoder such as minilm-l6")
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise EdgewiseError("nothing to embed: pass at least one text")
    out = []
    with model.lock:
        for i in range(0, len(texts), batch_size):
            enc = model.tokenizer.batch(list(texts[i:i + batch_size]), max_length=model.context_length)
            ids = enc["input_ids"].astype(np.int64)
            mask = enc["attention_mask"].astype(np.int64)
            types = enc.get("token_type_ids", np.zeros_like(ids)).astype(np.int64)
            hidden = model.encoder.hidden_states(ids, mask, types)  # (N, T, D)
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out.append(pooled)
    emb = np.concatenate(out).astype(np.float32)
    if normalize:
        emb /= np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
    return emb


def token_logprobs(model: LoadedModel, ids: Sequence[int], top: int = 0) -> tuple[list[float | None], list[dict]]:
    """Log-probability of each token given its prefix (None for the first), plus the `top` alternatives.

    Uses the backend's one-pass `score` when it has one; otherwise feeds tokens through the KV cache.
    """
    from edgewise.runtime.sampling import log_softmax

    ids = [int(t) for t in ids]
    if model.decoder is None:
        raise EdgewiseError(f"{model.name} is an encoder: it cannot score text")
    check_fits(model, len(ids), 0)
    with model.lock:
        dec = model.decoder
        if hasattr(dec, "score"):
            logits = dec.score(ids)
        else:
            dec.start(len(ids))
            logits = np.stack([dec.append([t]) for t in ids])
    lps: list[float | None] = [None]
    tops: list[dict] = [{}]
    for pos in range(1, len(ids)):
        ls = log_softmax(logits[pos - 1])
        lps.append(float(ls[ids[pos]]))
        if top:
            best = np.argsort(-ls)[:top]
            tops.append({model.tokenizer.token_str(int(b)): float(ls[b]) for b in best})
    return lps, tops
