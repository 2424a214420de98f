"""The one generation API, in layers: generate_step -> stream_generate -> generate; plus embed.

The CLI, the server, the router and the benchmarks all call these, so timing, stop handling and
detokenisation behave identically everywhere. Each takes an optional `session=` (from `model.session()`): the
caller's own KV cache, which keeps what it holds between calls. Without one they run on the model's own session.
"""

from __future__ import annotations

import resource
import threading
import time
from dataclasses import replace
from typing import Callable, Iterator, Sequence

import numpy as np

from edgewise.errors import EdgewiseError, PromptTooLongError
from edgewise.numerics import log_softmax, token_logprob
from edgewise.runtime.backend import LoadedModel
from edgewise.runtime.detokenize import StreamingDetokenizer
from edgewise.runtime.drafts import load_draft
from edgewise.runtime.sampling import LogitsProcessor, Sampler, samplers_for
from edgewise.runtime.session import TrackedSession
from edgewise.runtime.speculative import speculate
from edgewise.runtime.types import DraftStats, GenerationConfig, GenerationResponse, GenerationResult

Prompt = str | Sequence[dict] | Sequence[int]
# KV room for a generation that keeps its cache for the next request is rounded up to this many tokens, so a
# conversation growing by a turn still fits the cache it started (onnxruntime-genai sizes its buffer at start).
REUSE_ROOM = 256
# Streamed responses carry the peak RSS read at the first token, every RSS_EVERY tokens, and at the last one.
RSS_EVERY = 32


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


def text_model(model, part: str = "decoder") -> LoadedModel:
    """The model, if it is a text model with the part asked for ("decoder", "encoder", or "any" for either);
    else a one-line error (a LiteRT graph has no text side at all)."""
    if not isinstance(model, LoadedModel):
        raise EdgewiseError(f"{model.name} is a {model.backend} graph: it has no text side; call its run() "
                            "or load a language model or encoder on ort/torch")
    if part == "decoder" and model.decoder is None:
        raise EdgewiseError(f"{model.name} is an encoder: it embeds text but cannot generate or score it")
    if part == "encoder" and model.encoder is None:
        raise EdgewiseError(f"{model.name} is a generator without an embedding head: use an encoder such as minilm-l6")
    return model


def prompt_ids(model: LoadedModel, prompt: Prompt, chat: bool = True) -> list[int]:
    """Token ids for a prompt: a string (wrapped in the chat template when the tokenizer has one and
    chat=True), a list of chat messages, or ids already (each checked against the vocabulary)."""
    text_model(model, "decoder")
    if isinstance(prompt, str):
        if chat and model.tokenizer.has_chat_template:
            return model.tokenizer.chat_ids([{"role": "user", "content": prompt}])
        return model.tokenizer.encode(prompt, add_special_tokens=True)
    prompt = list(prompt)
    if prompt and isinstance(prompt[0], dict):
        if not model.tokenizer.has_chat_template:
            raise EdgewiseError(f"{model.name} has no chat template: send a plain prompt instead of messages")
        return model.tokenizer.chat_ids(prompt)
    if all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in prompt):
        ids, vocab = [int(t) for t in prompt], model.tokenizer.vocab_size
        bad = next((t for t in ids if not 0 <= t < vocab), None)
        if bad is not None:
            raise EdgewiseError(f"token id {bad} is outside {model.name}'s vocabulary: ids run from 0 to {vocab - 1}")
        return ids
    raise EdgewiseError("prompt must be a string, a list of {role, content} messages, or a list of token ids")


def check_fits(model: LoadedModel, n_prompt: int, max_tokens: int) -> None:
    if n_prompt == 0:
        raise EdgewiseError("empty prompt: send at least one token")
    if n_prompt + max_tokens > model.context_length:
        raise PromptTooLongError(n_prompt + max_tokens, model.context_length)


def check_request(model: LoadedModel, n_prompt: int, cfg: GenerationConfig) -> None:
    """A generation request's one-line errors before any work: the prompt and answer fit the context, and the
    logit_bias names tokens of this model's vocabulary."""
    check_fits(model, n_prompt, cfg.max_tokens)
    if cfg.logit_bias and cfg.logit_bias[-1][0] >= model.tokenizer.vocab_size:
        raise EdgewiseError(f"logit_bias names token {cfg.logit_bias[-1][0]}, outside {model.name}'s vocabulary of "
                            f"{model.tokenizer.vocab_size}")


def session_for(model: LoadedModel, session: TrackedSession | None) -> TrackedSession:
    """The session a call runs on: the caller's, checked to be this model's, or the model's own."""
    dec = text_model(model, "decoder").decoder
    if session is None:
        return dec
    if not isinstance(session, TrackedSession) or session.owner is not model:
        raise EdgewiseError(f"this session was not made by {model.name}: make one with model.session()")
    return session


def generate_step(model: LoadedModel, ids: list[int], cfg: GenerationConfig, reuse_cache: bool = False, *,
                  session: TrackedSession | None = None, sampler: Sampler | None = None,
                  logits_processors: list[LogitsProcessor] | None = None, draft=None,
                  draft_stats: DraftStats | None = None) -> Iterator[tuple[int, float]]:
    """Yield (token, logprob) forever from a prompt; the caller decides when to stop.

    The next forward pass runs only when the caller asks for another token, so stopping costs nothing. A `session`
    keeps the prompt's common prefix with what its cache holds (a conversation's follow-up turns); so does the
    model's own session with reuse_cache; otherwise every prompt runs from an empty cache, as the benchmarks need.
    `sampler` and `logits_processors` default to the ones `cfg` describes (runtime.sampling); the logprob is the
    token's under the unmodified model distribution. The caller holds the session's lock (stream_generate does).
    With a `draft` (a spec string or an object from runtime.drafts) the tokens come from speculative decoding
    (runtime.speculative): the same tokens, several per forward pass, counted in `draft_stats`.
    """
    dec = session_for(model, session)
    default_sampler, default_procs = samplers_for(cfg)
    custom_sampler, sampler = sampler is not None, sampler or default_sampler
    procs = default_procs if logits_processors is None else logits_processors
    need = len(ids) + cfg.max_tokens
    if reuse_cache or session is not None:
        logits = dec.sync(ids, min(model.context_length, -(-need // REUSE_ROOM) * REUSE_ROOM))
    else:
        dec.start(need)
        logits = dec.append(ids)
    if draft is not None:
        yield from speculate(dec, ids, logits, cfg, sampler, procs, load_draft(draft, model),
                             draft_stats if draft_stats is not None else DraftStats(), need, custom_sampler)
        return
    tokens = list(ids)  # what the processors see: the prompt and every token chosen so far
    while True:
        picked = logits
        for process in procs:
            picked = process(tokens, picked)
        tok = int(sampler(picked))
        yield tok, token_logprob(logits, tok)
        tokens.append(tok)
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


def extend_text(detok: StreamingDetokenizer, text: str, tid: int, n: int, cfg: GenerationConfig,
                eos_ids, search_from: int = 0) -> tuple[str, str | None]:
    """One generated token's effect on the answer text: (the text so far, the finish reason or None). Token n ends
    the answer at end-of-sequence (unless cfg.ignore_eos), at a stop string (searched from `search_from`, cut
    before it) or at cfg.max_tokens. Shared by stream_generate and the batched rows of runtime.batch, so both end
    an answer the same way."""
    finish = None
    if tid in eos_ids and not cfg.ignore_eos:
        finish = "stop"
    else:
        text += detok.add(tid)
    if finish is not None or n >= cfg.max_tokens:
        text += detok.flush()  # the end: an incomplete character decodes as it is
    if finish is None and cfg.stop:
        hits = [h for h in (text.find(s, search_from) for s in cfg.stop) if h >= 0]
        if hits:
            text, finish = text[:min(hits)], "stop"
    if finish is None and n >= cfg.max_tokens:
        finish = "length"
    return text, finish


def stream_generate(model: LoadedModel, prompt: Prompt, cfg: GenerationConfig | None = None,
                    chat: bool = True, reuse_cache: bool = False, *, session: TrackedSession | None = None,
                    sampler: Sampler | None = None, logits_processors: list[LogitsProcessor] | None = None,
                    draft=None) -> Iterator[GenerationResponse]:
    """Stream GenerationResponse objects, one per token (the text delta may be empty while held back).
    With a `draft` (spec string or runtime.drafts object), tokens arrive several per forward pass and still stream
    one by one; each response carries the draft's running totals.

    Holds the session's lock (the model's lock without a session) while it runs: two sessions of one model stream at
    the same time, in parallel or taking turns per forward pass (`model.parallel_sessions`)."""
    cfg = cfg or GenerationConfig()
    ids = prompt_ids(model, prompt, chat=chat)
    check_request(model, len(ids), cfg)
    dec = session_for(model, session)
    keeps = reuse_cache or session is not None
    draft = load_draft(draft, model)  # a bad spec or a foreign tokenizer fails here, before any work
    stats = DraftStats() if draft is not None else None
    tok = model.tokenizer
    longest_stop = max(map(len, cfg.stop), default=0)
    with dec.lock:
        t0 = time.perf_counter()
        detok = StreamingDetokenizer(tok)
        text, emitted = "", 0  # text decoded so far; how much of it the caller has
        t_first = prompt_tps = 0.0
        cached = 0
        steps = generate_step(model, ids, cfg, reuse_cache, session=session, sampler=sampler,
                              logits_processors=logits_processors, draft=draft, draft_stats=stats)
        for n, (tid, lp) in enumerate(steps, start=1):
            now = time.perf_counter()
            if n == 1:
                t_first, cached = now, dec.reused if keeps else 0
                prompt_tps = (len(ids) - cached) / max(now - t0, 1e-9)
            # A stop string cannot start inside text already sent (its first chars would have been held back).
            text, finish = extend_text(detok, text, tid, n, cfg, tok.eos_ids, max(0, emitted - longest_stop + 1))
            end = len(text) if finish else max(len(text) - _held_back(text, cfg.stop), emitted)
            delta, emitted = text[emitted:end], max(end, emitted)
            gen_time = now - t_first
            if n == 1 or finish or n % RSS_EVERY == 0:
                rss = peak_rss_mb()  # a high-water mark read from /proc: sampled, not paid on every token
            yield GenerationResponse(
                text=delta, token_ids=[tid], logprobs=[lp], prompt_tokens=len(ids), generation_tokens=n,
                prompt_tps=prompt_tps, generation_tps=(n - 1) / gen_time if n > 1 and gen_time > 0 else 0.0,
                ttft_ms=(t_first - t0) * 1000.0, peak_rss_mb=rss, finish_reason=finish,
                cached_tokens=cached, draft=replace(stats) if stats is not None else None,
            )
            if finish:
                return


def generate(model: LoadedModel, prompt: Prompt, cfg: GenerationConfig | None = None, chat: bool = True, *,
             on_step: Callable[[GenerationResponse], None] | None = None, cancel: threading.Event | None = None,
             reuse_cache: bool = False, session: TrackedSession | None = None, sampler: Sampler | None = None,
             logits_processors: list[LogitsProcessor] | None = None, draft=None) -> GenerationResult:
    """The whole generation as one result. on_step sees every streamed response (a server forwards its deltas);
    once `cancel` is set the generation stops before its next token and finishes as "cancelled". `session`,
    `sampler`, `logits_processors` and `draft` are stream_generate's."""
    parts, ids, lps, last, seen, finish = [], [], [], None, None, None
    steps = stream_generate(model, prompt, cfg, chat=chat, reuse_cache=reuse_cache, session=session, sampler=sampler,
                            logits_processors=logits_processors, draft=draft)
    try:
        for r in steps:
            seen = r
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            parts.append(r.text)
            ids += r.token_ids
            lps += r.logprobs
            last = r
            if on_step is not None:
                on_step(r)
    finally:
        steps.close()  # releases the session's lock at once when we stop early
    stats = last or seen
    return GenerationResult(
        text="".join(parts), token_ids=ids, logprobs=lps, prompt_tokens=stats.prompt_tokens,
        generation_tokens=last.generation_tokens if last else 0, prompt_tps=stats.prompt_tps,
        generation_tps=last.generation_tps if last else 0.0, ttft_ms=stats.ttft_ms, peak_rss_mb=stats.peak_rss_mb,
        finish_reason=finish or last.finish_reason, cached_tokens=stats.cached_tokens,
        extra={"backend": model.backend, "precision": model.precision, "model": model.name},
        draft=stats.draft,
    )


def embed(model: LoadedModel, texts: Sequence[str], normalize: bool = True, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled sentence embeddings (N, D), L2-normalised by default (sentence-transformers convention)."""
    text_model(model, "encoder")
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


def forward_logits(model: LoadedModel, ids: Sequence[int], *, session: TrackedSession | None = None) -> np.ndarray:
    """Logits (T, V) float32 at every position of `ids`, from an empty cache, holding the session (the model's own
    without `session=`; a caller's session lets scorers run beside other sessions, and loses what it held).

    One pass where the backend has a `score`; otherwise token by token through the KV cache. Scoring
    (token_logprobs, the server's echo) and evaluation (perplexity, next word) all read this one function.
    """
    ids = [int(t) for t in ids]
    dec = session_for(model, session)
    check_fits(model, len(ids), 0)
    with dec.lock:
        return dec.score(ids)


def token_logprobs(model: LoadedModel, ids: Sequence[int], top: int = 0, *,
                   session: TrackedSession | None = None) -> tuple[list[float | None], list[dict]]:
    """Log-probability of each token given its prefix (None for the first), plus the `top` alternatives."""
    ids = [int(t) for t in ids]
    logits = forward_logits(model, ids, session=session)
    lps: list[float | None] = [None]
    tops: list[dict] = [{}]
    for pos in range(1, len(ids)):
        ls = log_softmax(logits[pos - 1])
        lps.append(float(ls[ids[pos]]))
        if top:
            best = np.argsort(-ls)[:top]
            tops.append({model.tokenizer.token_str(int(b)): float(ls[b]) for b in best})
    return lps, tops
