"""What every handler shares: the loaded models, their sampling defaults, the admission gate, the sessions, metrics
and the worker pool; and the one way a handler runs a generation (runtime.generate on a session of its own, counted
in the metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from edgewise.errors import EdgewiseError
from edgewise.runtime import GenerationConfig, LoadedModel, generate, prompt_ids
from edgewise.runtime.drafts import load_draft
from edgewise.runtime.recommended import SamplingDefaults, recommended_sampling
from edgewise.runtime.types import DraftStats, GenerationResponse, GenerationResult
from edgewise.serve.errors import ApiError, bad_request
from edgewise.serve.gate import AdmissionGate
from edgewise.serve.metrics import Metrics
from edgewise.serve.requests import Sampling
from edgewise.serve.sessions import SessionPool

EDGE, NO_CLOUD = "edge", "no cloud configured"


@dataclass
class ServerState:
    generator: LoadedModel | None
    encoder: LoadedModel | None
    default_max_tokens: int = 256
    api_key: str | None = None
    router: Any = None  # edgewise.route.Router when --cloud is given
    max_queue: int = 8
    queue_timeout_s: float = 120.0
    request_log: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    created: int = field(default_factory=lambda: int(time.time()))
    sampling: SamplingDefaults | None = None  # the generator's recommended settings (read at start when None)
    parallel: int = 2  # generations running at once, each on its own session
    max_sessions: int = 4  # sessions kept for follow-up turns
    draft: str | None = None  # --draft: a speculative-decoding source (runtime.drafts), built once here
    threads: int | None = None  # a model draft's threads where its spec names none (the server's --threads)

    def __post_init__(self):
        if not 1 <= self.parallel <= self.max_sessions:
            raise EdgewiseError(f"parallel ({self.parallel}) must be from 1 to max_sessions ({self.max_sessions})")
        self.gate = AdmissionGate(self.max_queue, self.queue_timeout_s, self.metrics, slots=self.parallel)
        self.sessions = SessionPool(self.generator, self.max_sessions) if self.generator is not None else None
        self.log_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=self.max_queue + 2, thread_name_prefix="edgewise-gen")
        if self.sampling is None:
            self.sampling = recommended_sampling(self.generator.source) if self.generator else SamplingDefaults()
        # Built before the server listens: a bad spec or a foreign tokenizer stops the start with one line.
        self.drafts = DraftSlots(self.generator, self.draft, self.parallel, self.threads) if self.draft else None

    def names(self, lm: LoadedModel | None) -> set[str]:
        return {lm.name, lm.source.ref, lm.source.path.name} if lm else set()

    def model_for(self, name: str, kind: str) -> LoadedModel:
        for lm in (self.generator, self.encoder):
            if lm is not None and name in self.names(lm):
                if kind == "generate" and lm.decoder is None:
                    raise bad_request(f"model {name!r} is an encoder: use /v1/embeddings", param="model")
                if kind == "embed" and lm.encoder is None:
                    raise bad_request(f"model {name!r} cannot embed: start the server with --embed-model minilm-l6",
                                      param="model")
                return lm
        known = sorted(self.names(self.generator) | self.names(self.encoder))
        raise ApiError(404, f"model {name!r} not found: this server serves {', '.join(known)}",
                       param="model", code="model_not_found")

    async def run_in_pool(self, fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def prompt(self, lm: LoadedModel, prompt, param: str, chat: bool = True) -> list[int]:
        """Token ids of a request's prompt; a prompt the model cannot take is a 400 naming `param`."""
        try:
            ids = prompt_ids(lm, prompt, chat=chat)
        except EdgewiseError as e:
            raise bad_request(str(e), param=param) from None
        if not ids:
            raise bad_request(f"'{param}' gives no tokens: send some text", param=param)
        return ids

    def gen_config(self, lm: LoadedModel, s: Sampling, n_prompt: int, param: str) -> GenerationConfig:
        """The request's settings; each one it leaves out is the model's recommended one (GET /v1/models)."""
        room = lm.context_length - n_prompt
        if room <= 0 or (s.max_tokens is not None and s.max_tokens > room):
            raise ApiError(400, f"prompt is {n_prompt} tokens and max_tokens is {s.max_tokens or self.default_max_tokens}"
                                f", but the context holds {lm.context_length}: shorten the prompt or lower max_tokens",
                           param=param, code="context_length_exceeded")
        d = self.sampling
        return GenerationConfig(
            max_tokens=s.max_tokens if s.max_tokens is not None else min(self.default_max_tokens, room),
            temperature=d.temperature if s.temperature is None else s.temperature,
            top_k=d.top_k if s.top_k is None else s.top_k, top_p=d.top_p if s.top_p is None else s.top_p,
            seed=s.seed, stop=s.stop)

    def draft_for(self, lm: LoadedModel):
        """The draft a generation on `lm` uses (None without --draft): one per slot, held until the `with` ends."""
        if self.drafts is None or lm is not self.generator:
            return contextlib.nullcontext(None)
        return self.drafts.take()

    def generate(self, lm: LoadedModel, ids: list[int], cfg: GenerationConfig, chat: bool = True,
                 cancel: threading.Event | None = None,
                 on_step: Callable[[GenerationResponse], None] | None = None) -> GenerationResult:
        """One generation on a worker thread, holding a generation slot and a session of its own. The session keeps
        the prompt's KV entries for the next request, so a follow-up turn computes only its new tokens."""
        self.gate.acquire_model()
        try:
            session, ok = self.sessions.checkout(ids), False
            try:
                with self.draft_for(lm) as draft:
                    res = generate(lm, ids, cfg, chat=chat, on_step=on_step, cancel=cancel, session=session,
                                   draft=draft)
                ok = True
            finally:
                self.sessions.checkin(session, ok)
        finally:
            self.gate.release_model()
        if res.finish_reason == "cancelled":
            self.metrics.add("cancelled")
        self.metrics.add("generated_tokens", res.generation_tokens)
        self.metrics.add("prompt_tokens", res.prompt_tokens)
        return res


class DraftSlots:
    """The --draft source, one per generation slot. A model draft keeps one session (KV cache) of its own, and two
    generations sharing it would take turns on it for their whole length; a copy (dataclasses.replace) shares the
    loaded weights and opens a session of its own. Lookup holds no state, so its copies cost nothing."""

    def __init__(self, target: LoadedModel | None, spec: str, slots: int, threads: int | None = None):
        if target is None:
            raise EdgewiseError(f"--draft {spec} needs a generator to draft for: serve a causal LM, or drop --draft")
        first = load_draft(spec, target, threads=threads)
        copies = [dataclasses.replace(first) if dataclasses.is_dataclass(first) else first for _ in range(slots - 1)]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for d in [first, *copies]:
            self._free.put(d)

    @contextlib.contextmanager
    def take(self):
        # Never waits: the caller holds one of the gate's `slots` generation slots, and there are as many drafts.
        d = self._free.get()
        try:
            yield d
        finally:
            self._free.put(d)


def usage(n_prompt: int, n_out: int, cached: int = 0, draft: DraftStats | None = None) -> dict:
    """OpenAI's usage object; with a draft, its totals too (`usage.draft`, docs/speculative.md "Serving")."""
    out = {"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out,
           "prompt_tokens_details": {"cached_tokens": cached}}
    if draft is not None:
        out["draft"] = draft.as_dict()
    return out
