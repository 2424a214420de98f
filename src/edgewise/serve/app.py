"""The OpenAI-compatible HTTP app. Small and strict: a route table, per-field validation, JSON errors.

Every generation goes through edgewise.runtime.stream_generate (the same loop as the CLI and the
benchmarks); the hybrid router, when configured, decides who answers chat requests.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from edgewise.errors import EdgewiseError, PromptTooLongError
from edgewise.runtime import GenerationConfig, LoadedModel, embed, prompt_ids, stream_generate
from edgewise.runtime.api import check_fits, token_logprobs
from edgewise.serve.errors import ApiError, bad_request
from edgewise.serve.gate import AdmissionGate
from edgewise.serve.metrics import Metrics
from edgewise.serve.requests import (Sampling, parse_chat, parse_completion, parse_embeddings, parse_json)

EDGE, NO_CLOUD = "edge", "no cloud configured"


class _StreamJob:
    """Ties a streaming response to its worker: however the response ends (done, error, client gone, never
    started), the generation is cancelled and the admission slot is released exactly once."""

    def __init__(self, release):
        self.cancel = threading.Event()
        self.fut = None
        self._release = release
        self._done = threading.Lock()
        self._released = False

    def _release_once(self, *_):
        with self._done:
            if self._released:
                return
            self._released = True
        self._release()

    def close(self) -> None:
        self.cancel.set()
        if self.fut is not None and not self.fut.done():
            self.fut.add_done_callback(self._release_once)
        else:
            self._release_once()


class GuardedStream(StreamingResponse):
    def __init__(self, content, job: _StreamJob, **kw):
        super().__init__(content, **kw)
        self.job = job

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.close()


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

    def __post_init__(self):
        self.gate = AdmissionGate(self.max_queue, self.queue_timeout_s, self.metrics)
        self.log_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=self.max_queue + 2, thread_name_prefix="edgewise-gen")

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


def _gen_config(lm: LoadedModel, s: Sampling, n_prompt: int, default_max: int) -> GenerationConfig:
    room = lm.context_length - n_prompt
    if room <= 0 or (s.max_tokens is not None and s.max_tokens > room):
        raise ApiError(400, f"prompt is {n_prompt} tokens and max_tokens is {s.max_tokens or default_max}, "
                            f"but the context holds {lm.context_length}: shorten the prompt or lower max_tokens",
                       param="messages", code="context_length_exceeded")
    max_tokens = s.max_tokens if s.max_tokens is not None else min(default_max, room)
    return GenerationConfig(max_tokens=max_tokens, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                            seed=s.seed, stop=s.stop)


def _route_headers(answered_by: str, reason: str) -> dict[str, str]:
    from edgewise.route.types import RouteResult

    return RouteResult("", answered_by, reason).headers()


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="Edgewise", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.edgewise = state
    m = state.metrics

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        if state.api_key and path.startswith("/v1/"):
            auth = request.headers.get("authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {state.api_key}".encode()):
                resp = ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>",
                                type="authentication_error", code="invalid_api_key").response()
                m.observe(path, 401, time.perf_counter() - t0)
                return resp
        if state.request_log and request.method == "POST":
            # A user-visible audit of exactly what this server was sent (the PCC-style request log).
            body = await request.body()
            with state.log_lock, open(state.request_log, "a") as f:
                f.write(json.dumps({"t": time.time(), "path": path, "body": body.decode("utf-8", "replace")}) + "\n")
        try:
            resp = await call_next(request)
        except Exception as e:  # noqa: BLE001 - never a traceback to the client, never a dead server
            resp = ApiError(500, f"internal error ({type(e).__name__}); see the server log",
                            type="server_error").response()
        m.observe(path, resp.status_code, time.perf_counter() - t0)
        return resp

    @app.exception_handler(ApiError)
    async def api_error(_, e: ApiError):
        return e.response()

    @app.exception_handler(EdgewiseError)
    async def domain_error(_, e: EdgewiseError):
        return bad_request(str(e)).response()

    @app.exception_handler(404)
    async def not_found(request: Request, _):
        return ApiError(404, f"no route {request.method} {request.url.path}", code="not_found").response()

    @app.exception_handler(405)
    async def bad_method(request: Request, _):
        return ApiError(405, f"{request.method} is not allowed on {request.url.path}").response()

    @app.get("/health")
    async def health():
        return {"status": "ok", "generator": state.generator.name if state.generator else None,
                "encoder": state.encoder.name if state.encoder else None,
                "queue_depth": m.queue_depth, "router": state.router is not None}

    @app.get("/metrics")
    async def metrics():
        text = m.render()
        if state.router is not None:
            stats = state.router.stats()
            br = stats.get("breaker") or {}
            if "state" in br:
                text += ("# HELP edgewise_cloud_circuit_open 1 while the cloud circuit breaker is open.\n"
                         "# TYPE edgewise_cloud_circuit_open gauge\n"
                         f"edgewise_cloud_circuit_open {int(br['state'] == 'open')}\n")
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models():
        data = []
        for lm in (state.generator, state.encoder):
            if lm is not None:
                data.append({"id": lm.name, "object": "model", "created": state.created, "owned_by": "edgewise",
                             "backend": lm.backend, "precision": lm.precision, "context_length": lm.context_length})
        return {"object": "list", "data": data}

    async def run_in_pool(fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(state.pool, fn, *args)

    def generate_blocking(lm, prompt, cfg, cancel: threading.Event | None = None, on_step=None, chat=True):
        """Run one generation on the worker pool, holding the model; returns (text, ids, logprobs, last)."""
        state.gate.acquire_model()
        try:
            parts, ids, lps, last = [], [], [], None
            for r in stream_generate(lm, prompt, cfg, chat=chat):
                if cancel is not None and cancel.is_set():
                    m.add("cancelled")
                    break
                parts.append(r.text)
                ids += r.token_ids
                lps += r.logprobs
                last = r
                if on_step:
                    on_step(r)
            if last is not None:
                m.add("generated_tokens", last.generation_tokens)
                m.add("prompt_tokens", last.prompt_tokens)
            return "".join(parts), ids, lps, last
        finally:
            state.gate.release_model()

    # ---------------------------------------------------------------- chat
    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = parse_chat(parse_json(await request.body()))
        lm = state.model_for(req.model, "generate")
        ids = prompt_ids(lm, req.messages)
        cfg = _gen_config(lm, req.sampling, len(ids), state.default_max_tokens)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        state.gate.admit()
        if req.sampling.stream:
            route_stream = None
            if state.router is not None:
                # Decide before the first byte: who answers goes in the response headers.
                try:
                    route_stream = await run_in_pool(
                        lambda: state.router.open_stream(req.messages, lambda _r: _edge_answer(lm, ids, cfg),
                                                         request_id=cid))
                except BaseException:
                    state.gate.release()
                    raise
            return _stream_chat(req, lm, ids, cfg, cid, created, route_stream)
        try:
            return await run_in_pool(_chat_blocking, req, lm, ids, cfg, cid, created)
        finally:
            state.gate.release()

    def _edge_answer(lm, ids, cfg):
        from edgewise.runtime.types import GenerationResult

        text, out_ids, lps, last = generate_blocking(lm, ids, cfg)
        return GenerationResult(text=text, token_ids=out_ids, logprobs=lps, prompt_tokens=last.prompt_tokens,
                                generation_tokens=last.generation_tokens, prompt_tps=last.prompt_tps,
                                generation_tps=last.generation_tps, ttft_ms=last.ttft_ms,
                                peak_rss_mb=last.peak_rss_mb, finish_reason=last.finish_reason)

    def _chat_blocking(req, lm, ids, cfg, cid, created):
        answered_by, reason, extra = EDGE, NO_CLOUD, {}
        if state.router is not None:
            res = state.router.route(req.messages, lambda _r: _edge_answer(lm, ids, cfg), request_id=cid)
            text, answered_by, reason = res.text, res.answered_by, res.reason
            edge = res.edge
            extra = res.route_info()
            finish = edge.finish_reason if (edge is not None and answered_by != "cloud") else "stop"
        else:
            edge = _edge_answer(lm, ids, cfg)
            text, finish = edge.text, edge.finish_reason
        m.add("answered_by", label=answered_by)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                  "logprobs": None}
        if req.logprobs and edge is not None and answered_by != "cloud":
            choice["logprobs"] = {"content": [
                {"token": lm.tokenizer.token_str(t), "logprob": lp, "bytes": list(lm.tokenizer.token_str(t).encode()),
                 "top_logprobs": []} for t, lp in zip(edge.token_ids, edge.logprobs)]}
        n_out = edge.generation_tokens if edge is not None else 0
        body = {"id": cid, "object": "chat.completion", "created": created, "model": lm.name, "choices": [choice],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": n_out, "total_tokens": len(ids) + n_out},
                "edgewise": {"answered_by": answered_by, "reason": reason, **extra}}
        return JSONResponse(body, headers=_route_headers(answered_by, reason))

    def _stream_chat(req, lm, ids, cfg, cid, created, route_stream=None):
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        job = _StreamJob(state.gate.release)
        cancel = job.cancel

        def put(kind, item=None):
            loop.call_soon_threadsafe(q.put_nowait, (kind, item))

        def chunk(delta: dict, finish=None, **more) -> str:
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": lm.name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **more}
            return f"data: {json.dumps(body)}\n\n"

        route_info = ({"answered_by": route_stream.answered_by, "reason": route_stream.reason} if route_stream
                      else {"answered_by": EDGE, "reason": NO_CLOUD})

        def worker():
            try:
                if route_stream is None:
                    _, _, _, last = generate_blocking(lm, ids, cfg, cancel, on_step=lambda r: put("delta", r.text))
                    put("done", (last.finish_reason if last else "stop", last))
                    return
                it = iter(route_stream)
                try:
                    for piece in it:
                        if cancel.is_set():
                            m.add("cancelled")
                            break
                        put("delta", piece)
                finally:
                    it.close()  # closes the cloud stream too when the client left
                    if route_stream.result is None:
                        route_stream.close()
                res = route_stream.result
                route_info.update(res.route_info())
                edge = res.edge
                put("done", (edge.finish_reason if edge is not None and res.answered_by != "cloud" else "stop", edge))
            except Exception as e:  # noqa: BLE001 - reported in-stream, the server stays up
                put("error", e)

        async def events():
            job.fut = loop.run_in_executor(state.pool, worker)
            try:
                yield chunk({"role": "assistant", "content": ""})
                while True:
                    kind, item = await q.get()
                    if kind == "delta":
                        if item:
                            yield chunk({"content": item})
                    elif kind == "error":
                        err = {"error": {"message": f"generation failed: {item}", "type": "server_error"}}
                        yield f"data: {json.dumps(err)}\n\n"
                        break
                    else:
                        finish, last = item
                        m.add("answered_by", label=route_info["answered_by"])
                        yield chunk({}, finish, edgewise=dict(route_info))
                        if req.include_usage and last is not None:
                            usage = {"prompt_tokens": last.prompt_tokens, "completion_tokens": last.generation_tokens,
                                     "total_tokens": last.prompt_tokens + last.generation_tokens}
                            yield f"data: {json.dumps({'id': cid, 'object': 'chat.completion.chunk', 'created': created, 'model': lm.name, 'choices': [], 'usage': usage})}\n\n"
                        break
                yield "data: [DONE]\n\n"
            finally:
                # The client may have gone: stop generating at the next token and free the model.
                job.close()

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                   **(route_stream.headers() if route_stream else _route_headers(EDGE, NO_CLOUD))}
        return GuardedStream(events(), job, media_type="text/event-stream", headers=headers)

    # ---------------------------------------------------------------- completions
    @app.post("/v1/completions")
    async def completions(request: Request):
        req = parse_completion(parse_json(await request.body()))
        lm = state.model_for(req.model, "generate")
        ids = prompt_ids(lm, req.prompt, chat=False)
        if req.sampling.stream and (req.echo or req.logprobs is not None):
            raise bad_request("streaming with echo or logprobs is not supported: use stream=false", param="stream")
        scoring_only = req.sampling.max_tokens == 0
        if scoring_only and not req.echo:
            raise bad_request("max_tokens=0 only makes sense with echo=true (scoring the prompt)", param="max_tokens")
        cfg = None if scoring_only else _gen_config(lm, req.sampling, len(ids), state.default_max_tokens)
        if scoring_only:
            try:
                check_fits(lm, len(ids), 0)
            except PromptTooLongError as e:
                raise ApiError(400, str(e), param="prompt", code="context_length_exceeded") from None
        cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        state.gate.admit()
        if req.sampling.stream:
            return _stream_completion(lm, ids, cfg, cid, created)
        try:
            return await run_in_pool(_completion_blocking, req, lm, ids, cfg, cid, created)
        finally:
            state.gate.release()

    def _completion_blocking(req, lm, ids, cfg, cid, created):
        if cfg is None:
            text, out_ids, finish, n_out = "", [], "length", 0
        else:
            text, out_ids, _, last = generate_blocking(lm, ids, cfg, chat=False)
            finish, n_out = last.finish_reason, last.generation_tokens
            out_ids = [t for t in out_ids if t not in lm.tokenizer.eos_ids]
        prompt_text = lm.tokenizer.decode(ids, skip_special_tokens=False)
        choice = {"index": 0, "text": (prompt_text if req.echo else "") + text, "finish_reason": finish,
                  "logprobs": None}
        if req.logprobs is not None:
            seq = (ids if req.echo else []) + out_ids
            state.gate.acquire_model()
            try:
                lps, tops = token_logprobs(lm, ids + out_ids, top=req.logprobs)
            finally:
                state.gate.release_model()
            start = 0 if req.echo else len(ids)
            lps, tops = lps[start:], tops[start:]
            toks = [lm.tokenizer.token_str(t) for t in seq]
            offsets, pos = [], 0
            for t in toks:
                offsets.append(pos)
                pos += len(t)
            choice["logprobs"] = {"tokens": toks, "token_logprobs": lps,
                                  "top_logprobs": tops if req.logprobs else None, "text_offset": offsets}
        body = {"id": cid, "object": "text_completion", "created": created, "model": lm.name, "choices": [choice],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": n_out, "total_tokens": len(ids) + n_out}}
        return JSONResponse(body)

    def _stream_completion(lm, ids, cfg, cid, created):
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        job = _StreamJob(state.gate.release)
        cancel = job.cancel

        def worker():
            try:
                _, _, _, last = generate_blocking(
                    lm, ids, cfg, cancel, chat=False,
                    on_step=lambda r: loop.call_soon_threadsafe(q.put_nowait, ("delta", r.text)))
                loop.call_soon_threadsafe(q.put_nowait, ("done", last.finish_reason if last else "stop"))
            except Exception as e:  # noqa: BLE001
                loop.call_soon_threadsafe(q.put_nowait, ("error", e))

        def chunk(text, finish=None):
            return "data: " + json.dumps({"id": cid, "object": "text_completion", "created": created, "model": lm.name,
                                          "choices": [{"index": 0, "text": text, "finish_reason": finish,
                                                       "logprobs": None}]}) + "\n\n"

        async def events():
            job.fut = loop.run_in_executor(state.pool, worker)
            try:
                while True:
                    kind, item = await q.get()
                    if kind == "delta":
                        if item:
                            yield chunk(item)
                    elif kind == "error":
                        yield "data: " + json.dumps({"error": {"message": str(item), "type": "server_error"}}) + "\n\n"
                        break
                    else:
                        yield chunk("", item)
                        break
                yield "data: [DONE]\n\n"
            finally:
                job.close()

        return GuardedStream(events(), job, media_type="text/event-stream")

    # ---------------------------------------------------------------- embeddings
    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        req = parse_embeddings(parse_json(await request.body()))
        lm = state.model_for(req.model, "embed")
        state.gate.admit()
        try:
            vecs = await run_in_pool(lambda: embed(lm, req.inputs))
        finally:
            state.gate.release()
        n_tok = sum(len(lm.tokenizer.encode(t)) for t in req.inputs)

        def encode(v):
            # base64 of little-endian float32, as the openai client requests by default
            return base64.b64encode(v.astype("<f4").tobytes()).decode() if req.encoding_format == "base64" else v.tolist()

        return {"object": "list", "model": lm.name,
                "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vecs)],
                "usage": {"prompt_tokens": n_tok, "total_tokens": n_tok}}

    return app
