"""POST /v1/chat/completions: the edge model answers, or the hybrid router decides who does."""

from __future__ import annotations

import threading
import time
import uuid

from fastapi import Request
from fastapi.responses import JSONResponse

from edgewise.route.types import RouteResult
from edgewise.runtime.types import GenerationResult
from edgewise.serve.requests import ChatRequest, parse_chat, parse_json
from edgewise.serve.sse import data, sse_response
from edgewise.serve.state import EDGE, NO_CLOUD, ServerState, usage


def _route_headers(answered_by: str, reason: str) -> dict[str, str]:
    return RouteResult("", answered_by, reason).headers()


def cloud_params(req: ChatRequest) -> dict:
    """The request's OpenAI fields that an escalation passes on, where the client set them. `stop` stays here: it is
    text the privacy policy never looked at."""
    s = req.sampling
    p = {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed}
    if req.logprobs:
        # llama.cpp's server sends no log-probs without top_logprobs; 0 asks for the chosen tokens' alone.
        p.update(logprobs=True, top_logprobs=req.top_logprobs or 0)
    return {k: v for k, v in p.items() if v is not None}


def _logprobs(content: list | None) -> dict | None:
    return None if content is None else {"content": content}


async def chat(request: Request):
    state: ServerState = request.app.state.edgewise
    req = parse_chat(parse_json(await request.body()))
    lm = state.model_for(req.model, "generate")
    ids = state.prompt(lm, req.messages, param="messages")
    cfg = state.gen_config(lm, req.sampling, len(ids), param="messages")
    job = _ChatJob(state, req, lm, ids, cfg)
    state.gate.admit()
    if req.sampling.stream:
        route_stream = None
        if state.router is not None:
            # Decide before the first byte: who answers goes in the response headers. An edge answer that no policy
            # had to read streams token by token (docs/routing.md, "Streaming behind the router").
            try:
                route_stream = await state.run_in_pool(
                    lambda: state.router.open_stream(req.messages, lambda _r: job.edge(), request_id=job.id,
                                                     cloud_params=cloud_params(req),
                                                     edge_stream_fn=lambda _r, **kw: job.edge(**kw)))
            except BaseException:
                state.gate.release()
                raise
        return job.stream(route_stream)
    try:
        return await state.run_in_pool(job.blocking)
    finally:
        state.gate.release()


class _ChatJob:
    def __init__(self, state: ServerState, req: ChatRequest, lm, ids: list[int], cfg):
        self.state, self.req, self.lm, self.ids, self.cfg = state, req, lm, ids, cfg
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def edge(self, cancel: threading.Event | None = None, on_step=None) -> GenerationResult:
        return self.state.generate(self.lm, self.ids, self.cfg, cancel=cancel, on_step=on_step)

    def blocking(self) -> JSONResponse:
        state, lm = self.state, self.lm
        answered_by, reason, extra = EDGE, NO_CLOUD, {}
        if state.router is not None:
            res = state.router.route(self.req.messages, lambda _r: self.edge(), request_id=self.id,
                                     cloud_params=cloud_params(self.req))
            text, answered_by, reason = res.text, res.answered_by, res.reason
            edge = res.edge
            extra = res.route_info()
            finish = edge.finish_reason if (edge is not None and answered_by != "cloud") else "stop"
        else:
            edge = self.edge()
            text, finish = edge.text, edge.finish_reason
        state.metrics.add("answered_by", label=answered_by)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                  "logprobs": None}
        if self.req.logprobs and answered_by == "cloud":
            # The cloud's own, when it sent them; none for a redacted prompt, whose tokens are not the answer's text.
            choice["logprobs"] = None if res.redacted else _logprobs(getattr(res.cloud, "logprobs", None))
        elif self.req.logprobs and edge is not None:
            tok = lm.tokenizer
            choice["logprobs"] = {"content": [
                {"token": tok.token_str(t), "logprob": lp, "bytes": list(tok.token_str(t).encode()), "top_logprobs": []}
                for t, lp in zip(edge.token_ids, edge.logprobs)]}
        n_out = edge.generation_tokens if edge is not None else 0
        cached = edge.cached_tokens if edge is not None else 0
        draft = edge.draft if edge is not None else None
        body = {"id": self.id, "object": "chat.completion", "created": self.created, "model": lm.name,
                "choices": [choice], "usage": usage(len(self.ids), n_out, cached, draft),
                "edgewise": {"answered_by": answered_by, "reason": reason, **extra}}
        return JSONResponse(body, headers=_route_headers(answered_by, reason))

    def _chunk(self, delta: dict, finish=None, logprobs: dict | None = None, **more) -> str:
        return data({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.lm.name,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}], **more})

    def _delta(self, piece: str) -> str:
        # A cloud delta (CloudDelta) carries its tokens' log-probs; an edge delta is a plain str.
        lp = getattr(piece, "logprobs", None) if self.req.logprobs else None
        return self._chunk({"content": piece}, logprobs=_logprobs(lp))

    def stream(self, route_stream=None):
        route_info = ({"answered_by": route_stream.answered_by, "reason": route_stream.reason} if route_stream
                      else {"answered_by": EDGE, "reason": NO_CLOUD})

        def work(emit, cancel) -> list[str]:
            if route_stream is None:
                last = self.edge(cancel, on_step=lambda r: emit(r.text))
                finish = last.finish_reason
            else:
                try:
                    for piece in route_stream:
                        if cancel.is_set():
                            break
                        emit(piece)
                finally:
                    route_stream.close()  # when the client left: stops the edge or closes the cloud stream; records
                res = route_stream.result
                if cancel.is_set() and not (res.edge is not None and res.edge.finish_reason == "cancelled"):
                    self.state.metrics.add("cancelled")  # a stopped edge generation counted itself
                route_info.update(res.route_info())
                last = res.edge
                finish = last.finish_reason if last is not None and res.answered_by != "cloud" else "stop"
            if not cancel.is_set():  # a client that left was never answered
                self.state.metrics.add("answered_by", label=route_info["answered_by"])
            events = [self._chunk({}, finish, edgewise=dict(route_info))]
            if self.req.include_usage and last is not None:
                events.append(data({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                    "model": self.lm.name, "choices": [],
                                    "usage": usage(last.prompt_tokens, last.generation_tokens, last.cached_tokens,
                                                   last.draft)}))
            return events

        headers = route_stream.headers() if route_stream else _route_headers(EDGE, NO_CLOUD)
        return sse_response(self.state, "/v1/chat/completions stream", work, self._delta,
                            first=(self._chunk({"role": "assistant", "content": ""}),), headers=headers)
