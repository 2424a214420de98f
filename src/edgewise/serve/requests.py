"""Strict, per-field validation of request bodies. Anything malformed is a 400 naming the field."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from edgewise.serve.errors import bad_request

_ROLES = {"system", "user", "assistant", "tool", "developer"}


def parse_json(raw: bytes) -> dict:
    if not raw:
        raise bad_request("request body is empty: send a JSON object")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"request body is not valid JSON: {getattr(e, 'msg', str(e))}") from None
    except RecursionError:
        raise bad_request("request body nests too deeply") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def _text(v, param: str, what: str = "a string") -> str:
    """A JSON string that is real text: a lone surrogate (\\ud800) cannot be tokenized nor echoed back."""
    if not isinstance(v, str):
        raise bad_request(f"'{param}' must be {what}", param=param)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"'{param}' holds an unpaired UTF-16 surrogate: send valid Unicode text",
                          param=param) from None
    return v


def _num(body: dict, name: str, default, lo: float, hi: float, integer: bool = False):
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        raise bad_request(f"'{name}' must be a number", param=name)
    if integer and not float(v).is_integer():
        raise bad_request(f"'{name}' must be an integer", param=name)
    if not lo <= v <= hi:
        raise bad_request(f"'{name}' must be between {lo} and {hi}, got {v}", param=name)
    return int(v) if integer else float(v)


def _bool(body: dict, name: str, default: bool = False) -> bool:
    v = body.get(name, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise bad_request(f"'{name}' must be true or false", param=name)
    return v


def _stop(body: dict) -> tuple[str, ...]:
    v = body.get("stop")
    if v is None:
        return ()
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or len(v) > 4 or any(not isinstance(s, str) or not s for s in v):
        raise bad_request("'stop' must be a non-empty string or a list of up to 4 non-empty strings", param="stop")
    return tuple(_text(s, "stop") for s in v)


def _model(body: dict) -> str:
    m = body.get("model")
    if not isinstance(m, str) or not m:
        raise bad_request("'model' is required: a model name from GET /v1/models", param="model")
    return _text(m, "model")


@dataclass
class Sampling:
    """What the request asked for; None where it said nothing (the model's recommended setting applies)."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    n: int = 1


def _sampling(body: dict, max_tokens_name: str = "max_tokens", allow_zero: bool = False) -> Sampling:
    mt = body.get("max_completion_tokens", body.get(max_tokens_name))
    if mt is not None:
        mt = _num({"max_tokens": mt}, "max_tokens", None, 0 if allow_zero else 1, 1_000_000, integer=True)
    n = _num(body, "n", 1, 1, 1, integer=True)  # one session per request: one choice
    seed = body.get("seed")
    if seed is not None:
        seed = _num(body, "seed", None, -(2**63), 2**63 - 1, integer=True)
        seed &= 0xFFFFFFFF
    return Sampling(max_tokens=mt, temperature=_num(body, "temperature", None, 0.0, 2.0),
                    top_p=_num(body, "top_p", None, 1e-9, 1.0), top_k=_num(body, "top_k", None, 0, 100_000, integer=True),
                    seed=seed, stop=_stop(body), stream=_bool(body, "stream"), n=n)


@dataclass
class ChatRequest:
    model: str
    messages: list[dict]
    sampling: Sampling
    logprobs: bool = False
    include_usage: bool = False
    raw: dict = field(default_factory=dict, repr=False)
    top_logprobs: int | None = None  # passed on to the cloud; the edge answers with its chosen tokens only


def parse_chat(body: dict) -> ChatRequest:
    model = _model(body)
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise bad_request("'messages' must be a non-empty list of {role, content} objects", param="messages")
    clean = []
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if not isinstance(role, str) or role not in _ROLES:  # a dict or list role is unhashable: check the type first
            raise bad_request(f"messages[{i}] needs a 'role' among {sorted(_ROLES)}", param=f"messages[{i}].role")
        c = m.get("content")
        if isinstance(c, list):  # content parts: keep the text ones
            if any(not isinstance(p, dict) for p in c):
                raise bad_request(f"messages[{i}].content parts must be objects", param=f"messages[{i}].content")
            texts = [p.get("text") for p in c if p.get("type") == "text"]
            c = "".join(_text(t, f"messages[{i}].content", "text parts with a string 'text'") for t in texts)
        c = _text(c, f"messages[{i}].content")
        clean.append({"role": "system" if role == "developer" else role, "content": c})
    opts = body.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise bad_request("'stream_options' must be an object", param="stream_options")
    return ChatRequest(model=model, messages=clean, sampling=_sampling(body), logprobs=_bool(body, "logprobs"),
                       include_usage=bool(opts.get("include_usage")), raw=body,
                       top_logprobs=_num(body, "top_logprobs", None, 0, 20, integer=True))


@dataclass
class CompletionRequest:
    model: str
    prompt: str | list[int]
    sampling: Sampling
    logprobs: int | None
    echo: bool


def parse_completion(body: dict) -> CompletionRequest:
    model = _model(body)
    p = body.get("prompt")
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str):
        p = p[0]
    if isinstance(p, list):
        if not p or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in p):
            raise bad_request("'prompt' must be a string or a list of token ids", param="prompt")
    else:
        _text(p, "prompt", "a string or a list of token ids (one prompt per request)")
    lp = body.get("logprobs")
    if lp is not None:
        lp = _num(body, "logprobs", None, 0, 5, integer=True)
    return CompletionRequest(model=model, prompt=p, sampling=_sampling(body, allow_zero=True), logprobs=lp,
                             echo=_bool(body, "echo"))


@dataclass
class EmbeddingRequest:
    model: str
    inputs: list[str]
    encoding_format: str = "float"


def parse_embeddings(body: dict) -> EmbeddingRequest:
    model = _model(body)
    x = body.get("input")
    if isinstance(x, str):
        x = [x]
    if not isinstance(x, list) or not x or len(x) > 256 or any(not isinstance(s, str) or not s for s in x):
        raise bad_request("'input' must be a non-empty string or a list of 1-256 non-empty strings", param="input")
    x = [_text(s, "input") for s in x]
    fmt = body.get("encoding_format") or "float"
    if not isinstance(fmt, str) or fmt not in ("float", "base64"):
        raise bad_request("encoding_format must be 'float' or 'base64'", param="encoding_format")
    return EmbeddingRequest(model=model, inputs=x, encoding_format=fmt)
