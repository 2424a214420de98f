"""The OpenAI-compatible HTTP app. Small and strict: a route table, per-field validation, JSON errors.

Handlers live one endpoint family per module (chat, completions, embeddings, info) over a ServerState (state.py);
every generation goes through edgewise.runtime.generate, the same path as the CLI and the benchmarks, and the hybrid
router, when configured, decides who answers chat requests. Streams share one SSE helper (sse.py).
"""

from __future__ import annotations

import hmac
import json
import time

from fastapi import FastAPI, Request

from edgewise.errors import EdgewiseError
from edgewise.serve.chat import chat
from edgewise.serve.completions import completions
from edgewise.serve.embeddings import embeddings
from edgewise.serve.errors import ApiError, bad_request, internal_error, log_server_error
from edgewise.serve.info import health, metrics, models, openapi
from edgewise.serve.state import ServerState

ROUTES = (
    ("GET", "/health", health),
    ("GET", "/metrics", metrics),
    ("GET", "/openapi.json", openapi),
    ("GET", "/v1/models", models),
    ("POST", "/v1/chat/completions", chat),
    ("POST", "/v1/completions", completions),
    ("POST", "/v1/embeddings", embeddings),
)


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="Edgewise", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.edgewise = state
    for method, path, handler in ROUTES:
        app.add_api_route(path, handler, methods=[method], include_in_schema=False)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        if state.api_key and path.startswith("/v1/"):
            auth = request.headers.get("authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {state.api_key}".encode()):
                resp = ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>",
                                type="authentication_error", code="invalid_api_key").response()
                state.metrics.observe(path, 401, time.perf_counter() - t0)
                return resp
        if state.request_log and request.method == "POST":
            # A user-visible audit of exactly what this server was sent (the PCC-style request log).
            body = await request.body()
            with state.log_lock, open(state.request_log, "a") as f:
                f.write(json.dumps({"t": time.time(), "path": path, "body": body.decode("utf-8", "replace")}) + "\n")
        try:
            resp = await call_next(request)
        except Exception as e:  # noqa: BLE001 - never a traceback to the client, never a dead server
            resp = internal_error(e, f"{request.method} {path}").response()
        state.metrics.observe(path, resp.status_code, time.perf_counter() - t0)
        return resp

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        if e.status >= 500:
            log_server_error(e, f"{request.method} {request.url.path}")
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

    return app
