"""GET /health, /metrics, /v1/models and /openapi.json: what the server serves and how it is doing."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse

from edgewise.serve.openapi import openapi_schema
from edgewise.serve.state import ServerState


async def health(request: Request):
    state: ServerState = request.app.state.edgewise
    return {"status": "ok", "generator": state.generator.name if state.generator else None,
            "encoder": state.encoder.name if state.encoder else None,
            "queue_depth": state.metrics.queue_depth, "router": state.router is not None}


async def metrics(request: Request):
    state: ServerState = request.app.state.edgewise
    text = state.metrics.render()
    if state.sessions is not None:
        text += ("# HELP edgewise_sessions KV-cache sessions held (running, or kept for follow-up turns).\n"
                 "# TYPE edgewise_sessions gauge\n"
                 f"edgewise_sessions {len(state.sessions)}\n"
                 "# HELP edgewise_sessions_created_total Sessions made (a new conversation while the pool had room).\n"
                 "# TYPE edgewise_sessions_created_total counter\n"
                 f"edgewise_sessions_created_total {state.sessions.created}\n")
    if state.router is not None:
        br = state.router.stats().get("breaker") or {}
        if "state" in br:
            text += ("# HELP edgewise_cloud_circuit_open 1 while the cloud circuit breaker is open.\n"
                     "# TYPE edgewise_cloud_circuit_open gauge\n"
                     f"edgewise_cloud_circuit_open {int(br['state'] == 'open')}\n")
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def models(request: Request):
    """Each served model, with the sampling a request that names none gets (the generator's only)."""
    state: ServerState = request.app.state.edgewise
    data = []
    for lm in (state.generator, state.encoder):
        if lm is None:
            continue
        row = {"id": lm.name, "object": "model", "created": state.created, "owned_by": "edgewise",
               "backend": lm.backend, "precision": lm.precision, "context_length": lm.context_length}
        if lm is state.generator:
            row["sampling"] = state.sampling.as_dict()
        data.append(row)
    return {"object": "list", "data": data}


async def openapi(request: Request):
    return openapi_schema(request.app.state.edgewise)
