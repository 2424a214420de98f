"""The OpenAPI 3.1 document served at GET /openapi.json, written to match requests.py's validation field by field
(the handlers read raw JSON for strict per-field errors, so nothing could be generated from type hints)."""

from __future__ import annotations

from functools import lru_cache

NUM = {"type": "number"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _error() -> dict:
    return {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["message", "type"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": _nullable({"type": "string"}), "code": _nullable({"type": "string"})}}}}


SAMPLING = {
    "temperature": _nullable({**NUM, "minimum": 0, "maximum": 2,
                              "description": "Omitted: the model's recommended value (GET /v1/models)."}),
    "top_p": _nullable({**NUM, "exclusiveMinimum": 0, "maximum": 1,
                        "description": "Omitted: the model's recommended value."}),
    "top_k": _nullable({"type": "integer", "minimum": 0, "maximum": 100000, "description": "0 disables it."}),
    "seed": _nullable({"type": "integer"}),
    "stop": _nullable({"anyOf": [{"type": "string", "minLength": 1},
                                 {"type": "array", "maxItems": 4, "items": {"type": "string", "minLength": 1}}]}),
    "stream": _nullable({"type": "boolean"}),
    "n": _nullable({"type": "integer", "minimum": 1, "maximum": 1}),
    "max_completion_tokens": _nullable({"type": "integer", "minimum": 1}),
}
CONTENT_PART = {"type": "object", "properties": {"type": {"type": "string"}, "text": {"type": "string"}}}
MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "string", "enum": ["system", "user", "assistant", "tool", "developer"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": CONTENT_PART}]}}}


def _post(summary: str, request: dict, response: str, streams: bool) -> dict:
    content = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"post": {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {"200": {"description": response, "content": content},
                      "400": {"description": "a malformed field; `param` names it", **err},
                      "401": {"description": "missing or wrong API key (--api-key-env)", **err},
                      "404": {"description": "unknown model", **err},
                      "429": {"description": "queue full: retry shortly", **err},
                      "503": {"description": "timed out waiting for the model", **err}}}}


def _get(summary: str, media: str = "application/json") -> dict:
    return {"get": {"summary": summary, "responses": {"200": {"description": summary,
                                                              "content": {media: {"schema": {}}}}}}}


@lru_cache(maxsize=4)
def _schema(models: tuple[str, ...]) -> dict:
    model = {"type": "string", "minLength": 1, "description": "A name from GET /v1/models.", "examples": list(models)}
    chat = {"type": "object", "required": ["model", "messages"], "properties": {
        "model": model, "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
        "max_tokens": _nullable({"type": "integer", "minimum": 1}), **SAMPLING,
        "logprobs": _nullable({"type": "boolean"}),
        "stream_options": _nullable({"type": "object", "properties": {"include_usage": {"type": "boolean"}}})}}
    completion = {"type": "object", "required": ["model", "prompt"], "properties": {
        "model": model,
        "prompt": {"anyOf": [{"type": "string"}, {"type": "array", "minItems": 1, "maxItems": 1,
                                                  "items": {"type": "string"}},
                             {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0},
                              "description": "token ids, each below the model's vocabulary size"}]},
        "max_tokens": _nullable({"type": "integer", "minimum": 0, "description": "0 with echo: score the prompt"}),
        **SAMPLING, "echo": _nullable({"type": "boolean"}),
        "logprobs": _nullable({"type": "integer", "minimum": 0, "maximum": 5})}}
    embeddings = {"type": "object", "required": ["model", "input"], "properties": {
        "model": model,
        "input": {"anyOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "minItems": 1, "maxItems": 256,
                             "items": {"type": "string", "minLength": 1}}]},
        "encoding_format": _nullable({"type": "string", "enum": ["float", "base64"]})}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Edgewise", "version": "1",
                 "description": "OpenAI-compatible local inference. A sampling field a request leaves out takes the "
                                "model's recommended value, listed under `sampling` in GET /v1/models."},
        "paths": {
            "/v1/chat/completions": _post("Chat completion", chat, "chat.completion, or chunks when stream", True),
            "/v1/completions": _post("Text completion or prompt scoring", completion, "text_completion", True),
            "/v1/embeddings": _post("Sentence embeddings", embeddings, "list of embeddings", False),
            "/v1/models": _get("Served models, with their recommended sampling"),
            "/health": _get("Liveness and queue depth"),
            "/metrics": _get("Prometheus metrics", "text/plain"),
        },
        "components": {"schemas": {"Error": _error()},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def openapi_schema(state) -> dict:
    names = tuple(lm.name for lm in (state.generator, state.encoder) if lm is not None)
    return _schema(names)
