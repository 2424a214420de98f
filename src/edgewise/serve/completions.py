"""POST /v1/completions: plain-text generation, and prompt scoring (echo + logprobs, max_tokens=0)."""

from __future__ import annotations

import time
import uuid

from fastapi import Request
from fastapi.responses import JSONResponse

from edgewise.errors import PromptTooLongError
from edgewise.runtime.api import check_fits, token_logprobs
from edgewise.serve.errors import ApiError, bad_request
from edgewise.serve.requests import CompletionRequest, parse_completion, parse_json
from edgewise.serve.sse import data, sse_response
from edgewise.serve.state import ServerState, usage


async def completions(request: Request):
    state: ServerState = request.app.state.edgewise
    req = parse_completion(parse_json(await request.body()))
    lm = state.model_for(req.model, "generate")
    ids = state.prompt(lm, req.prompt, param="prompt", chat=False)
    if req.sampling.stream and (req.echo or req.logprobs is not None):
        raise bad_request("streaming with echo or logprobs is not supported: use stream=false", param="stream")
    scoring_only = req.sampling.max_tokens == 0
    if scoring_only and not req.echo:
        raise bad_request("max_tokens=0 only makes sense with echo=true (scoring the prompt)", param="max_tokens")
    cfg = None if scoring_only else state.gen_config(lm, req.sampling, len(ids), param="prompt")
    if scoring_only:
        try:
            check_fits(lm, len(ids), 0)
        except PromptTooLongError as e:
            raise ApiError(400, str(e), param="prompt", code="context_length_exceeded") from None
    cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    state.gate.admit()
    if req.sampling.stream:
        return _stream(state, lm, ids, cfg, cid, created)
    try:
        return await state.run_in_pool(_blocking, state, req, lm, ids, cfg, cid, created)
    finally:
        state.gate.release()


def _blocking(state: ServerState, req: CompletionRequest, lm, ids, cfg, cid: str, created: int) -> JSONResponse:
    if cfg is None:
        text, out_ids, finish, n_out, cached, draft = "", [], "length", 0, 0, None
    else:
        res = state.generate(lm, ids, cfg, chat=False)
        text, finish, n_out, cached = res.text, res.finish_reason, res.generation_tokens, res.cached_tokens
        draft = res.draft
        out_ids = [t for t in res.token_ids if t not in lm.tokenizer.eos_ids]
    prompt_text = lm.tokenizer.decode(ids, skip_special_tokens=False)
    choice = {"index": 0, "text": (prompt_text if req.echo else "") + text, "finish_reason": finish, "logprobs": None}
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
            "usage": usage(len(ids), n_out, cached, draft)}
    return JSONResponse(body)


def _stream(state: ServerState, lm, ids, cfg, cid: str, created: int):
    def chunk(text: str, finish=None) -> str:
        return data({"id": cid, "object": "text_completion", "created": created, "model": lm.name,
                     "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]})

    def work(emit, cancel) -> list[str]:
        res = state.generate(lm, ids, cfg, chat=False, cancel=cancel, on_step=lambda r: emit(r.text))
        return [chunk("", res.finish_reason)]

    return sse_response(state, "/v1/completions stream", work, chunk)
