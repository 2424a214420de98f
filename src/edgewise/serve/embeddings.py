"""POST /v1/embeddings: mean-pooled sentence embeddings from the encoder."""

from __future__ import annotations

import base64

from fastapi import Request

from edgewise.runtime import embed
from edgewise.serve.requests import parse_embeddings, parse_json
from edgewise.serve.state import ServerState


async def embeddings(request: Request):
    state: ServerState = request.app.state.edgewise
    req = parse_embeddings(parse_json(await request.body()))
    lm = state.model_for(req.model, "embed")
    state.gate.admit()
    try:
        vecs = await state.run_in_pool(lambda: embed(lm, req.inputs))
    finally:
        state.gate.release()
    n_tok = sum(len(lm.tokenizer.encode(t)) for t in req.inputs)

    def encode(v):
        # base64 of little-endian float32, as the openai client requests by default
        return base64.b64encode(v.astype("<f4").tobytes()).decode() if req.encoding_format == "base64" else v.tolist()

    return {"object": "list", "model": lm.name,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vecs)],
            "usage": {"prompt_tokens": n_tok, "total_tokens": n_tok}}
